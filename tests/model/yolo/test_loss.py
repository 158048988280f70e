"""YOLOv3 loss: against a plain numpy re-derivation, and the mixup-weight rule (per-box weight on every positive term)."""
import copy

import mxnet as mx
import numpy as np
import pytest

from gluon_bof.model.yolo.loss import YOLOv3Loss, batch_iou

B, A, K = 2, 12, 3


def np_bce(x, z):
    return np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))


def np_iou(a, b):
    lt = np.maximum(a[:, :, None, :2], b[:, None, :, :2])
    rb = np.minimum(a[:, :, None, 2:], b[:, None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).prod(-1)[:, :, None]
    area_b = (b[..., 2:] - b[..., :2]).prod(-1)[:, None, :]
    return inter / (area_a + area_b - inter + 1e-15)


def np_loss(preds, box_preds, gt, obj_t, center_t, scale_t, weight_t, class_t, thresh=0.7):
    obj, ctr, scl, cls = preds
    pos = obj_t > 0
    ignore = np_iou(box_preds, gt).max(-1, keepdims=True) > thresh
    obj_w = np.where(pos, obj_t, np.where(ignore, 0.0, 1.0))
    obj_l = (obj_w * np_bce(obj, pos.astype(np.float32))).sum((1, 2))
    w = np.where(pos, weight_t * obj_t, 0.0)
    ctr_l = (w * np_bce(ctr, center_t)).sum((1, 2))
    scl_l = (w * np.abs(scl - scale_t)).sum((1, 2))
    cls_l = (np.where(pos, obj_t, 0.0) * np_bce(cls, np.where(pos, class_t, 0.0))).sum((1, 2))
    return obj_l, ctr_l, scl_l, cls_l


def make_inputs(rng, lam=(0.7, 1.0, 0.4)):
    preds = [rng.normal(0, 2, (B, A, c)).astype(np.float32) for c in (1, 2, 2, K)]
    xy = rng.uniform(0, 50, (B, A, 2))
    box_preds = np.concatenate([xy, xy + rng.uniform(5, 30, (B, A, 2))], -1).astype(np.float32)
    gt = np.full((B, 3, 4), -1, np.float32)
    gt[0, :2] = box_preds[0, [0, 5]] + 0.5         # anchors 0 and 5 overlap a gt strongly
    gt[1, :1] = box_preds[1, 3] + [0, 0, 10, 10]
    obj_t = np.zeros((B, A, 1), np.float32)
    obj_t[0, 2], obj_t[0, 7], obj_t[1, 4] = lam
    pos = obj_t > 0
    center_t = np.where(pos, rng.uniform(0, 1, (B, A, 2)), 0).astype(np.float32)
    scale_t = np.where(pos, rng.normal(0, 1, (B, A, 2)), 0).astype(np.float32)
    weight_t = np.where(pos, rng.uniform(1, 2, (B, A, 1)), 0).repeat(2, -1).astype(np.float32)
    class_t = np.where(pos, 0.025, -1).repeat(K, -1).astype(np.float32)
    class_t[0, 2, 1] = class_t[0, 7, 0] = class_t[1, 4, 2] = 0.975
    return preds, box_preds, gt, obj_t, center_t, scale_t, weight_t, class_t


def run(inputs, hybridize=False):
    preds, box_preds, gt, *targets = inputs
    loss = YOLOv3Loss(0.7)
    if hybridize:
        loss.hybridize()
    out = loss(*[mx.nd.array(a) for a in preds + [box_preds, gt] + targets])
    return [o.asnumpy() for o in out]


@pytest.mark.parametrize("hybridize", [False, True])
def test_matches_numpy_reference(hybridize):
    inputs = make_inputs(np.random.default_rng(0))
    ours = run(inputs, hybridize)
    ref = np_loss(*inputs)
    for o, r in zip(ours, ref):
        assert o.shape == (B,)
        np.testing.assert_allclose(o, r, rtol=1e-5)
    # The two strongly overlapped negatives are ignored: the objectness loss drops accordingly.
    iou = np_iou(inputs[1], inputs[2]).max(-1)
    assert iou[0, 0] > 0.7 and iou[0, 5] > 0.7


def test_every_term_of_a_positive_scales_with_its_mixup_weight():
    rng = np.random.default_rng(1)
    base = make_inputs(rng, lam=(1.0, 1.0, 1.0))
    half = copy.deepcopy(base)
    half[3][0, 7] = 0.5                                       # weight of one positive box of image 0
    l_full, l_half = run(base), run(half)
    # center, scale, cls: only positives contribute, so image 0 changes by 0.5 x that anchor's term.
    obj, ctr, scl, cls = (p[0, 7] for p in base[0])
    center_t, scale_t, weight_t, class_t = (t[0, 7] for t in base[4:])
    expected_drop = [0.5 * np_bce(obj, 1.0).sum(),          # objectness target stays 1, weight halves
                     0.5 * (weight_t * np_bce(ctr, center_t)).sum(),
                     0.5 * (weight_t * np.abs(scl - scale_t)).sum(),
                     0.5 * np_bce(cls, class_t).sum()]
    for i in range(4):
        np.testing.assert_allclose(l_full[i][0] - l_half[i][0], expected_drop[i], rtol=1e-4)
    for i in range(4):
        assert l_full[i][1] == l_half[i][1]                   # other image untouched


def test_zero_weight_positive_counts_as_negative():
    inputs = make_inputs(np.random.default_rng(2))
    inputs[3][1, 4] = 0.0
    out = run(inputs)
    assert out[1][1] == 0 and out[2][1] == 0 and out[3][1] == 0
    np.testing.assert_allclose(out[0], np_loss(*inputs)[0], rtol=1e-5)


def test_batch_iou_padding_and_values():
    a = mx.nd.array([[[0, 0, 10, 10], [5, 5, 15, 15]]])
    b = mx.nd.array([[[0, 0, 10, 10], [-1, -1, -1, -1]]])
    iou = batch_iou(mx.nd, a, b).asnumpy()
    np.testing.assert_allclose(iou, [[[1, 0], [25 / 175, 0]]], rtol=1e-6)
