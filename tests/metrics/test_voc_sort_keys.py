"""``_sort_keys``: integer keys that numpy's argsort orders exactly as the float scores, ties included."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gluon_bof.metrics.voc import _sort_keys

# Few distinct values (many ties, both zeros, negatives, infinities) and sizes past 16, where
# numpy's introsort leaves insertion sort and tied values stop keeping their order.
_VALUES = st.sampled_from([0.0, -0.0, 0.5, -0.5, 2.0 ** -126, -2.0 ** -126, 3.0, float("inf"), float("-inf")])


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([np.float32, np.float64]), st.integers(1, 6), st.integers(0, 120), st.data())
def test_argsort_of_keys_is_argsort_of_values(dtype, rows, size, data):
    values = data.draw(hnp.arrays(dtype, (rows, size), elements=_VALUES | st.floats(-10, 10, width=32)))
    keys = _sort_keys(values)
    assert keys.dtype.kind == "i" and keys.dtype.itemsize == values.dtype.itemsize
    np.testing.assert_array_equal(np.argsort(keys, axis=1), np.argsort(values, axis=1))
    np.testing.assert_array_equal(np.argsort(keys.ravel()), np.argsort(values.ravel()))


def test_zeros_of_both_signs_are_one_key_and_the_input_is_left_alone():
    values = np.array([-0.0, 0.0, -1.0, 1.0], np.float32)
    keys = _sort_keys(values)
    assert keys[0] == keys[1] and keys[2] < keys[0] < keys[3]
    assert np.signbit(values[0])  # not modified in place


def test_other_dtypes_are_returned_as_they_are():
    values = np.array([3, 1, 2], np.int16)
    assert _sort_keys(values) is values
