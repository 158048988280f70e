"""Box ops: parity with GluonCV's ``bbox`` functions and the label contract."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gluon_bof.data.transforms.bbox import (box_iou, check_label, clip_boxes, crop_boxes, flip_boxes,
                                            resize_boxes, translate_boxes)


@st.composite
def labels(draw, max_n=6, size=100):
    n = draw(st.integers(0, max_n))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    xy0 = rng.uniform(-10, size, (n, 2))
    # integer-valued boxes too, to hit the ties of the center and degeneracy rules
    if draw(st.booleans()):
        xy0 = np.round(xy0)
    wh = rng.uniform(0, 40, (n, 2)) if draw(st.booleans()) else np.round(rng.uniform(0, 40, (n, 2)))
    return np.concatenate([xy0, xy0 + wh, rng.integers(0, 20, (n, 1)), rng.uniform(0, 1, (n, 1))],
                          axis=1).astype(np.float32)


windows = st.tuples(st.integers(0, 60), st.integers(0, 60), st.integers(1, 80), st.integers(1, 80))


@pytest.mark.oracle
@settings(max_examples=150, deadline=None)
@given(labels(), windows)
def test_crop_boxes_equals_gluoncv_bbox_crop_without_outside_centers(label, window):
    from gluoncv.data.transforms.bbox import crop as gcv_crop
    expected = gcv_crop(label, window, allow_outside_center=False)
    np.testing.assert_array_equal(crop_boxes(label, window), expected)


@pytest.mark.oracle
@settings(max_examples=60, deadline=None)
@given(labels(), st.integers(1, 200), st.integers(1, 200), st.integers(1, 600), st.integers(1, 600))
def test_resize_and_flip_and_translate_equal_gluoncv(label, in_w, in_h, out_w, out_h):
    from gluoncv.data.transforms import bbox as gbbox
    np.testing.assert_array_equal(
        resize_boxes(label, (in_w, in_h), (out_w, out_h)),
        gbbox.resize(label, (in_w, in_h), (out_w, out_h)).astype(np.float32))
    np.testing.assert_array_equal(flip_boxes(label, out_w), gbbox.flip(label, (out_w, out_h), flip_x=True))
    np.testing.assert_array_equal(translate_boxes(label, in_w, in_h), gbbox.translate(label, in_w, in_h))


@pytest.mark.oracle
@settings(max_examples=60, deadline=None)
@given(labels(max_n=5), labels(max_n=5))
def test_box_iou_equals_gluoncv(a, b):
    from gluoncv.utils.bbox import bbox_iou
    a = a[(a[:, 2] > a[:, 0]) & (a[:, 3] > a[:, 1])]  # GluonCV divides by zero on empty unions
    b = b[(b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])]
    np.testing.assert_allclose(box_iou(a, b), bbox_iou(a.astype(np.float64), b.astype(np.float64)),
                               rtol=1e-12, atol=1e-12)


def test_box_iou_of_two_empty_boxes_is_zero_not_nan():
    z = np.zeros((1, 4), np.float32)
    assert box_iou(z, z)[0, 0] == 0.0


def test_crop_keeps_extra_columns_and_drops_whole_rows():
    label = np.array([[0, 0, 10, 10, 7, 0.25],      # center (5,5) inside the window -> kept, clipped
                      [40, 40, 50, 50, 3, 0.5],     # outside -> dropped
                      [8, 0, 30, 4, 9, 1.0]], np.float32)  # center (19, 2) -> kept
    out = crop_boxes(label, (2, 1, 20, 20))
    np.testing.assert_array_equal(out, [[0, 0, 8, 9, 7, 0.25], [6, 0, 20, 3, 9, 1.0]])


def test_clip_boxes_clips_and_drops_empty_rows():
    label = np.array([[-5, 2, 12, 8, 1, 0], [11, 0, 20, 5, 2, 0], [3, 3, 3, 9, 3, 0]], np.float32)
    np.testing.assert_array_equal(clip_boxes(label, 10, 6), [[0, 2, 10, 6, 1, 0]])


def test_empty_label_passes_through_every_box_op():
    empty = np.zeros((0, 6), np.float32)
    for out in (crop_boxes(empty, (0, 0, 5, 5)), resize_boxes(empty, (5, 5), (9, 9)), flip_boxes(empty, 5),
                translate_boxes(empty, 1, 2), clip_boxes(empty, 5, 5)):
        assert out.shape == (0, 6) and out.dtype == np.float32


@pytest.mark.parametrize("bad, message", [
    (np.zeros((3,), np.float32), "shape"),
    (np.zeros((2, 3), np.float32), "C >= 4"),
    (np.array([[0, 0, np.nan, 1, 0]], np.float32), "NaN"),
])
def test_bad_labels_are_rejected_by_name(bad, message):
    with pytest.raises(ValueError, match=message) as err:
        check_label(bad, "label")
    assert "label" in str(err.value)
