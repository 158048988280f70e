"""Geometric ops: fixed-parameter parity with GluonCV, invariants of the random versions."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gluon_bof.data.transforms.bbox import box_iou
from gluon_bof.data.transforms.geometry import (crop, draw_expand, expand, flip, random_crop, random_crop_window,
                                                random_expand, random_flip, resize, resize_short_within,
                                                short_within_size)
from transforms_testkit import (assert_extra_columns_carried, assert_valid_boxes, gluoncv_script,
                                make_sample)

seeds = st.integers(0, 2 ** 32 - 1)
MEAN_FILL = [m * 255 for m in (0.485, 0.456, 0.406)]


@pytest.mark.oracle
@settings(max_examples=25, deadline=None)
@given(seeds, st.integers(3, 20), st.integers(3, 20), st.floats(1, 4), st.floats(0, 1), st.floats(0, 1),
       st.booleans())
def test_expand_equals_gluoncv_random_expand_with_the_same_draws(seed, h, w, ratio, fx, fy, as_float):
    import mxnet as mx
    from gluoncv.data.transforms import bbox as gbbox
    from gluoncv.data.transforms.image import random_expand as gcv_expand
    img, label = make_sample(np.random.default_rng(seed), h, w, 3)
    if as_float:
        img = img.astype(np.float32) - 40.5
    oh, ow = int(h * ratio), int(w * ratio)
    off_x, off_y = int(fx * (ow - w)), int(fy * (oh - h))
    with gluoncv_script() as script:
        for kind, value in [("random.uniform", ratio), ("random.randint", off_y), ("random.randint", off_x)]:
            script.push(kind, value)
        expected, (gx, gy, gw, gh) = gcv_expand(mx.nd.array(img, dtype=img.dtype), fill=MEAN_FILL)
    got, got_label = expand(img, label, ratio, (off_x, off_y), MEAN_FILL)
    assert (gx, gy, gw, gh) == (off_x, off_y, ow, oh)
    assert got.dtype == img.dtype
    np.testing.assert_array_equal(got, expected.asnumpy())
    np.testing.assert_array_equal(got_label, gbbox.translate(label, off_x, off_y))


@pytest.mark.oracle
@settings(max_examples=40, deadline=None)
@given(seeds, st.integers(0, 15), st.integers(0, 15), st.integers(1, 25), st.integers(1, 25))
def test_crop_equals_gluoncv_fixed_crop_and_bbox_crop(seed, x, y, cw, ch):
    import mxnet as mx
    from gluoncv.data.transforms.bbox import crop as gcv_bbox_crop
    img, label = make_sample(np.random.default_rng(seed), 40, 40, 5)
    out, out_label = crop(img, label, (x, y, cw, ch))
    np.testing.assert_array_equal(out, mx.image.fixed_crop(mx.nd.array(img, dtype="uint8"), x, y, cw, ch).asnumpy())
    np.testing.assert_array_equal(out_label, gcv_bbox_crop(label, (x, y, cw, ch), allow_outside_center=False))


@pytest.mark.oracle
@settings(max_examples=20, deadline=None)
@given(seeds, st.integers(1, 30), st.integers(1, 30))
def test_flip_equals_gluoncv_and_flipping_twice_is_identity(seed, h, w):
    import mxnet as mx
    from gluoncv.data.transforms import bbox as gbbox
    img, label = make_sample(np.random.default_rng(seed), h + 2, w + 2, 4)
    out, out_label = flip(img, label)
    np.testing.assert_array_equal(out, mx.nd.flip(mx.nd.array(img, dtype="uint8"), axis=1).asnumpy())
    np.testing.assert_array_equal(out_label, gbbox.flip(label, (w + 2, h + 2), flip_x=True))
    back, back_label = flip(out, out_label)
    np.testing.assert_array_equal(back, img)
    np.testing.assert_allclose(back_label, label, rtol=0, atol=1e-6 * (w + 2))  # W - (W - x): float32 rounding
    same, same_label = flip(img, label, flip_x=False)
    assert same is img and np.array_equal(same_label, label)


@pytest.mark.oracle
@pytest.mark.parametrize("interp", [0, 1, 2, 3, 4])
def test_resize_equals_gluoncv_imresize_and_bbox_resize(interp):
    import mxnet as mx
    from gluoncv.data.transforms import bbox as gbbox
    from gluoncv.data.transforms.image import imresize as gcv_imresize
    img, label = make_sample(np.random.default_rng(interp), 30, 50, 4)
    img = img.astype(np.float32) * 1.3 - 20  # the YOLO pipeline resizes the unclipped float image
    out, out_label = resize(img, label, (64, 24), interp)
    np.testing.assert_allclose(out, gcv_imresize(mx.nd.array(img), 64, 24, interp=interp).asnumpy(), atol=2e-3)
    np.testing.assert_array_equal(out_label, gbbox.resize(label, (50, 30), (64, 24)).astype(np.float32))


@pytest.mark.oracle
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 120), st.integers(1, 120), st.integers(1, 90), st.integers(1, 160))
def test_resize_short_within_rounding_equals_gluoncv(h, w, short, max_size):
    import mxnet as mx
    from gluoncv.data.transforms.image import resize_short_within as gcv_rsw
    img = np.random.default_rng(h * 1000 + w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    label = np.array([[0, 0, w, h, 1, 0]], np.float32)
    new_w, new_h = short_within_size(h, w, short, max_size)
    if new_w < 1 or new_h < 1:  # GluonCV/OpenCV fail on a zero side; we resize to at least 1 pixel
        return
    expected = gcv_rsw(mx.nd.array(img, dtype="uint8"), short, max_size, interp=1).asnumpy()
    out, out_label = resize_short_within(img, label, short, max_size)
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)  # bilinear uint8: bit-exact
    np.testing.assert_allclose(out_label[0, :4], [0, 0, new_w, new_h], rtol=1e-6)


def test_resize_short_within_examples():
    assert short_within_size(375, 500, 600, 1000) == (800, 600)
    assert short_within_size(300, 1000, 600, 1000) == (1000, 300)  # capped by the long side
    assert short_within_size(333, 500, 600, 1000) == (901, 600)    # 500*600/333 = 900.9 -> 901


# ---- random ops: invariants -------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(seeds, st.integers(8, 60), st.integers(8, 60), st.integers(0, 6))
def test_random_crop_keeps_boxes_valid_and_rows_carried(seed, h, w, n):
    rng = np.random.default_rng(seed)
    img, label = make_sample(rng, h, w, n)
    out, out_label = random_crop(img, label, rng)
    assert_valid_boxes(out_label, out.shape[1], out.shape[0])
    assert_extra_columns_carried(out_label, label)
    if n:
        assert len(out_label) >= 1  # GluonCV never returns a crop that loses every box
    assert out.shape[0] >= 1 and out.shape[1] >= 1


@settings(max_examples=60, deadline=None)
@given(seeds, st.integers(8, 60), st.integers(8, 60), st.integers(1, 5), st.sampled_from([0.3, 0.5, 0.7]))
def test_random_crop_honours_the_iou_constraint(seed, h, w, n, min_iou):
    rng = np.random.default_rng(seed)
    _, label = make_sample(rng, h, w, n)
    _, (x, y, cw, ch) = random_crop_window(label, (w, h), rng, constraints=((min_iou, None),))
    if (x, y, cw, ch) != (0, 0, w, h):
        assert box_iou(label, np.array([[x, y, x + cw, y + ch]])).min() >= min_iou
    assert 0 <= x and 0 <= y and x + cw <= w and y + ch <= h


def test_random_crop_draws_follow_gluoncv_scale_and_aspect_ranges():
    rng = np.random.default_rng(0)
    areas, aspects, full = [], [], 0
    label = np.zeros((0, 5), np.float32)
    for _ in range(2000):
        _, (x, y, cw, ch) = random_crop_window(label, (1000, 1000), rng)
        areas.append(cw * ch / 1e6)
        aspects.append(cw / ch)
    areas, aspects = np.array(areas), np.array(aspects)
    # scale ~ U(0.3, 1): area = scale^2, mean (1 - 0.027) / (3 * 0.7) = 0.463
    assert areas.min() >= 0.3 ** 2 - 0.01 and areas.max() <= 1
    assert abs(areas.mean() - 0.463) < 0.02
    assert aspects.min() >= 0.5 - 0.01 and aspects.max() <= 2 + 0.01


def test_random_crop_without_boxes_returns_a_random_window_like_gluoncv():
    rng = np.random.default_rng(3)
    empty = np.zeros((0, 6), np.float32)
    img = np.zeros((50, 80, 3), np.uint8)
    out, out_label = random_crop(img, empty, rng)
    assert out_label.shape == (0, 6) and out.shape != img.shape


@settings(max_examples=40, deadline=None)
@given(seeds, st.integers(2, 30), st.integers(2, 30), st.integers(0, 4))
def test_random_expand_keeps_boxes_and_pixels(seed, h, w, n):
    rng = np.random.default_rng(seed)
    img, label = make_sample(rng, h, w, n)
    ratio, (off_x, off_y) = draw_expand((w, h), np.random.default_rng(seed + 1))
    out, out_label = random_expand(img, label, np.random.default_rng(seed + 1), fill=7)
    assert out.shape == (int(h * ratio), int(w * ratio), 3)
    np.testing.assert_array_equal(out[off_y:off_y + h, off_x:off_x + w], img)
    assert (out == 7).all(axis=2).sum() >= out.shape[0] * out.shape[1] - h * w
    assert_valid_boxes(out_label, out.shape[1], out.shape[0])
    np.testing.assert_allclose(out_label[:, :4] - label[:, :4], np.tile([off_x, off_y], 2)[None].repeat(n, 0),
                               atol=1e-4)


def test_random_flip_is_a_coin_and_deterministic_per_seed():
    img, label = make_sample(np.random.default_rng(0), 6, 9, 2)
    flips = [not np.array_equal(random_flip(img, label, np.random.default_rng(s))[0], img) for s in range(400)]
    assert 0.4 < np.mean(flips) < 0.6
    a = random_flip(img, label, np.random.default_rng(11))
    b = random_flip(img, label, np.random.default_rng(11))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_empty_labels_pass_through_every_geometric_op():
    img = np.zeros((10, 12, 3), np.uint8)
    empty = np.zeros((0, 6), np.float32)
    rng = np.random.default_rng(0)
    for _, out in (expand(img, empty, 2, (1, 1)), crop(img, empty, (1, 1, 5, 5)), flip(img, empty),
                   resize(img, empty, (7, 7)), resize_short_within(img, empty, 8, 20),
                   random_crop(img, empty, rng), random_expand(img, empty, rng), random_flip(img, empty, rng)):
        assert out.shape == (0, 6) and out.dtype == np.float32


def test_bad_geometric_parameters_are_rejected():
    img = np.zeros((10, 12, 3), np.uint8)
    empty = np.zeros((0, 6), np.float32)
    with pytest.raises(ValueError, match="ratio must be >= 1"):
        expand(img, empty, 0.5, (0, 0))
    with pytest.raises(ValueError, match="outside the"):
        expand(img, empty, 2, (13, 0))
    with pytest.raises(ValueError, match="crop window"):
        crop(img, empty, (8, 0, 5, 5))
    with pytest.raises(ValueError, match="short and max_size"):
        resize_short_within(img, empty, 0, 10)


@pytest.mark.oracle
def test_random_crop_window_distribution_matches_gluoncv():
    import random as pyrandom

    from gluoncv.data.transforms.experimental.bbox import random_crop_with_constraints
    label = np.array([[30, 40, 120, 150, 1, 0], [200, 100, 260, 300, 2, 0], [10, 200, 60, 240, 3, 0]], np.float32)
    size, n = (300, 320), 300
    state = np.random.get_state(), pyrandom.getstate()  # GluonCV uses the global state: restored below
    try:
        pyrandom.seed(0)
        np.random.seed(0)
        theirs = np.array([random_crop_with_constraints(label, size)[1] for _ in range(n)])
    finally:
        np.random.set_state(state[0])
        pyrandom.setstate(state[1])
    rng = np.random.default_rng(0)
    ours = np.array([random_crop_window(label, size, rng)[1] for _ in range(n)])
    area = [w[:, 2] * w[:, 3] / (size[0] * size[1]) for w in (ours, theirs)]
    # about 3 standard errors of the difference of two 300-sample estimates
    assert abs(np.mean(area[0] == 1) - np.mean(area[1] == 1)) < 0.12
    assert abs(area[0].mean() - area[1].mean()) < 0.075
    assert abs(area[0].std() - area[1].std()) < 0.06
