"""YOLOv3 net behaviour on the small CPU model: calls, hybridization, norm layers, errors."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from gluon_bof.model import get_model
from gluon_bof.model.yolo.targets import pad_gt_boxes

CLASSES = ["circle", "square", "triangle"]


def tiny(**kw):
    mx.random.seed(0)
    net = get_model("yolo3_tiny_shapes", classes=CLASSES, **kw)
    net.initialize(mx.init.Xavier())
    return net


def batch(net, hw, labels, mix=False, smooth=False):
    gen = net.target_generator(label_smooth=smooth)
    targets = [np.stack(t) for t in zip(*[gen.gen(lab, hw, has_weight=mix) for lab in labels])]
    x = np.random.default_rng(0).uniform(-1, 1, (len(labels), 3) + hw).astype(np.float32)
    return [mx.nd.array(a) for a in [x, pad_gt_boxes(labels)] + targets]


LABELS = [np.array([[10, 20, 80, 90, 0, 0, 0.6], [100, 40, 180, 150, 2, 0, 0.4]], np.float32),
          np.array([[30, 30, 30, 30, 1, 0, 1.0]], np.float32)]          # a zero-size box


def losses(net, arrays):
    with autograd.record():
        out = net(*arrays)
    return [o.asnumpy() for o in out]


def test_metadata_and_classes_set_k():
    net = tiny()
    assert net.num_class == 3 and net.classes == tuple(CLASSES)
    assert net.strides == (8, 16, 32)
    assert net.anchors[2] == [116, 90, 156, 198, 373, 326]
    params = net._collect_params_with_prefix()
    assert params["yolo_outputs.0.prediction.weight"].shape[0] == 3 * (5 + 3)
    assert params["yolo_outputs.0.anchors"].shape == (1, 1, 3, 2)
    gen = net.target_generator()
    assert gen.num_classes == 3 and gen.num_rows((256, 256)) == 3 * (32 * 32 + 16 * 16 + 8 * 8)


def test_training_call_shapes_finite_and_backward():
    net = tiny()
    arrays = batch(net, (256, 224), LABELS, mix=True, smooth=True)
    with autograd.record():
        out = net(*arrays)
        autograd.backward(sum(o.sum() for o in out))
    assert len(out) == 4 and all(o.shape == (2,) for o in out)
    assert all(np.all(np.isfinite(o.asnumpy())) for o in out)
    grad = net._collect_params_with_prefix()["yolo_outputs.2.prediction.weight"].grad().asnumpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


def test_hybridized_equals_imperative_and_modes_switch():
    net = tiny()
    hw = (224, 192)                                              # not a multiple of 32 on one side
    arrays = batch(net, hw, LABELS, mix=True)
    ref_train = losses(net, arrays)
    ref_infer = [o.asnumpy() for o in net(arrays[0])]
    net.hybridize()
    for _ in range(2):                                           # train -> infer -> train -> infer
        for o, r in zip(losses(net, arrays), ref_train):
            np.testing.assert_allclose(o, r, rtol=1e-5)
        for o, r in zip(net(arrays[0]), ref_infer):
            np.testing.assert_allclose(o.asnumpy(), r, rtol=1e-5, atol=1e-5)


def test_set_nms_and_inference_layout():
    net = tiny()
    x = mx.nd.random.uniform(shape=(1, 3, 128, 128))
    ids, scores, boxes = net(x)
    assert ids.shape == (1, 100, 1) and scores.shape == (1, 100, 1) and boxes.shape == (1, 100, 4)
    net.set_nms(nms_thresh=0.5, nms_topk=50, post_nms=20)
    ids, scores, _ = net(x)
    assert ids.shape == (1, 20, 1)
    s = scores.asnumpy().ravel()
    assert np.all(np.diff(s[s >= 0]) <= 0)                       # sorted by score
    assert set(np.unique(ids.asnumpy())) <= {-1.0, 0.0, 1.0, 2.0}
    net.set_nms(nms_thresh=0)                                    # NMS off: every candidate returned
    ids, _, _ = net(x)
    assert ids.shape == (1, 3 * 3 * (16 * 16 + 8 * 8 + 4 * 4), 1)


def test_syncbn_single_device_no_fallback_and_params_interchangeable(tmp_path):
    sync = tiny(norm_layer=gluon.contrib.nn.SyncBatchNorm, norm_kwargs={"num_devices": 1})
    kinds = {type(b).__name__ for b in _blocks(sync)}
    assert "SyncBatchNorm" in kinds and "BatchNorm" not in kinds
    by_name = tiny(norm_layer="syncbn")
    assert "SyncBatchNorm" in {type(b).__name__ for b in _blocks(by_name)}
    arrays = batch(sync, (128, 128), LABELS)
    out = losses(sync, arrays)
    assert all(np.all(np.isfinite(o)) for o in out)
    path = str(tmp_path / "sync.params")
    sync.save_parameters(path)
    plain = get_model("yolo3_tiny_shapes", classes=CLASSES, pretrained=path)   # strict load into BN
    np.testing.assert_allclose(losses(plain, arrays)[0], out[0], rtol=1e-5)


def _blocks(block):
    yield block
    for child in block._children.values():
        yield from _blocks(child)


def test_bad_inputs_raise_clear_errors():
    net = tiny()
    arrays = batch(net, (128, 128), LABELS)
    with pytest.raises(ValueError, match=r"x must be an NDArray \(B, 3, H, W\)"):
        net(mx.nd.zeros((1, 128, 128)))
    with pytest.raises(TypeError, match="outside training mode"):
        net(*arrays)
    with pytest.raises(TypeError, match="in training mode call net"):
        with autograd.record():
            net(arrays[0])
    with pytest.raises(ValueError, match="class_t must have shape"):
        with autograd.record():
            net(*arrays[:-1], mx.nd.zeros((2, 10, 3)))
    with pytest.raises(ValueError, match="gt_boxes must have shape"):
        with autograd.record():
            net(arrays[0], mx.nd.zeros((2, 3)), *arrays[2:])
    with pytest.raises(ValueError, match="alloc_size"):
        net(mx.nd.zeros((1, 3, 32, 128 * 32 + 32)))


def test_constructor_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("MXNET_HOME", str(tmp_path))  # an empty model store
    with pytest.raises(ValueError, match="darknet53 weights are not on this machine. Searched %s" % tmp_path):
        get_model("yolo3_darknet53_voc", pretrained_base=True)
    with pytest.raises(ValueError, match="classes=... .* is required"):
        get_model("yolo3_mobilenet1.0_custom")
    with pytest.raises(ValueError, match="norm_layer='groupnorm'"):
        get_model("yolo3_tiny_shapes", classes=CLASSES, norm_layer="groupnorm")
    with pytest.raises(ValueError, match="num_devices"):
        get_model("yolo3_tiny_shapes", classes=CLASSES, norm_layer="syncbn", norm_kwargs={"num_devices": 0})
    with pytest.raises(ValueError, match="existing .params"):
        get_model("yolo3_tiny_shapes", classes=CLASSES, pretrained="/nonexistent.params")


def test_tiny_width_knobs():
    small = get_model("yolo3_tiny_shapes", classes=CLASSES)
    wide = get_model("yolo3_tiny_shapes", classes=CLASSES, width=0.5, head_width=0.25)
    for net in (small, wide):
        net.initialize()
        net(mx.nd.zeros((1, 3, 64, 64)))
    ps = small._collect_params_with_prefix()
    pw = wide._collect_params_with_prefix()
    assert ps["yolo_blocks.0.body.0.0.weight"].shape[0] == 64
    assert pw["yolo_blocks.0.body.0.0.weight"].shape[0] == 128
    assert ps["stages.2.9.weight"].shape[0] == 256 and pw["stages.2.9.weight"].shape[0] == 512
    assert sorted(ps) == sorted(pw)                               # same architecture, other widths


def test_tiny_plain_backbone_layout_and_errors():
    net = get_model("yolo3_tiny_shapes", classes=CLASSES, backbone="plain")
    net.initialize()
    x = mx.nd.zeros((1, 3, 96, 160))
    shapes = []
    for stage in net.stages:
        x = stage(x)
        shapes.append(x.shape)
    assert shapes == [(1, 32, 12, 20), (1, 64, 6, 10), (1, 128, 3, 5)]     # strides 8, 16, 32
    params = net._collect_params_with_prefix()
    convs = sorted(k for k in params if k.startswith("stages.") and k.endswith(".0.weight"))
    assert [params[k].shape[:2] for k in convs] == [
        (8, 3), (16, 8), (32, 16), (32, 32), (64, 32), (64, 64), (128, 64), (128, 128), (128, 128)]
    assert all(params[k].shape[2:] == (3, 3) for k in convs)
    assert net.backbone_name == "plain0.25" and len(net.backbone_keys) == 9 * 5   # conv + 4 BN arrays per cell
    wide = get_model("yolo3_tiny_shapes", classes=CLASSES, backbone="plain", width=0.5)
    assert wide._collect_params_with_prefix()["stages.2.2.0.weight"].shape[0] == 256
    with pytest.raises(ValueError, match="backbone='resnet' is not one of mobilenet, plain"):
        get_model("yolo3_tiny_shapes", classes=CLASSES, backbone="resnet")
    with pytest.raises(ValueError, match="multiplier=0.01 must give >= 1 channel"):
        get_model("yolo3_tiny_shapes", classes=CLASSES, backbone="plain", width=0.01)


def test_overfits_one_batch_and_detects_its_boxes():
    """End to end: targets -> losses -> Adam steps -> inference finds every box with its class."""
    net = tiny()
    hw = (128, 128)
    labels = [np.array([[10, 20, 70, 90, 1], [80, 80, 120, 124, 2]], np.float32),
              np.array([[30, 30, 100, 60, 0]], np.float32)]
    arrays = batch(net, hw, labels, smooth=True)
    x = arrays[0].asnumpy()
    for b, lab in enumerate(labels):                             # paint each box in its class channel
        for x1, y1, x2, y2, c in lab.astype(int):
            x[b, c, y1:y2, x1:x2] = 2
    arrays[0] = mx.nd.array(x)
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 3e-3})
    first = None
    for _ in range(120):
        with autograd.record():
            total = sum(o.sum() for o in net(*arrays))
        total.backward()
        trainer.step(2)
        first = first if first is not None else total.asscalar()
    assert total.asscalar() < 0.1 * first
    ids, scores, boxes = [o.asnumpy() for o in net(arrays[0])]
    for b, lab in enumerate(labels):
        for gt in lab:
            hit = (ids[b, :, 0] == gt[4]) & (scores[b, :, 0] > 0.5)
            assert hit.any()
            best = boxes[b][hit][0]
            inter = np.prod(np.clip(np.minimum(best[2:], gt[2:4]) - np.maximum(best[:2], gt[:2]), 0, None))
            union = np.prod(best[2:] - best[:2]) + np.prod(gt[2:4] - gt[:2]) - inter
            assert inter / union > 0.7


def test_huge_raw_scales_give_finite_boxes():
    net = tiny()
    bias = net._collect_params_with_prefix()["yolo_outputs.0.prediction.bias"]
    b = bias.data().asnumpy()
    b[2:4] = 200.0                                                # raw w, h of anchor 0: exp overflows
    bias.set_data(mx.nd.array(b))
    net.set_nms(nms_thresh=0)
    _, scores, boxes = [o.asnumpy() for o in net(mx.nd.random.uniform(shape=(1, 3, 64, 64)))]
    assert np.all(np.isfinite(boxes)) and np.all(np.isfinite(scores))
    assert np.abs(boxes).max() > 1e8                              # clipped at exp(20), not zeroed
    small = LABELS[0][:, :6] * [0.25, 0.25, 0.25, 0.25, 1, 1]
    out = losses(net, batch(net, (64, 64), [small.astype(np.float32)]))
    assert all(np.all(np.isfinite(o)) for o in out)


@pytest.mark.parametrize("hw", [(7, 7), (5, 9)])
def test_upsample_equals_gluoncv_repeats_values_and_gradient(hw):
    from gluon_bof.model.yolo.yolo3 import _upsample2x
    x = mx.nd.array(np.random.default_rng(1).normal(size=(2, 3) + hw).astype(np.float32))
    head = mx.nd.array(np.random.default_rng(2).normal(size=(2, 3, 2 * hw[0], 2 * hw[1])).astype(np.float32))
    outs, grads = [], []
    for fn in (lambda v: _upsample2x(mx.nd, v), lambda v: v.repeat(axis=-1, repeats=2).repeat(axis=-2, repeats=2)):
        v = x.copy()
        v.attach_grad()
        with autograd.record():
            y = fn(v)
            (y * head).sum().backward()
        outs.append(y.asnumpy())
        grads.append(v.grad.asnumpy())
    assert outs[0].shape == (2, 3, 2 * hw[0], 2 * hw[1])
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6, atol=1e-6)
