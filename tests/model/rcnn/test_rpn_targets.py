"""RPN target generation in numpy: hand-computed cases, sampling invariants, GluonCV parity."""
import mxnet as mx
import numpy as np
import pytest

from gluon_bof.model.rcnn.anchors import generate_anchors
from gluon_bof.model.rcnn.box_ops import box_iou, encode_boxes
from gluon_bof.model.rcnn.rpn_targets import RPNTargetGenerator, pad_rpn_targets


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_box_iou_hand_computed():
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15]], dtype=np.float32)
    b = np.array([[0, 0, 10, 10], [0, 0, 0, 0]], dtype=np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[1, 0], [25 / 175, 0]], rtol=1e-6)


@pytest.mark.oracle
def test_box_iou_matches_mxnet_box_iou():
    rng = _rng(1)
    xy = rng.uniform(0, 50, (30, 2))
    a = np.concatenate([xy, xy + rng.uniform(1, 40, (30, 2))], axis=1).astype(np.float32)
    b = a[::3] + 3
    ref = mx.nd.contrib.box_iou(mx.nd.array(a), mx.nd.array(b), format="corner").asnumpy()
    np.testing.assert_allclose(box_iou(a, b), ref, atol=1e-6)


def test_encode_boxes_hand_computed():
    anchor = np.array([[0, 0, 10, 20]], dtype=np.float32)     # centre (5, 10), 10 x 20
    gt = np.array([[2, 4, 22, 24]], dtype=np.float32)         # centre (12, 14), 20 x 20
    got = encode_boxes(anchor, gt, stds=(0.1, 0.1, 0.2, 0.2))
    np.testing.assert_allclose(got, [[7 / 10 / 0.1, 4 / 20 / 0.1, np.log(2) / 0.2, 0.0]], rtol=1e-6)


def test_hand_computed_assignment():
    # image 100 x 100; anchors: exact match, half overlap, far away, and one crossing the border
    anchors = np.array([[10, 10, 40, 40], [25, 10, 55, 40], [60, 60, 90, 90], [-5, 0, 20, 20]],
                       dtype=np.float32)
    gt = np.array([[10, 10, 40, 40]], dtype=np.float32)
    cls, box, mask, weight = RPNTargetGenerator()(anchors, gt, (100, 100), _rng(),
                                                   gt_weights=np.array([0.3]))
    # anchor 1 IoU = 15*30 / (2*900 - 450) = 1/3: between 0.3 and 0.7 -> ignored
    np.testing.assert_array_equal(cls, [1, -1, 0, -1])
    np.testing.assert_allclose(box[0], 0, atol=1e-7)
    np.testing.assert_array_equal(mask, [[1] * 4, [0] * 4, [0] * 4, [0] * 4])
    np.testing.assert_allclose(weight, [0.3, 1, 1, 1])


def test_best_anchor_below_neg_iou_becomes_negative_like_gluoncv():
    anchors = np.array([[0, 0, 10, 10], [50, 50, 60, 60]], dtype=np.float32)
    gt = np.array([[5, 5, 40, 40]], dtype=np.float32)          # IoU with anchor 0 = 25 / 1300
    cls, _, _, _ = RPNTargetGenerator()(anchors, gt, (100, 100), _rng())
    np.testing.assert_array_equal(cls, [0, 0])


def test_best_anchor_of_each_gt_is_positive_below_pos_iou():
    anchors = np.array([[0, 0, 20, 20], [10, 0, 30, 20], [60, 60, 80, 80]], dtype=np.float32)
    gt = np.array([[0, 0, 14, 20]], dtype=np.float32)          # IoUs 0.7, 4/30=0.13..., 0
    gt2 = np.array([[0, 0, 12, 20]], dtype=np.float32)         # IoUs 0.6 (best but < 0.7), ...
    cls, _, _, _ = RPNTargetGenerator()(anchors, gt, (100, 100), _rng())
    np.testing.assert_array_equal(cls, [1, 0, 0])
    cls, _, _, _ = RPNTargetGenerator()(anchors, gt2, (100, 100), _rng())
    np.testing.assert_array_equal(cls, [1, 0, 0])


def _voc_anchors(h, w):
    return generate_anchors(16, 16, (0.5, 1, 2), (2, 4, 8, 16, 32), (h, w)).reshape(-1, 4)


def test_sampling_counts_and_determinism():
    anchors = _voc_anchors(38, 50)                 # a 600 x 800 image
    gt = np.array([[50, 60, 300, 400], [320, 100, 700, 560], [100, 380, 260, 590]], np.float32)
    gen = RPNTargetGenerator()
    cls, box, mask, _ = gen(anchors, gt, (600, 800), _rng(3))
    num_pos, num_neg = int((cls == 1).sum()), int((cls == 0).sum())
    assert 0 < num_pos <= 128
    assert num_pos + num_neg == 256
    assert (mask[:, 0] == (cls == 1)).all() and (box[cls != 1] == 0).all()
    again = gen(anchors, gt, (600, 800), _rng(3))
    np.testing.assert_array_equal(again[0], cls)
    other = gen(anchors, gt, (600, 800), _rng(4))[0]
    assert not np.array_equal(other, cls)


def test_positives_capped_at_half():
    anchors = _voc_anchors(38, 50)
    gt = np.array([[0, 0, 799, 599]], np.float32) * 0.5 + 100
    gt = np.concatenate([gt + k for k in range(0, 400, 4)])   # many gts -> many best anchors
    gt[:, 2:] = np.minimum(gt[:, 2:], [799, 599])
    cls = RPNTargetGenerator(num_sample=256, pos_ratio=0.5)(anchors, gt, (600, 800), _rng())[0]
    assert (cls == 1).sum() == 128
    assert (cls == 0).sum() == 128


def test_no_gt_gives_only_negatives():
    anchors = _voc_anchors(10, 10)
    cls, box, mask, weight = RPNTargetGenerator()(anchors, np.zeros((0, 4)), (160, 160), _rng())
    assert (cls == 1).sum() == 0 and (cls == 0).sum() == 256
    assert not mask.any() and (weight == 1).all()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="neg_iou"):
        RPNTargetGenerator(pos_iou=0.3, neg_iou=0.7)
    with pytest.raises(ValueError, match="gt_weights"):
        RPNTargetGenerator()(_voc_anchors(2, 2), np.zeros((2, 4)), (32, 32), _rng(),
                             gt_weights=np.ones(3))


def test_pad_rpn_targets_layout():
    a = (np.ones((1, 2, 3)), np.ones((1, 2, 12)) * 2, np.ones((1, 2, 12)), np.ones((1, 2, 3)) * 0.5)
    b = (np.zeros((2, 1, 3)), np.zeros((2, 1, 12)), np.zeros((2, 1, 12)), np.ones((2, 1, 3)))
    cls, box, mask, weight = pad_rpn_targets([a, b])
    assert cls.shape == (2, 12) and box.shape == (2, 12, 4) and weight.shape == (2, 12)
    # image a occupies row 0 of a 2 x 2 map: anchors 0..5 real, 6..11 padding
    np.testing.assert_array_equal(cls[0], [1] * 6 + [-1] * 6)
    np.testing.assert_array_equal(weight[0], [0.5] * 6 + [1] * 6)
    np.testing.assert_array_equal(box[0, :6], 2)
    np.testing.assert_array_equal(cls[1], [0, 0, 0, -1, -1, -1, 0, 0, 0, -1, -1, -1])


@pytest.mark.oracle
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_gluoncv_when_sampling_is_deterministic(seed):
    from gluoncv.model_zoo.rcnn.rpn.rpn_target import RPNTargetGenerator as GluonCVGen
    rng = _rng(seed)
    height, width = 160, 224
    anchors = _voc_anchors(10, 14)
    xy = rng.uniform(0, 120, (4, 2))
    gt = np.concatenate([xy, xy + rng.uniform(20, 100, (4, 2))], axis=1).astype(np.float32)
    gt[:, 2] = np.minimum(gt[:, 2], width - 1)
    gt[:, 3] = np.minimum(gt[:, 3], height - 1)
    ours = RPNTargetGenerator(num_sample=2048, pos_ratio=0.5)(anchors, gt, (height, width), rng)
    # few in-image anchors here: no subsampling happens on either side
    assert (ours[0] >= 0).sum() < 1024 and (ours[0] == 1).sum() >= 4
    cls, box, mask = GluonCVGen(num_sample=2048, pos_ratio=0.5)(
        mx.nd.array(gt), mx.nd.array(anchors), width, height)
    np.testing.assert_array_equal(ours[0], np.asarray(cls))
    np.testing.assert_allclose(ours[1], np.asarray(box), atol=1e-5)
    np.testing.assert_array_equal(ours[2], np.asarray(mask))


def test_target_transform_reads_mixup_weight_column_and_pickles():
    import pickle
    from gluon_bof.model.rcnn.rpn_targets import RPNTargetTransform
    table = generate_anchors(16, 16, (0.5, 1, 2), (2, 4, 8), (16, 16))
    transform = pickle.loads(pickle.dumps(RPNTargetTransform(table)))
    label = np.array([[20, 20, 100, 90, 0, 0, 0.25], [110, 40, 150, 120, 1, 0, 0.75]], np.float32)
    cls, box, mask, weight = transform((128, 160), label, _rng())
    assert cls.shape == (8, 10, 9) and box.shape == (8, 10, 36) and weight.shape == (8, 10, 9)
    pos_weights = set(np.round(weight[cls == 1], 4))
    assert pos_weights == {0.25, 0.75}
    assert (weight[cls != 1] == 1).all()
    six = transform((128, 160), label[:, :6], _rng())
    np.testing.assert_array_equal(six[0], cls)
    assert (six[3] == 1).all()
    with pytest.raises(ValueError, match="anchor table"):
        transform((400, 160), label, _rng())


def test_image_smaller_than_every_anchor_gives_no_samples():
    # GluonCV would make every (outside) anchor positive here; we ignore them all.
    anchors = _voc_anchors(1, 1)                      # smallest anchor is 23 x 12 px
    cls, _, mask, _ = RPNTargetGenerator()(anchors, np.array([[1, 1, 8, 8]], np.float32), (10, 10),
                                           _rng())
    assert (cls == -1).all() and not mask.any()
