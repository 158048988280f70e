"""FasterRCNNTrainTask: how a loader batch reaches the network and the losses (with a stub network)."""
import mxnet as mx
import numpy as np
import pytest

from gluon_bof.model.rcnn import faster_rcnn_losses
from gluon_bof.recipes.faster_rcnn.task import FasterRCNNTrainTask

B, M, S, P, C, N = 1, 2, 4, 2, 3, 6


def outputs_with_all_rois_positive():
    """12 training outputs: 4 sampled RoIs, all positive (matches 0,1,0,1), 2 of them regressed."""
    rng = np.random.default_rng(0)
    nd = lambda a: mx.nd.array(np.asarray(a, dtype=np.float32))  # noqa: E731
    cls_pred = nd(rng.normal(size=(B, S, C + 1)))
    box_pred = nd(rng.normal(size=(B, P, C, 4)))
    samples, matches = nd([[1, 1, 1, 1]]), nd([[0, 1, 0, 1]])
    rpn_score, rpn_box = nd(rng.normal(size=(B, N, 1))), nd(rng.normal(size=(B, N, 4)))
    cls_t = nd([[1, 3, 1, 3]])
    box_t = nd(rng.normal(size=(B, P, C, 4)))
    box_m = nd(np.ones((B, P, C, 4)))
    indices = nd([[0, 1]])
    return (cls_pred, box_pred, nd(np.zeros((B, S, 4))), samples, matches, rpn_score, rpn_box,
            nd(np.zeros((1, N, 4))), cls_t, box_t, box_m, indices)


class StubNet:
    def __init__(self):
        self.calls = []
        self.outputs = outputs_with_all_rois_positive()

    def __call__(self, x, gt_boxes, gt_labels):
        self.calls.append((x.asnumpy(), gt_boxes.asnumpy(), gt_labels.asnumpy()))
        return self.outputs


def batch(weight):
    labels = np.array([[[10, 10, 40, 40, 0, 0, weight], [5, 5, 30, 50, 2, 0, weight]]], dtype=np.float32)
    rpn_cls = np.array([[1, 0, 0, -1, 1, 0]], dtype=np.float32)
    rpn_box = np.zeros((B, N, 4), np.float32) + 0.3
    rpn_mask = np.repeat((rpn_cls > 0)[..., None], 4, axis=2).astype(np.float32)
    rpn_w = np.where(rpn_cls > 0, weight, 1.0).astype(np.float32)
    return (np.zeros((B, 3, 16, 16), np.float32), labels, rpn_cls, rpn_box, rpn_mask, rpn_w)


def run(task, weight):
    net = StubNet()
    parts = task.split(batch(weight), [mx.cpu()])
    losses = [v.asnumpy() for v in task.losses(net, parts[0])]
    return net, losses


def test_network_gets_boxes_and_class_columns():
    net, losses = run(FasterRCNNTrainTask(), 1.0)
    _, boxes, labels = net.calls[0]
    np.testing.assert_array_equal(boxes, [[[10, 10, 40, 40], [5, 5, 30, 50]]])
    np.testing.assert_array_equal(labels, [[[0], [2]]])
    assert [v.shape for v in losses] == [(B,)] * 4


def test_weighted_mixup_scales_positive_terms_by_their_box_weight():
    _, ones = run(FasterRCNNTrainTask(), 1.0)
    _, halves = run(FasterRCNNTrainTask(), 0.5)
    # R-CNN: every RoI positive, so both terms halve; RPN box: only positives carry terms, so it halves.
    np.testing.assert_allclose(halves[1], 0.5 * ones[1], rtol=1e-6)
    np.testing.assert_allclose(halves[2], 0.5 * ones[2], rtol=1e-6)
    np.testing.assert_allclose(halves[3], 0.5 * ones[3], rtol=1e-6)
    # RPN objectness: positives halve, negatives keep weight 1 -> strictly between
    assert 0.5 * ones[0][0] < halves[0][0] < ones[0][0]


def test_even_mode_ignores_box_weights_and_scales_by_half_while_mixup_is_on():
    _, plain = run(FasterRCNNTrainTask(), 1.0)
    task = FasterRCNNTrainTask(mixup_mode="even")
    task.set_mixup(True)
    _, even = run(task, 0.3)  # per-box weights must not matter
    for a, b in zip(even, plain):
        np.testing.assert_allclose(a, 0.5 * b, rtol=1e-6)
    task.set_mixup(False)
    _, after = run(task, 0.3)
    for a, b in zip(after, plain):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_label_smoothing_reaches_the_softmax_head():
    eps = 0.2
    _, smooth = run(FasterRCNNTrainTask(label_smoothing=eps), 1.0)
    outputs = outputs_with_all_rois_positive()
    logp = mx.nd.log_softmax(outputs[0], axis=-1).asnumpy()[0]          # (S, K)
    targets = np.full((S, C + 1), eps / C)
    targets[np.arange(S), [1, 3, 1, 3]] = 1 - eps
    expected = -(targets * logp).sum() * B / S                          # GluonCV: B / N_sampled * sum
    np.testing.assert_allclose(smooth[2], [expected], rtol=1e-5)
    ref = faster_rcnn_losses(outputs, [mx.nd.array(a) for a in batch(1.0)[2:]], label_smoothing=eps)
    np.testing.assert_allclose(smooth[2], ref[2].asnumpy(), rtol=1e-6)


def test_bad_batches_and_settings_are_refused():
    with pytest.raises(ValueError, match="6 arrays"):
        FasterRCNNTrainTask().split(batch(1.0)[:2], [mx.cpu()])
    bad = list(batch(1.0))
    bad[1] = bad[1][..., :6]
    with pytest.raises(ValueError, match="mixup weight"):
        FasterRCNNTrainTask().split(tuple(bad), [mx.cpu()])
    with pytest.raises(ValueError, match="mixup_mode"):
        FasterRCNNTrainTask(mixup_mode="half")
    with pytest.raises(ValueError, match="label_smoothing"):
        FasterRCNNTrainTask(label_smoothing=1.0)
