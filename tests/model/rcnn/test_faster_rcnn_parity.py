"""Parity with GluonCV 0.10.5's Faster R-CNN: parameters both ways, inference and training outputs."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

from gluon_bof.model import get_model

pytestmark = pytest.mark.oracle
gcv_zoo = pytest.importorskip("gluoncv.model_zoo")

X_SHAPE = (1, 3, 160, 224)        # 10 x 14 feature map: 2100 anchors >= 2000 train proposals
# Each test RoI runs the whole last ResNet stage; 300-1000 of them take 10+ s on one CPU thread, so the
# parity nets keep 40 test proposals (GluonCV's constructors take no override: set its attributes).
TEST_POST_NMS = 40


def _pair(name, tmp_path, **nms):
    """GluonCV's net with random weights, and ours loaded from GluonCV's saved file."""
    x = mx.nd.random.uniform(shape=X_SHAPE, ctx=mx.cpu())
    theirs = gcv_zoo.get_model(name, pretrained_base=False)
    theirs.rpn._test_post_nms = theirs._rpn_test_post_nms = TEST_POST_NMS
    theirs.initialize()
    ours = get_model(name, rpn_test_post_nms=TEST_POST_NMS)
    ours.initialize()
    if nms:
        theirs.set_nms(**nms)
        ours.set_nms(**nms)
    theirs(x)                     # GluonCV's shapes are deferred until the first forward
    ours(x)
    path = str(tmp_path / "gluoncv.params")
    theirs.save_parameters(path)
    ours.load_parameters(path)    # strict: same names and shapes
    return theirs, ours, x


@pytest.fixture(scope="module")
def r50_voc(tmp_path_factory):
    return _pair("faster_rcnn_resnet50_v1b_voc", tmp_path_factory.mktemp("r50"))


def test_parameter_names_shapes_and_train_patterns(r50_voc):
    theirs, ours, _ = r50_voc
    p_t, p_o = theirs._collect_params_with_prefix(), ours._collect_params_with_prefix()
    assert len(p_o) == 276 and set(p_o) == set(p_t)
    assert all(p_o[k].shape == p_t[k].shape for k in p_o)

    def strip(names):
        return sorted(n.split("_", 1)[1] if n.startswith("fasterrcnn") else n for n in names)
    assert strip(ours.collect_train_params().keys()) == strip(theirs.collect_train_params().keys())


def test_ours_load_into_gluoncv(r50_voc, tmp_path):
    theirs, ours, x = r50_voc
    fresh = gcv_zoo.get_model("faster_rcnn_resnet50_v1b_voc", pretrained_base=False)
    fresh.rpn._test_post_nms = fresh._rpn_test_post_nms = TEST_POST_NMS
    fresh.initialize()
    fresh(x)
    path = str(tmp_path / "ours.params")
    ours.save_parameters(path)
    fresh.load_parameters(path)   # strict
    for a, b in zip(fresh(x), ours(x)):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())


def test_gluoncv_file_saved_after_training_loads(r50_voc, tmp_path):
    """GluonCV adds two target-encoder constants to its params at the first training forward."""
    theirs, ours, x = r50_voc
    saved = {k: v.data() for k, v in theirs._collect_params_with_prefix().items()}
    saved["_target_generator._box_encoder.means"] = mx.nd.zeros((4,))
    saved["_target_generator._box_encoder.stds"] = mx.nd.array([.1, .1, .2, .2])
    path = str(tmp_path / "trained.params")
    mx.nd.save(path, saved)
    ours.load_parameters(path)
    coco = get_model("faster_rcnn_resnet50_v1b_coco", rpn_test_post_nms=TEST_POST_NMS)
    coco.initialize()
    coco(x)
    with pytest.raises(ValueError, match="class_predictor.weight"):
        coco.load_parameters(path)


@pytest.mark.parametrize("hybridize", [False, True])
def test_inference_outputs_equal(r50_voc, hybridize):
    theirs, ours, x = r50_voc
    theirs.hybridize(active=hybridize)
    ours.hybridize(active=hybridize)
    ids_t, scores_t, boxes_t = theirs(x)
    ids_o, scores_o, boxes_o = ours(x)
    theirs.hybridize(active=False)
    ours.hybridize(active=False)
    assert ids_o.shape == (1, 20 * TEST_POST_NMS, 1)
    assert (scores_o.asnumpy() > 0).sum() > 100
    np.testing.assert_array_equal(ids_o.asnumpy(), ids_t.asnumpy())
    np.testing.assert_allclose(scores_o.asnumpy(), scores_t.asnumpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(boxes_o.asnumpy(), boxes_t.asnumpy(), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("hybridize", [False, True])
def test_training_outputs_equal_with_same_seed(r50_voc, hybridize):
    """Proposals, RoI sampling (same MXNet draws), targets and predictions all coincide."""
    theirs, ours, x = r50_voc
    theirs.hybridize(active=hybridize)
    ours.hybridize(active=hybridize)
    gt = mx.nd.array([[[10, 20, 70, 90], [60, 30, 150, 120], [-1, -1, -1, -1]]])
    label = mx.nd.array([[[3], [7], [-1]]])
    with autograd.train_mode():
        mx.random.seed(7)
        out_t = theirs(x, gt, label)
        mx.random.seed(7)
        out_o = ours(x, gt, label)
    theirs.hybridize(active=False)
    ours.hybridize(active=False)
    names = ["cls_pred", "box_pred", "rois", "samples", "matches", "rpn_score", "rpn_box", "anchors",
             "cls_targets", "box_targets", "box_masks", "indices"]
    for name, a, b in zip(names, out_t, out_o):
        assert a.shape == b.shape, name
        np.testing.assert_allclose(b.asnumpy(), a.asnumpy(), rtol=1e-5, atol=1e-5, err_msg=name)
    samples = out_o[3].asnumpy()
    assert (samples > 0).sum() >= 2 and (samples < 0).sum() >= 64


def test_resnet101_v1d_coco_both_ways(tmp_path):
    theirs, ours, x = _pair("faster_rcnn_resnet101_v1d_coco", tmp_path, nms_thresh=0.5, nms_topk=50,
                            post_nms=-1)
    assert set(ours._collect_params_with_prefix()) == set(theirs._collect_params_with_prefix())
    ours.save_parameters(str(tmp_path / "ours.params"))
    theirs.load_parameters(str(tmp_path / "ours.params"))
    for a, b in zip(theirs(x), ours(x)):
        np.testing.assert_allclose(b.asnumpy(), a.asnumpy(), rtol=1e-5, atol=1e-3)


@pytest.mark.slow
def test_resnet50_v1b_coco_default_nms(tmp_path):
    """COCO defaults: 1000 test RoIs and nms_topk=-1 over 80 x 1000 boxes (minutes on a CPU)."""
    x = mx.nd.random.uniform(shape=X_SHAPE)
    theirs = gcv_zoo.get_model("faster_rcnn_resnet50_v1b_coco", pretrained_base=False)
    theirs.initialize()
    theirs(x)
    ours = get_model("faster_rcnn_resnet50_v1b_coco")
    ours.initialize()
    ours(x)
    theirs.save_parameters(str(tmp_path / "g.params"))
    ours.load_parameters(str(tmp_path / "g.params"))
    for a, b in zip(theirs(x), ours(x)):
        np.testing.assert_allclose(b.asnumpy(), a.asnumpy(), rtol=1e-5, atol=1e-3)
