"""Faster R-CNN losses: GluonCV parity, softmax label smoothing (eq. 3) and per-box mixup weights."""
import math

import numpy as np
import pytest
from mxnet import gluon, nd

from gluon_bof.model.rcnn.losses import faster_rcnn_losses, roi_weights, smooth_softmax_targets

B, N, S, P, C, M = 2, 12, 8, 3, 4, 3


def _fake_outputs(seed=0):
    """A training-output tuple with the shapes FasterRCNN produces (random values)."""
    rng = np.random.default_rng(seed)
    cls_pred = nd.array(rng.normal(size=(B, S, C + 1)))
    box_pred = nd.array(rng.normal(size=(B, P, C, 4)))
    samples = nd.array(rng.choice([-1, 1], size=(B, S)))
    samples[0, 0] = 0                                                    # one ignored RoI
    matches = nd.array(rng.integers(0, M, size=(B, S)))
    rpn_score = nd.array(rng.normal(size=(B, N, 1)))
    rpn_box = nd.array(rng.normal(size=(B, N, 4)))
    cls_t = nd.array(rng.integers(0, C + 1, size=(B, S)))
    cls_t[0, 0] = -1
    box_t = nd.array(rng.normal(size=(B, P, C, 4)))
    box_m = nd.array(rng.integers(0, 2, size=(B, P, C, 4)))
    indices = nd.array(np.stack([rng.permutation(S)[:P] for _ in range(B)]))
    outputs = (cls_pred, box_pred, None, samples, matches, rpn_score, rpn_box, None, cls_t, box_t,
               box_m, indices)
    rpn_cls_t = nd.array(rng.choice([-1, 0, 1], size=(B, N)))
    rpn_box_t = nd.array(rng.normal(size=(B, N, 4)))
    rpn_box_m = nd.array(np.repeat((rng.uniform(size=(B, N, 1)) > 0.5), 4, axis=2))
    return outputs, (rpn_cls_t, rpn_box_t, rpn_box_m)


def _gluoncv_losses(outputs, rpn_targets, mix_ratio=1.0):
    """The loss block of GluonCV's ForwardBackwardTask.forward_backward, with its loss classes."""
    cls_pred, box_pred, _, _, _, rpn_score, rpn_box, _, cls_t, box_t, box_m, _ = outputs
    rpn_cls_t, rpn_box_t, rpn_box_m = rpn_targets
    rpn_score = rpn_score.squeeze(axis=-1)
    num_rpn = (rpn_cls_t >= 0).sum()
    l1 = gluon.loss.SigmoidBinaryCrossEntropyLoss(from_sigmoid=False)(
        rpn_score, rpn_cls_t, rpn_cls_t >= 0) * rpn_cls_t.size / num_rpn
    l2 = gluon.loss.HuberLoss(rho=1 / 9.)(rpn_box, rpn_box_t, rpn_box_m) * rpn_box.size / num_rpn
    num_rcnn = (cls_t >= 0).sum()
    l3 = gluon.loss.SoftmaxCrossEntropyLoss()(cls_pred, cls_t, cls_t.expand_dims(-1) >= 0) \
        * cls_t.size / num_rcnn
    l4 = gluon.loss.HuberLoss()(box_pred, box_t, box_m) * box_pred.size / num_rcnn
    return [x * mix_ratio for x in (l1, l2, l3, l4)]


@pytest.mark.oracle
@pytest.mark.parametrize("mode,mix_ratio", [("weighted", 1.0), ("even", 1.0), ("even", 0.5)])
def test_matches_gluoncv_train_script(mode, mix_ratio):
    outputs, rpn_targets = _fake_outputs()
    ours = faster_rcnn_losses(outputs, rpn_targets, mixup_mode=mode, mix_ratio=mix_ratio,
                              box_weights=nd.ones((B, M)) * 0.3 if mode == "even" else None)
    theirs = _gluoncv_losses(outputs, rpn_targets, mix_ratio)
    for o, t in zip(ours, theirs):
        assert o.shape == (B,)
        np.testing.assert_allclose(o.asnumpy(), t.asnumpy(), rtol=1e-5, atol=1e-6)


def test_unit_weights_change_nothing():
    outputs, rpn_targets = _fake_outputs(1)
    plain = faster_rcnn_losses(outputs, rpn_targets)
    ones = faster_rcnn_losses(outputs, rpn_targets + (nd.ones((B, N)),), box_weights=nd.ones((B, M)))
    for a, b in zip(plain, ones):
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-6)


def test_smooth_softmax_targets_eq3():
    q = smooth_softmax_targets(nd.array([2, 0]), 5, 0.1).asnumpy()
    np.testing.assert_allclose(q, [[0.025, 0.025, 0.9, 0.025, 0.025],
                                   [0.9, 0.025, 0.025, 0.025, 0.025]], rtol=1e-6)
    np.testing.assert_allclose(q.sum(axis=1), 1, rtol=1e-6)
    with pytest.raises(ValueError, match="label_smoothing"):
        smooth_softmax_targets(nd.array([0]), 5, 1.0)


def _one_roi_outputs(logits, label, sample=1.0, match=0):
    """A 1-image, 1-RoI, 1-anchor output tuple (box terms zero-masked)."""
    cls_pred = nd.array([[logits]])
    box_pred = nd.zeros((1, 1, len(logits) - 1, 4))
    outputs = (cls_pred, box_pred, None, nd.array([[sample]]), nd.array([[match]]),
               nd.zeros((1, 1, 1)), nd.zeros((1, 1, 4)), None, nd.array([[label]]),
               nd.zeros((1, 1, len(logits) - 1, 4)), nd.zeros((1, 1, len(logits) - 1, 4)),
               nd.zeros((1, 1)))
    rpn = (nd.array([[0.0]]), nd.zeros((1, 1, 4)), nd.zeros((1, 1, 4)))
    return outputs, rpn


def test_label_smoothing_hand_computed():
    # logits (0, ln 2, 0): softmax = (1/4, 1/2, 1/4); label 1, eps 0.2, K = 3:
    # q = (0.1, 0.8, 0.1) -> CE = -(0.1 ln 1/4 + 0.8 ln 1/2 + 0.1 ln 1/4) = 0.2 ln 4 + 0.8 ln 2 = 1.2 ln 2
    outputs, rpn = _one_roi_outputs([0.0, math.log(2), 0.0], 1)
    rcnn_cls = faster_rcnn_losses(outputs, rpn, label_smoothing=0.2)[2].asscalar()
    assert rcnn_cls == pytest.approx(1.2 * math.log(2), rel=1e-5)
    plain = faster_rcnn_losses(outputs, rpn)[2].asscalar()
    assert plain == pytest.approx(math.log(2), rel=1e-5)


def test_mixup_weight_scales_positive_roi_only():
    # positive RoI matched to gt 1 of weight 0.25: its CE ln 2 becomes 0.25 ln 2
    outputs, rpn = _one_roi_outputs([0.0, math.log(2), 0.0], 1, sample=1, match=1)
    w = nd.array([[0.7, 0.25]])
    got = faster_rcnn_losses(outputs, rpn, box_weights=w)[2].asscalar()
    assert got == pytest.approx(0.25 * math.log(2), rel=1e-5)
    # GluonCV mode ignores per-box weights and applies the global ratio
    even = faster_rcnn_losses(outputs, rpn, box_weights=w, mixup_mode="even", mix_ratio=0.5)[2]
    assert even.asscalar() == pytest.approx(0.5 * math.log(2), rel=1e-5)
    # a negative RoI keeps weight 1 whatever its (meaningless) match
    outputs, rpn = _one_roi_outputs([math.log(2), 0.0, 0.0], 0, sample=-1, match=1)
    got = faster_rcnn_losses(outputs, rpn, box_weights=w)[2].asscalar()
    assert got == pytest.approx(math.log(2), rel=1e-5)


def test_roi_weights_and_rpn_weights_hand_computed():
    samples = nd.array([[1, -1, 1, 0]])
    matches = nd.array([[1, 1, 0, 0]])
    np.testing.assert_allclose(roi_weights(samples, matches, nd.array([[0.6, 0.4]])).asnumpy(),
                               [[0.4, 1, 0.6, 1]], rtol=1e-6)
    # RPN: two sampled anchors (one positive with weight 0.5, one negative); BCE(0, t) = ln 2 each.
    outputs, _ = _one_roi_outputs([0.0, 0.0], 1)
    outputs = list(outputs)
    outputs[5] = nd.zeros((1, 2, 1))
    outputs[6] = nd.zeros((1, 2, 4))
    rpn = (nd.array([[1.0, 0.0]]), nd.ones((1, 2, 4)), nd.array([[[1] * 4, [0] * 4]]),
           nd.array([[0.5, 1.0]]))
    rpn_cls, rpn_box, _, _ = faster_rcnn_losses(outputs, rpn)
    assert rpn_cls.asscalar() == pytest.approx((0.5 + 1.0) * math.log(2) / 2, rel=1e-5)
    # Huber(rho=1/9) of |0 - 1| = 1 - 1/18 on 4 coordinates of the positive, weight 0.5, over 2 samples
    assert rpn_box.asscalar() == pytest.approx(0.5 * 4 * (1 - 1 / 18) / 2, rel=1e-5)


def test_bad_arguments_are_named():
    outputs, rpn = _fake_outputs()
    with pytest.raises(ValueError, match="mixup_mode"):
        faster_rcnn_losses(outputs, rpn, mixup_mode="half")
    with pytest.raises(ValueError, match="mix_ratio"):
        faster_rcnn_losses(outputs, rpn, mix_ratio=0.5)
    with pytest.raises(ValueError, match="padded input size"):
        faster_rcnn_losses(outputs, (rpn[0][:, :5], rpn[1], rpn[2]))
    with pytest.raises(ValueError, match="12 training outputs"):
        faster_rcnn_losses(outputs[:4], rpn)
