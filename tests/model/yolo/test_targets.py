"""Numpy YOLOv3 targets: behaviour, degenerate input, and parity with GluonCV's prefetch generator."""
import numpy as np
import pytest

from gluon_bof.model.yolo.targets import YOLOv3TargetGenerator, pad_gt_boxes, smoothing_epsilon

K = 20


def test_row_count_and_empty_label():
    gen = YOLOv3TargetGenerator(K)
    obj, center, scale, weights, cls = gen.gen(np.zeros((0, 6), np.float32), (320, 256))
    a = 3 * (10 * 8 + 20 * 16 + 40 * 32)
    assert obj.shape == (a, 1) and center.shape == (a, 2) and scale.shape == (a, 2)
    assert weights.shape == (a, 2) and cls.shape == (a, K)
    assert obj.sum() == 0 and np.all(cls == -1)
    assert all(t.dtype == np.float32 for t in (obj, center, scale, weights, cls))


def test_single_box_goes_to_best_anchor_cell():
    gen = YOLOv3TargetGenerator(K)
    # 120x92 box centred at (100, 60): best shape match is anchor (116, 90) of the stride-32 head.
    label = np.array([[40, 14, 160, 106, 7, 0]], np.float32)
    obj, center, scale, weights, cls = gen.gen(label, (320, 320))
    (row,) = np.nonzero(obj[:, 0])[0]
    loc_x, loc_y = int(100 / 32), int(60 / 32)
    assert row == (loc_y * 10 + loc_x) * 3 + 0
    np.testing.assert_allclose(center[row], [100 / 32 - 3, 60 / 32 - 1], rtol=1e-6)
    np.testing.assert_allclose(scale[row], np.log([120 / 116, 92 / 90]), rtol=1e-5)
    np.testing.assert_allclose(weights[row], 2 - 120 * 92 / 320 / 320, rtol=1e-6)
    assert cls[row, 7] == 1 and cls[row].sum() == 1


def test_small_box_goes_to_stride8_head():
    gen = YOLOv3TargetGenerator(K)
    label = np.array([[100, 100, 110, 113, 3]], np.float32)  # 10x13 = first anchor of stride 8
    obj = gen.gen(label, (320, 320))[0]
    (row,) = np.nonzero(obj[:, 0])[0]
    start = 3 * (10 * 10 + 20 * 20)
    assert row == start + (int(106.5 / 8) * 40 + int(105 / 8)) * 3 + 0


def test_label_smoothing_values():
    eps = smoothing_epsilon(K)
    assert eps == 0.025 and smoothing_epsilon(80) == 0.0125 and smoothing_epsilon(10) == 0.025
    assert smoothing_epsilon(4) == 0.025 and smoothing_epsilon(100) == 0.01
    gen = YOLOv3TargetGenerator(K, label_smooth=True)
    label = np.array([[10, 10, 60, 80, 2], [150, 150, 300, 310, 19]], np.float32)
    obj, _, _, _, cls = gen.gen(label, (320, 320))
    pos = obj[:, 0] > 0
    assert pos.sum() == 2
    assert np.all(cls[~pos] == -1)
    np.testing.assert_allclose(np.sort(cls[pos].max(axis=1)), [0.975, 0.975])
    np.testing.assert_allclose(cls[pos].min(axis=1), [0.025, 0.025])
    assert set(np.argmax(cls[pos], axis=1)) == {2, 19}


def test_mixup_weight_becomes_objectness():
    gen = YOLOv3TargetGenerator(K)
    label = np.array([[10, 10, 60, 80, 2, 0, 0.7], [150, 150, 300, 310, 5, 1, 0.3]], np.float32)
    obj = gen.gen(label, (320, 320), has_weight=True)[0]
    np.testing.assert_allclose(np.sort(obj[obj > 0]), [0.3, 0.7], rtol=1e-6)
    # Without has_weight the extra columns are ignored and positives get 1.
    obj = gen.gen(label, (320, 320))[0]
    np.testing.assert_array_equal(obj[obj > 0], [1, 1])


def test_later_box_overwrites_same_cell_and_anchor():
    gen = YOLOv3TargetGenerator(K)
    label = np.array([[10, 10, 60, 80, 2], [11, 11, 61, 81, 9]], np.float32)
    obj, _, _, _, cls = gen.gen(label, (320, 320))
    assert (obj > 0).sum() == 1
    assert np.argmax(cls[obj[:, 0] > 0][0]) == 9


def test_padding_and_invalid_rows_are_ignored():
    gen = YOLOv3TargetGenerator(K)
    good = [10, 10, 60, 80, 2]
    label = np.array([[-1, -1, -1, -1, -1], good, [np.nan, 1, 5, 5, 1], [50, 50, 40, 60, 1],
                      [5, 5, 9, 9, -1]], np.float32)
    obj = gen.gen(label, (320, 320))[0]
    ref = gen.gen(np.array([good], np.float32), (320, 320))[0]
    np.testing.assert_array_equal(obj, ref)


def test_degenerate_boxes_give_finite_targets():
    gen = YOLOv3TargetGenerator(K, label_smooth=True)
    label = np.array([[30, 30, 30, 30, 1],        # zero size
                      [0, 0, 0.2, 500, 2],        # thinner than a pixel, taller than the image
                      [319.5, 319.5, 320, 320, 3],  # center on the border
                      [400, 400, 420, 420, 4]],   # outside the image
                     np.float32)
    out = gen.gen(label, (320, 320))
    for t in out:
        assert np.all(np.isfinite(t))
    obj, center = out[0], out[1]
    assert (obj > 0).sum() == 4
    assert center.min() >= 0 and center.max() <= 1


def test_bad_arguments_raise_clear_errors():
    gen = YOLOv3TargetGenerator(K)
    with pytest.raises(ValueError, match="class ids"):
        gen.gen(np.array([[1, 1, 5, 5, 20]], np.float32), (64, 64))
    with pytest.raises(ValueError, match="label must be"):
        gen.gen(np.zeros((3, 4), np.float32), (64, 64))
    with pytest.raises(ValueError, match="C >= 6"):
        gen.gen(np.zeros((1, 5), np.float32), (64, 64), has_weight=True)
    with pytest.raises(ValueError, match="input_hw"):
        gen.gen(np.zeros((0, 5), np.float32), (0, 64))
    with pytest.raises(ValueError, match="anchors"):
        YOLOv3TargetGenerator(K, anchors=[[10, 13]], strides=(8, 16))
    with pytest.raises(ValueError, match="num_classes"):
        YOLOv3TargetGenerator(0)


def test_pad_gt_boxes():
    out = pad_gt_boxes([np.array([[1, 2, 3, 4, 0, 0]], np.float32), np.zeros((0, 6), np.float32)])
    assert out.shape == (2, 1, 4)
    np.testing.assert_array_equal(out[0, 0], [1, 2, 3, 4])
    np.testing.assert_array_equal(out[1], -1)


# --------------------------------------------------------------------------------------- oracle
from _yolo_oracle import gluoncv_prefetch, random_labels  # noqa: E402


@pytest.mark.oracle
@pytest.mark.parametrize("input_hw,mix,smooth", [((320, 320), False, False), ((256, 320), True, False),
                                                 ((320, 320), True, True), ((416, 288), False, True)])
def test_parity_with_gluoncv_prefetch(input_hw, mix, smooth):
    rng = np.random.default_rng(hash((input_hw, mix, smooth)) % 2**32)
    labels = random_labels(rng, 8, input_hw, K, mix)
    # A zero-size and a sub-pixel box: GluonCV also clamps their size to 1 in the log.
    extra = np.array([[30, 40, 30, 40, 3, 0, 0.5], [60, 60, 60.4, 90, 4, 0, 0.5]], np.float32)
    labels[0] = np.concatenate([labels[0], extra[:, :labels[0].shape[1]]])
    ref = gluoncv_prefetch(labels, input_hw, K, mix=mix)
    if smooth:
        eps = smoothing_epsilon(K)
        cls = ref[4]
        ref[4] = np.where(cls > 0.5, cls - eps, np.where(cls < -0.5, cls, eps))
    gen = YOLOv3TargetGenerator(K, label_smooth=smooth)
    n_pos = 0
    for b, lab in enumerate(labels):
        ours = gen.gen(lab, input_hw, has_weight=mix)
        for name, o, r in zip(("obj", "center", "scale", "weights", "class"), ours, ref):
            assert o.shape == r[b].shape, name
            np.testing.assert_allclose(o, r[b], rtol=0, atol=2e-6, err_msg=name)
        n_pos += int((ours[0] > 0).sum())
    assert n_pos > 10


def test_generator_pickles_for_worker_processes():
    import pickle
    gen = YOLOv3TargetGenerator(K, label_smooth=True)
    label = np.array([[10, 10, 60, 80, 2, 0, 0.7]], np.float32)
    clone = pickle.loads(pickle.dumps(gen))
    for a, b in zip(gen.gen(label, (320, 320), True), clone.gen(label, (320, 320), True)):
        np.testing.assert_array_equal(a, b)
