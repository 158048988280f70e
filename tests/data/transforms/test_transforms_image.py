"""Pixel ops: colour distortion, resize and normalisation against GluonCV / MXNet."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms_testkit import gluoncv_script, push_color
from gluon_bof.data.transforms.image import (ColorParams, color_distort, color_matrix, draw_color_params,
                                             imresize, normalize, random_color_distort, resolve_interp)

def optional(lo, hi):
    # no subnormals: MXNet rejects them as scalars
    return st.one_of(st.none(), st.floats(lo, hi, allow_subnormal=False))



color_params = st.builds(
    ColorParams,
    brightness=optional(-32, 32), contrast=optional(0.5, 1.5),
    saturation=optional(0.5, 1.5), hue=optional(-18, 18),
    contrast_first=st.booleans())


@pytest.mark.oracle
@settings(max_examples=40, deadline=None)
@given(color_params, st.integers(0, 2 ** 32 - 1))
def test_color_distort_equals_gluoncv_op_math_for_the_same_factors(params, seed):
    import mxnet as mx
    from gluoncv.data.transforms.experimental.image import random_color_distort as gcv_distort
    img = np.random.default_rng(seed).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    with gluoncv_script() as script:
        push_color(script, params)
        expected = gcv_distort(mx.nd.array(img, dtype="uint8")).asnumpy()
    got = color_distort(img, params)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-3)


def test_color_distort_is_not_clipped_and_brightness_contrast_act_as_documented():
    img = np.full((2, 2, 3), 250, np.uint8)
    out = color_distort(img, ColorParams(brightness=20.0, contrast=1.5))
    np.testing.assert_allclose(out, (250 + 20) * 1.5, rtol=1e-6)  # 405 > 255 kept
    # saturation 0 would give the gray level; here alpha=0.5 halves the distance to gray
    px = np.array([[[200, 100, 0]]], np.uint8)
    gray = 0.299 * 200 + 0.587 * 100
    np.testing.assert_allclose(color_distort(px, ColorParams(saturation=0.5))[0, 0],
                               0.5 * np.array([200, 100, 0]) + 0.5 * gray, rtol=1e-5)


def test_hue_rotates_by_alpha_times_pi_radians():
    # alpha = 2 is a full turn (2*pi): identity up to the YIQ matrices' rounding; alpha = 1 is not
    np.testing.assert_allclose(color_matrix(ColorParams(hue=2.0))[:, :3], color_matrix(ColorParams(hue=0.0))[:, :3],
                               atol=1e-12)
    assert np.abs(color_matrix(ColorParams(hue=1.0))[:, :3] - np.eye(3)).max() > 0.5


def test_draw_color_params_probabilities_and_ranges():
    rng = np.random.default_rng(0)
    draws = [draw_color_params(rng) for _ in range(4000)]
    for name, lo, hi in [("brightness", -32, 32), ("contrast", 0.5, 1.5), ("saturation", 0.5, 1.5),
                         ("hue", -18, 18)]:
        values = [getattr(p, name) for p in draws if getattr(p, name) is not None]
        assert abs(len(values) / len(draws) - 0.5) < 0.04, name
        assert lo <= min(values) and max(values) <= hi
    assert abs(np.mean([p.contrast_first for p in draws]) - 0.5) < 0.04


def test_random_color_distort_is_deterministic_per_seed():
    img = np.random.default_rng(1).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    a = random_color_distort(img, np.random.default_rng(5))
    b = random_color_distort(img, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


@pytest.mark.oracle
@pytest.mark.parametrize("interp", [0, 1, 2, 3, 4, 9])
@pytest.mark.parametrize("size", [(61, 45), (13, 9), (40, 20), (16, 33)])
def test_imresize_equals_mxnet_imresize(interp, size):
    import mxnet as mx
    from gluoncv.data.transforms.image import imresize as gcv_imresize
    rng = np.random.default_rng(interp)
    img_u8 = rng.integers(0, 256, (21, 31, 3), dtype=np.uint8)
    img_f = rng.uniform(-60, 320, (21, 31, 3)).astype(np.float32)
    w, h = size
    expected_f = gcv_imresize(mx.nd.array(img_f), w, h, interp=interp).asnumpy()
    np.testing.assert_allclose(imresize(img_f, w, h, interp), expected_f, rtol=0, atol=2e-3)
    expected_u8 = gcv_imresize(mx.nd.array(img_u8, dtype="uint8"), w, h, interp=interp).asnumpy()
    got_u8 = imresize(img_u8, w, h, interp)
    diff = np.abs(got_u8.astype(int) - expected_u8)
    if resolve_interp(interp, (21, 31), (h, w)) == 2:
        # MXNet's bundled OpenCV rounds uint8 bicubic differently from opencv-python 4.11: off by 1 at most
        assert diff.max() <= 1 and diff.mean() < 0.5
    else:
        assert diff.max() == 0


def test_auto_interp_rule():
    assert resolve_interp(9, (10, 10), (20, 20)) == 2   # enlarge both: cubic
    assert resolve_interp(9, (10, 10), (5, 5)) == 3     # shrink both: area
    assert resolve_interp(9, (10, 10), (20, 5)) == 1    # mixed: bilinear
    assert resolve_interp(9, (10, 10), (10, 10)) == 1
    with pytest.raises(ValueError, match="interp"):
        resolve_interp(7, (1, 1), (1, 1))


@pytest.mark.oracle
def test_normalize_equals_mxnet_to_tensor_and_normalize():
    import mxnet as mx
    img = np.random.default_rng(3).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    expected = mx.nd.image.normalize(mx.nd.image.to_tensor(mx.nd.array(img, dtype="uint8")), mean=mean, std=std)
    got = normalize(img, mean, std)
    assert got.shape == (3, 5, 7) and got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_allclose(got, expected.asnumpy(), rtol=1e-5, atol=1e-5)


def test_one_pixel_wide_resize_keeps_three_channels():
    img = np.zeros((4, 4, 3), np.uint8)
    assert imresize(img, 1, 3, 1).shape == (3, 1, 3)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((4, 4), np.uint8), r"shape \(H, W, 3\)"),
    (np.zeros((0, 4, 3), np.uint8), "H, W >= 1"),
    ([[0, 1, 2]], "numpy array"),
])
def test_bad_images_are_rejected_by_name(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        color_distort(bad, ColorParams())


def test_bad_resize_target_and_normalization_are_rejected():
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="at least 1x1"):
        imresize(img, 0, 3)
    with pytest.raises(ValueError, match="std > 0"):
        normalize(img, (0.5, 0.5, 0.5), (0.2, 0.0, 0.2))
