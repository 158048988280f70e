"""Faster R-CNN network behaviour: the CPU-sized Shapes model trains, batch inference, errors, SyncBN."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from gluon_bof.model import get_model
from gluon_bof.model.rcnn import RPNTargetTransform, faster_rcnn_losses, pad_rpn_targets
from gluon_bof.model.rcnn.anchors import feature_size

CLASSES = ["circle", "square", "triangle"]
H, W = 128, 160


def _shapes_net(**kwargs):
    net = get_model("faster_rcnn_resnet18_v1b_shapes", classes=CLASSES, **kwargs)
    net.initialize(mx.init.Xavier(magnitude=2))
    return net


def _image_and_targets(net, rng):
    img = np.zeros((3, H, W), np.float32)
    img[:, 30:90, 40:120] = 1.0
    gt = np.array([[40, 30, 120, 90]], np.float32)
    label = np.array([[40, 30, 120, 90, 1, 0, 1.0]], np.float32)
    per_image = RPNTargetTransform.from_net(net)((H, W), label, rng)
    assert per_image[0].shape == (feature_size(H), feature_size(W), 9)
    rpn = tuple(mx.nd.array(a) for a in pad_rpn_targets([per_image]))
    return mx.nd.array(img[None]), mx.nd.array(gt[None]), mx.nd.array([[[1.0]]]), rpn


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_shapes_model_loss_decreases_over_a_few_steps():
    mx.random.seed(0)
    net = _shapes_net()
    x, gt, label, rpn = _image_and_targets(net, np.random.default_rng(0))
    net.hybridize()
    trainer = gluon.Trainer(net.collect_train_params(), "sgd",
                            {"learning_rate": 0.01, "momentum": 0.9, "wd": 1e-4})
    totals = []
    for _ in range(6):
        with autograd.record():
            outputs = net(x, gt, label)
            losses = faster_rcnn_losses(outputs, rpn, box_weights=mx.nd.ones((1, 1)),
                                        label_smoothing=0.1)
            total = sum(l.sum() for l in losses)
        total.backward()
        trainer.step(1)
        totals.append(total.asscalar())
    assert np.isfinite(totals).all()
    assert totals[-1] < 0.8 * totals[0], totals


@pytest.mark.slow
def test_training_then_inference_overfits_one_image():
    """End to end: data-worker targets -> training outputs -> losses -> SGD -> detections.

    About 40 s on one idle CPU thread: ``pytest -m slow tests/model/rcnn``.
    """
    mx.random.seed(0)
    net = _shapes_net()
    img = np.random.default_rng(0).uniform(-0.2, 0.2, (3, H, W)).astype(np.float32)
    img[0, 20:70, 20:80] = 1.5
    img[2, 60:110, 90:150] = -1.5
    label = np.array([[20, 20, 80, 70, 0, 0, 1], [90, 60, 150, 110, 2, 0, 1]], np.float32)
    per_image = RPNTargetTransform.from_net(net)((H, W), label, np.random.default_rng(0))
    rpn = tuple(mx.nd.array(a) for a in pad_rpn_targets([per_image]))
    x, gt, cls = (mx.nd.array(img[None]), mx.nd.array(label[None, :, :4]),
                  mx.nd.array(label[None, :, 4:5]))
    net.hybridize()
    trainer = gluon.Trainer(net.collect_train_params(), "sgd",
                            {"learning_rate": 0.01, "momentum": 0.9})
    totals = []
    for _ in range(50):
        with autograd.record():
            losses = faster_rcnn_losses(net(x, gt, cls), rpn, box_weights=mx.nd.ones((1, 2)),
                                        label_smoothing=0.05)
            total = sum(l.sum() for l in losses)
        total.backward()
        trainer.step(1)
        totals.append(total.asscalar())
    assert np.isfinite(totals).all() and totals[-1] < 0.3 * totals[0], totals
    ids, scores, boxes = (o[0].asnumpy() for o in net(x))
    for box, class_id in ((label[0, :4], 0), (label[1, :4], 2)):
        hits = [s for i, s, b in zip(ids[:, 0], scores[:, 0], boxes)
                if i == class_id and _iou(b, box) >= 0.5]
        assert hits and max(hits) > 0.5, (class_id, hits)


def test_batch_inference_equals_per_image_inference():
    net = _shapes_net(rpn_test_post_nms=20, nms_topk=30)
    rng = np.random.default_rng(1)
    x = mx.nd.array(rng.uniform(-1, 1, (2, 3, H, W)))
    ids, scores, boxes = net(x)
    assert ids.shape == (2, 3 * 20, 1) and boxes.shape == (2, 3 * 20, 4)
    for i in range(2):
        one = net(x[i:i + 1])
        np.testing.assert_allclose(scores[i].asnumpy(), one[1][0].asnumpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(boxes[i].asnumpy(), one[2][0].asnumpy(), rtol=1e-5, atol=1e-3)


def test_training_sampler_counts():
    net = _shapes_net()
    x, gt, label, _ = _image_and_targets(net, np.random.default_rng(0))
    with autograd.train_mode():
        out = net(x, gt, label)
    samples, cls_t, indices = out[3].asnumpy(), out[8].asnumpy(), out[11].asnumpy()
    assert samples.shape == (1, 64) and out[1].shape == (1, 16, 3, 4)
    assert 1 <= (samples > 0).sum() <= 16          # gt box itself is a candidate, 25% cap
    # positives get class gt+1 = 2, negatives background 0
    np.testing.assert_array_equal(cls_t[samples > 0], 2)
    np.testing.assert_array_equal(cls_t[samples < 0], 0)
    # positives come first in `indices`, and only their gt class has a box mask
    n_pos = int((samples > 0).sum())
    assert (samples[0, indices[0, :n_pos].astype(int)] > 0).all()
    masks = out[10].asnumpy()[0]
    assert masks[:n_pos, 1].all() and not masks[:n_pos, [0, 2]].any() and not masks[n_pos:].any()


def test_errors_name_the_problem():
    net = _shapes_net()
    x, gt, label, _ = _image_and_targets(net, np.random.default_rng(0))
    with autograd.train_mode(), pytest.raises(ValueError, match="gt_boxes"):
        net(x)
    with autograd.train_mode(), pytest.raises(ValueError, match="per_device_batch_size"):
        net(mx.nd.concat(x, x, dim=0), mx.nd.concat(gt, gt, dim=0),
            mx.nd.concat(label, label, dim=0))
    with autograd.train_mode(), pytest.raises(ValueError, match="max_num_gt=32"):
        net(x, mx.nd.zeros((1, 40, 4)), mx.nd.zeros((1, 40, 1)))
    with pytest.raises(ValueError, match="fewer than the 100 proposals"):
        net(mx.nd.zeros((1, 3, 32, 32)))
    with pytest.raises(ValueError, match="norm must be"):
        get_model("faster_rcnn_resnet50_v1b_voc", norm="group")
    with pytest.raises(ValueError, match="num_devices"):
        get_model("faster_rcnn_resnet50_v1b_voc", norm="syncbn")
    with pytest.raises(ValueError, match="classes"):
        get_model("faster_rcnn_resnet18_v1b_shapes", classes=[])
    with pytest.raises(ValueError, match="load_parameters"):
        get_model("faster_rcnn_resnet50_v1b_voc", pretrained=True)


def test_shapes_model_defaults_and_overrides():
    from gluon_bof.data.shapes import ShapesDetection
    net = get_model("faster_rcnn_resnet18_v1b_shapes")
    assert net.classes == list(ShapesDetection.CLASSES)
    assert (net.short, net.max_size, net.rpn.test_post_nms) == (256, 384, 100)
    assert get_model("faster_rcnn_resnet18_v1b_shapes", rpn_test_post_nms=50).rpn.test_post_nms == 50


def test_frozen_bn_by_default_and_syncbn_by_flag():
    frozen = get_model("faster_rcnn_resnet50_v1b_voc")
    sync = get_model("faster_rcnn_resnet50_v1b_voc", norm="syncbn", num_devices=1)
    bn_frozen = frozen.features[1]
    assert isinstance(bn_frozen, gluon.nn.BatchNorm) and bn_frozen._kwargs["use_global_stats"]
    assert type(sync.features[1]).__name__ == "SyncBatchNorm"
    assert set(frozen._collect_params_with_prefix()) == set(sync._collect_params_with_prefix())
    frozen_train = list(frozen.collect_train_params().keys())
    sync_train = list(sync.collect_train_params().keys())
    assert not any("batchnorm" in k for k in frozen_train)
    assert any("layers3_syncbatchnorm" in k for k in sync_train)
    assert not any("layers1_" in k for k in sync_train)


def test_hybridized_net_switches_between_training_and_inference():
    net = _shapes_net(rpn_test_post_nms=20)
    x, gt, label, _ = _image_and_targets(net, np.random.default_rng(0))
    net.hybridize()
    before = net(x)[1].asnumpy()
    with autograd.train_mode():
        assert len(net(x, gt, label)) == 12
    after = net(x)[1].asnumpy()
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-6)


def test_shapes_model_trains_every_layer():
    net = get_model("faster_rcnn_resnet18_v1b_shapes", classes=CLASSES)
    trained = set(net.collect_train_params().keys())
    assert "resnetv1b_conv0_weight" in trained and "resnetv1b_layers1_batchnorm0_gamma" in trained
    assert not any("running" in k or "anchor" in k for k in trained)
