"""YOLOv3 against GluonCV 0.10.5: parameters load strictly both ways, same detections, same losses.

Each backbone builds its nets once (module fixture). Inputs 256x256, batch 2, Xavier init so that
the random net gives finite boxes. About 10 s for mobilenet1.0 and 30 s for darknet53 on 2 cores.
"""
import os
import warnings

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

from _yolo_oracle import gluoncv_prefetch, random_labels
from gluon_bof.model import get_model
from gluon_bof.model.yolo.targets import YOLOv3TargetGenerator, pad_gt_boxes

HW = (256, 256)
K = 20


class Pair:
    """Our net and GluonCV's with identical parameters, plus a batch with targets."""

    def __init__(self, name, tmp):
        import gluoncv
        self.name = name
        mx.random.seed(3)
        self.ours = get_model(name, pretrained_base=False)
        self.ours.initialize(mx.init.Xavier(magnitude=1.0))
        rng = np.random.default_rng(7)
        self.x = mx.nd.array(rng.uniform(-1, 1, (2, 3) + HW).astype(np.float32))
        self.ours(self.x)
        self.ours_file = os.path.join(tmp, "ours.params")
        self.ours.save_parameters(self.ours_file)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.ref = gluoncv.model_zoo.get_model(name, pretrained_base=False)
        self.ref.load_parameters(self.ours_file)              # strict (default)
        self.ref_file = os.path.join(tmp, "ref.params")
        self.ref.save_parameters(self.ref_file)
        self.labels = random_labels(rng, 2, HW, K, mix=True)
        self.labels[0] = np.concatenate([self.labels[0], [[20, 30, 90, 120, 4, 0, 0.6]]]).astype(np.float32)


@pytest.fixture(scope="module", params=[
    "yolo3_mobilenet1.0_voc", "yolo3_darknet53_voc"])
def pair(request, tmp_path_factory):
    return Pair(request.param, str(tmp_path_factory.mktemp("params")))


def _losses(net, x, targets):
    with autograd.record():
        losses = net(x, *[mx.nd.array(t) for t in targets])
        autograd.backward(sum(l.sum() for l in losses))
    return [l.asnumpy() for l in losses]


@pytest.mark.oracle
def test_param_files_load_strictly_both_ways(pair):
    ours_keys = mx.nd.load(pair.ours_file)
    ref_keys = mx.nd.load(pair.ref_file)
    assert sorted(ours_keys) == sorted(ref_keys)
    assert all(ours_keys[k].shape == ref_keys[k].shape for k in ours_keys)
    fresh = get_model(pair.name, pretrained=pair.ref_file)
    for k, v in fresh._collect_params_with_prefix().items():
        np.testing.assert_array_equal(v.data().asnumpy(), ref_keys[k].asnumpy(), err_msg=k)
    # gluoncv -> ours: the loaded net detects like GluonCV's.
    for o, r in zip(fresh(pair.x), pair.ref(pair.x)):
        np.testing.assert_allclose(o.asnumpy(), r.asnumpy(), rtol=1e-5, atol=1e-3)


@pytest.mark.oracle
def test_same_detections(pair):
    ids, scores, boxes = [o.asnumpy() for o in pair.ours(pair.x)]
    rids, rscores, rboxes = [o.asnumpy() for o in pair.ref(pair.x)]
    assert np.all(np.isfinite(boxes)) and (scores > 0).sum() > 50
    np.testing.assert_array_equal(ids, rids)
    np.testing.assert_allclose(scores, rscores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(boxes, rboxes, rtol=1e-5, atol=1e-3)
    # Hybridized, and NMS settings changed on both.
    pair.ours.hybridize()
    pair.ours.set_nms(0.3, 200, 50)
    pair.ref.set_nms(0.3, 200, 50)
    ids, scores, boxes = [o.asnumpy() for o in pair.ours(pair.x)]
    pair.ours.hybridize(active=False)
    rids, rscores, rboxes = [o.asnumpy() for o in pair.ref(pair.x)]
    pair.ours.set_nms()
    pair.ref.set_nms()
    assert ids.shape == (2, 50, 1)
    np.testing.assert_array_equal(ids, rids)
    np.testing.assert_allclose(scores, rscores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(boxes, rboxes, rtol=1e-5, atol=1e-3)


@pytest.mark.oracle
@pytest.mark.parametrize("smooth,mix", [(False, False), (True, True)])
def test_same_training_losses_and_gradients(pair, smooth, mix):
    labels = [lab if mix else lab[:, :6] for lab in pair.labels]
    ref_t = gluoncv_prefetch(labels, HW, K, mix=mix)
    gen = YOLOv3TargetGenerator(pair.ours.num_class, pair.ours.anchors, pair.ours.strides, label_smooth=smooth)
    ours_t = [np.stack(t) for t in zip(*[gen.gen(lab, HW, has_weight=mix) for lab in labels])]
    gt = pad_gt_boxes(labels)
    pair.ref._target_generator._label_smooth = smooth
    try:
        ref_l = _losses(pair.ref, pair.x, [gt] + ref_t)
    finally:
        pair.ref._target_generator._label_smooth = False
    ours_l = _losses(pair.ours, pair.x, [gt] + ours_t)
    for name, o, r in zip(("obj", "center", "scale", "cls"), ours_l, ref_l):
        assert o.shape == (2,), name
        np.testing.assert_allclose(o, r, rtol=2e-5, err_msg=name)
    assert all(l.min() > 0 for l in ours_l)
    ours_p = pair.ours._collect_params_with_prefix()
    ref_p = pair.ref._collect_params_with_prefix()
    for key in ("stages.0.0.weight" if "stages.0.0.weight" in ours_p else "stages.0.0.0.weight",
                "yolo_outputs.2.prediction.weight", "yolo_outputs.0.prediction.bias"):
        g, rg = ours_p[key].grad().asnumpy(), ref_p[key].grad().asnumpy()
        np.testing.assert_allclose(g, rg, rtol=1e-3, atol=1e-4 * np.abs(rg).max(), err_msg=key)


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["yolo3_mobilenet0.25_voc", "yolo3_mobilenet1.0_coco"])
def test_other_gluoncv_names_have_the_same_parameters(name, tmp_path):
    import gluoncv
    ours = get_model(name)
    ours.initialize()
    ours(mx.nd.zeros((1, 3, 64, 64)))
    path = str(tmp_path / "p.params")
    ours.save_parameters(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = gluoncv.model_zoo.get_model(name, pretrained_base=False)
    ref.load_parameters(path)                                  # strict: same keys and shapes
    assert len(ref.classes) == ours.num_class


@pytest.mark.oracle
def test_syncbn_training_losses_match_gluoncv(tmp_path):
    """SyncBatchNorm with one device on both sides (GluonCV's script would fall back to BN)."""
    import gluoncv
    name, hw = "yolo3_mobilenet0.25_voc", (128, 128)
    norm = dict(norm_layer=mx.gluon.contrib.nn.SyncBatchNorm, norm_kwargs={"num_devices": 1})
    ours = get_model(name, **norm)
    ours.initialize(mx.init.Xavier())
    rng = np.random.default_rng(11)
    x = mx.nd.array(rng.uniform(-1, 1, (2, 3) + hw).astype(np.float32))
    ours(x)
    path = str(tmp_path / "sync.params")
    ours.save_parameters(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = gluoncv.model_zoo.get_model(name, pretrained_base=False, **norm)
    ref.load_parameters(path)
    labels = random_labels(rng, 2, hw, K, mix=True)
    labels[1] = np.array([[5, 5, 60, 70, 3, 0, 0.5]], np.float32)
    gen = ours.target_generator(label_smooth=True)
    ours_t = [np.stack(t) for t in zip(*[gen.gen(lab, hw, has_weight=True) for lab in labels])]
    ref._target_generator._label_smooth = True
    gt = pad_gt_boxes(labels)
    ref_l = _losses(ref, x, [gt] + gluoncv_prefetch(labels, hw, K, mix=True))
    ours_l = _losses(ours, x, [gt] + ours_t)
    for o, r in zip(ours_l, ref_l):
        np.testing.assert_allclose(o, r, rtol=2e-5)
