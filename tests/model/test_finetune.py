"""reset_class gives the same output layers as GluonCV's reset_class on the same parameters."""
import warnings

import mxnet as mx
import numpy as np
import pytest

from gluon_bof.data.class_names import VOC_CLASSES
from gluon_bof.model import get_model
from gluon_bof.model.finetune import infer_num_classes, reset_class, reuse_map

NEW = ["dog", "zebra", "person", "car"]


def _randomize(net, seed=0):
    rng = np.random.RandomState(seed)
    for p in net.collect_params().values():
        if p.grad_req != "null" or "running" in p.name:
            p.set_data(mx.nd.array(rng.uniform(-1, 1, p.shape)))


def test_reuse_map_forms():
    old = ["cat", "dog", "person"]
    assert reuse_map(["person", "dog"], old, ["person", "dog"]) == {0: 2, 1: 1}
    assert reuse_map(["person", "dog"], old, {"dog": "cat", 0: 2}) == {1: 0, 0: 2}
    assert reuse_map(["person"], old, None) == {}
    with pytest.raises(ValueError, match="'horse' is not in the old class names"):
        reuse_map(["person"], old, {"person": "horse"})
    with pytest.raises(ValueError, match="index 5 is out of range for the 1 new classes"):
        reuse_map(["person"], old, {5: 0})
    with pytest.warns(UserWarning, match="'zebra' is not in both"):
        assert reuse_map(["zebra"], old, ["zebra"]) == {}


def _rows_equal(mine, theirs, rows):
    for r in rows:
        np.testing.assert_array_equal(mine[r], theirs[r], err_msg="row %d" % r)


@pytest.mark.oracle
@pytest.mark.parametrize("reuse", [NEW, {"car": "car", "dog": 11}, None])
def test_yolo3_reset_class_matches_gluoncv(tmp_path, reuse):
    gcv = pytest.importorskip("gluoncv")
    theirs = gcv.model_zoo.get_model("yolo3_mobilenet0.25_voc", pretrained_base=False)
    theirs.initialize()
    theirs(mx.nd.zeros((1, 3, 64, 64)))
    _randomize(theirs)
    path = str(tmp_path / "voc.params")
    theirs.save_parameters(path)
    ours = get_model("yolo3_mobilenet0.25_voc")
    ours.load_parameters(path)
    assert infer_num_classes(mx.nd.load(path)) == 20
    old = {k: v.data().asnumpy() for k, v in ours._collect_params_with_prefix().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mapping = reset_class(ours, NEW, dict(reuse) if isinstance(reuse, dict) else reuse)
        theirs.reset_class(NEW, reuse_weights=dict(reuse) if isinstance(reuse, dict) else reuse)
    assert list(ours.classes) == NEW and ours.num_class == 4
    mine = {k: v.data().asnumpy() for k, v in ours._collect_params_with_prefix().items()}
    gluon = {k: v.data().asnumpy() for k, v in theirs._collect_params_with_prefix().items()}
    assert set(mine) == set(gluon)
    expected = {0: 11, 2: 14, 3: 6} if isinstance(reuse, list) else ({3: 6, 0: 11} if reuse else {})
    assert mapping == expected
    for i in range(3):
        for part in ("weight", "bias"):
            key = "yolo_outputs.%d.prediction.%s" % (i, part)
            assert mine[key].shape == gluon[key].shape == (3 * 9,) + old[key].shape[1:]
            rows = [a * 9 + r for a in range(3) for r in list(range(5)) * bool(mapping) + [5 + k for k in mapping]]
            _rows_equal(mine[key], gluon[key], rows)
            fresh = [a * 9 + 5 + k for a in range(3) for k in range(4) if k not in mapping]
            assert not any(np.array_equal(mine[key][r], gluon[key][r]) for r in fresh if mine[key][r].any())
    for key in mine:
        if "prediction" not in key:
            np.testing.assert_array_equal(mine[key], old[key], err_msg=key)
    ids, scores, boxes = ours(mx.nd.zeros((1, 3, 64, 64)))
    assert ids.asnumpy().max() < 4


@pytest.mark.oracle
@pytest.mark.parametrize("reuse", [NEW, {3: 6, 0: 11}])
def test_faster_rcnn_reset_class_matches_gluoncv(tmp_path, reuse):
    gcv = pytest.importorskip("gluoncv")
    rng = np.random.RandomState(1)
    heads = {"class_predictor.weight": (21, 2048), "class_predictor.bias": (21,),
             "box_predictor.weight": (80, 2048), "box_predictor.bias": (80,)}
    path = str(tmp_path / "heads.params")
    mx.nd.save(path, {k: mx.nd.array(rng.uniform(-1, 1, s)) for k, s in heads.items()})
    theirs = gcv.model_zoo.get_model("faster_rcnn_resnet50_v1b_voc", pretrained_base=False)
    theirs.load_parameters(path, allow_missing=True)
    ours = get_model("faster_rcnn_resnet50_v1b_voc")
    ours.load_parameters(path, allow_missing=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mapping = reset_class(ours, NEW, reuse)
        theirs.reset_class(NEW, reuse_weights=reuse)
    assert mapping == {0: 11, 2: 14, 3: 6} if isinstance(reuse, list) else mapping == reuse
    assert ours.classes == NEW and ours.num_class == 4 and ours.target_encoder is not None
    for key in heads:
        mine = ours._collect_params_with_prefix()[key].data().asnumpy()
        gluon = theirs._collect_params_with_prefix()[key].data().asnumpy()
        assert mine.shape == gluon.shape
        if key.startswith("class"):
            rows = [0] + [k + 1 for k in mapping]
        else:
            rows = [4 * k + j for k in mapping for j in range(4)]
        _rows_equal(mine, gluon, rows)
    assert ours.collect_train_params().get("dense0_weight") is not None or any(
        "dense" in n for n in ours.collect_train_params().keys())


def test_reset_class_on_shapes_net_trains_and_saves(tmp_path):
    net = get_model("faster_rcnn_mobilenet0.25_shapes")
    net.initialize()
    net(mx.nd.zeros((1, 3, 128, 128)))
    reset_class(net, ["a", "b"], None)
    ids, _, _ = net(mx.nd.zeros((1, 3, 128, 128)))
    assert ids.shape[1] == 2 * net.rpn.test_post_nms
    path = str(tmp_path / "two.params")
    net.save_parameters(path)
    assert infer_num_classes(mx.nd.load(path)) == 2
    fresh = get_model("faster_rcnn_mobilenet0.25_shapes", classes=["a", "b"])
    fresh.load_parameters(path)
    assert list(VOC_CLASSES)[:1] == ["aeroplane"]
