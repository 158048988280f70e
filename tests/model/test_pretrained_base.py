"""ImageNet backbone files in GluonCV's store layout load into our detectors as GluonCV's
``pretrained_base=True`` does; missing, mismatching, truncated and foreign files are clear errors."""
import hashlib
import os

import mxnet as mx
import numpy as np
import pytest

from gluon_bof.model import get_model, store
from gluon_bof.model.pretrained import load_pretrained_base
from gluon_bof.model.store import PretrainedFileError


def _sha1(path):
    return hashlib.sha1(open(path, "rb").read()).hexdigest()


def write_store_file(gcv_net, name, models_dir, monkeypatch, seed=0):
    """Save ``gcv_net`` (a GluonCV classifier) with random values as ``<name>-<sha1[:8]>.params`` in
    ``models_dir`` and patch the hash into GluonCV's and our tables. Returns the path."""
    rng = np.random.RandomState(seed)
    gcv_net.initialize()
    gcv_net(mx.nd.zeros((1, 3, 32, 32)))
    for p in gcv_net.collect_params().values():
        p.set_data(mx.nd.array(rng.uniform(0.5, 1.5, p.shape)))
    os.makedirs(models_dir, exist_ok=True)
    tmp = os.path.join(models_dir, "tmp.params")
    gcv_net.save_parameters(tmp)
    digest = _sha1(tmp)
    path = os.path.join(models_dir, "%s-%s.params" % (name, digest[:8]))
    os.replace(tmp, path)
    monkeypatch.setitem(store.MODEL_SHA1, name, digest)
    try:
        from gluoncv.model_zoo import model_store
        monkeypatch.setitem(model_store._model_sha1, name, digest)
    except ImportError:
        pass
    return path


@pytest.fixture
def mxnet_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MXNET_HOME", str(tmp_path))
    monkeypatch.setenv("MXNET_GLUON_REPO", "http://127.0.0.1:9/")  # any download attempt fails fast
    return tmp_path


def _ours_initialized(name, size=64, **kwargs):
    net = get_model(name, **kwargs)
    net.initialize()
    net(mx.nd.zeros((1, 3, size, size)))
    return net


def _assert_backbone_equal(ours, theirs):
    gcv = theirs._collect_params_with_prefix()
    mine = ours._collect_params_with_prefix()
    assert ours.backbone_keys
    for key in ours.backbone_keys:
        np.testing.assert_array_equal(mine[key].data().asnumpy(), gcv[key].data().asnumpy(), err_msg=key)


@pytest.mark.oracle
def test_yolo3_mobilenet025_backbone_equals_gluoncv_pretrained_base(mxnet_home, monkeypatch):
    gcv = pytest.importorskip("gluoncv")
    write_store_file(gcv.model_zoo.get_model("mobilenet0.25"), "mobilenet0.25", str(mxnet_home / "models"),
                     monkeypatch)
    theirs = gcv.model_zoo.get_model("yolo3_mobilenet0.25_voc", pretrained_base=True)
    ours = _ours_initialized("yolo3_mobilenet0.25_voc")
    info = load_pretrained_base(ours, True)
    assert info["name"] == "mobilenet0.25" and info["num_params"] == 135
    _assert_backbone_equal(ours, theirs)
    # GluonCV's constructor form: the weights load at construction
    _assert_backbone_equal(get_model("yolo3_mobilenet0.25_voc", pretrained_base=True), theirs)


@pytest.mark.oracle
def test_faster_rcnn_resnet50_backbone_equals_gluoncv_pretrained_base(mxnet_home, monkeypatch):
    gcv = pytest.importorskip("gluoncv")
    write_store_file(gcv.model_zoo.get_model("resnet50_v1b"), "resnet50_v1b", str(mxnet_home / "models"),
                     monkeypatch)
    theirs = gcv.model_zoo.get_model("faster_rcnn_resnet50_v1b_voc", pretrained_base=True)
    ours = get_model("faster_rcnn_resnet50_v1b_voc")
    ours.initialize()
    ours(mx.nd.zeros((1, 3, 128, 128)))
    assert load_pretrained_base(ours, True)["num_params"] == 265  # 53 convs + 53 BN x 4
    _assert_backbone_equal(ours, theirs)
    # frozen BN and GluonCV's train patterns: the same backbone parameters are trained
    mine, gluon = _trained(ours), _trained(theirs)
    assert mine == gluon and "features.0.weight" not in mine and "features.5.0.conv1.weight" in mine


def _trained(net):
    ids = {id(p) for p in net.collect_train_params().values()}
    return {k for k, p in net._collect_params_with_prefix().items()
            if id(p) in ids and k.startswith(("features", "top_features"))}


@pytest.mark.oracle
@pytest.mark.slow
@pytest.mark.parametrize("name, detector, size", [("darknet53", "yolo3_darknet53_voc", 64),
                                                  ("resnet101_v1d", "faster_rcnn_resnet101_v1d_coco", 128)])
def test_large_backbones_equal_gluoncv_pretrained_base(mxnet_home, monkeypatch, name, detector, size):
    gcv = pytest.importorskip("gluoncv")
    write_store_file(gcv.model_zoo.get_model(name), name, str(mxnet_home / "models"), monkeypatch)
    theirs = gcv.model_zoo.get_model(detector, pretrained_base=True)
    ours = _ours_initialized(detector, size)
    load_pretrained_base(ours, True)
    _assert_backbone_equal(ours, theirs)


def test_missing_file_names_paths_hash_and_how_to_obtain(mxnet_home):
    net = get_model("yolo3_mobilenet0.25_voc")
    with pytest.raises(PretrainedFileError) as err:
        load_pretrained_base(net, True, "--pretrained-base")
    text = str(err.value)
    for part in (str(mxnet_home / "models"), "mobilenet0.25-f0046a3d.params", store.MODEL_SHA1["mobilenet0.25"],
                 "get_model('mobilenet0.25', pretrained=True)", "--pretrained-base"):
        assert part in text, part


def test_wrong_hash_and_truncated_file_are_refused(mxnet_home, monkeypatch, tmp_path):
    gcv_like = get_model("yolo3_mobilenet0.25_voc")  # any file will do for the hash check
    models = mxnet_home / "models"
    models.mkdir()
    bad = models / store.file_name("mobilenet0.25")
    bad.write_bytes(b"not the published bytes")
    with pytest.raises(PretrainedFileError, match="SHA-1 of .*mobilenet0.25-f0046a3d.params is .* but GluonCV "
                                                  "publishes f0046a3d"):
        load_pretrained_base(gcv_like, True)

    from gluon_bof.model.backbones.mobilenet import mobilenet_features
    whole = tmp_path / "mine.params"
    src = mx.gluon.nn.HybridSequential()
    with src.name_scope():
        src.add(mobilenet_features(0.25))
    src.initialize()
    src(mx.nd.zeros((1, 3, 32, 32)))
    mx.nd.save(str(whole), {"features." + k.split(".", 1)[1]: v.data()
                            for k, v in src._collect_params_with_prefix().items()})
    truncated = tmp_path / "cut.params"
    truncated.write_bytes(whole.read_bytes()[:5000])
    with pytest.raises(PretrainedFileError, match="cut.params is not a readable MXNet .params file"):
        load_pretrained_base(gcv_like, str(truncated))
    # a store-named file given by path is checked against its hash too
    named = tmp_path / "mobilenet0.25-f0046a3d.params"
    named.write_bytes(whole.read_bytes())
    with pytest.raises(PretrainedFileError, match="SHA-1"):
        load_pretrained_base(gcv_like, str(named))
    # the complete file of one's own loads
    info = load_pretrained_base(gcv_like, str(whole))
    assert info["num_params"] == 135


def test_file_of_another_network_is_refused(tmp_path):
    from gluon_bof.model.backbones.mobilenet import mobilenet_features
    net = get_model("yolo3_mobilenet0.25_voc")
    wide = mobilenet_features(0.5)
    wide.initialize()
    wide(mx.nd.zeros((1, 3, 32, 32)))
    path = tmp_path / "wide.params"
    mx.nd.save(str(path), {"features." + k: v.data() for k, v in wide._collect_params_with_prefix().items()})
    with pytest.raises(PretrainedFileError, match="not a GluonCV mobilenet0.25 ImageNet file: features.0.weight "
                                                  "has shape \\(16, 3, 3, 3\\) in the file but \\(8, "):
        load_pretrained_base(net, str(path))
    frcnn = get_model("faster_rcnn_resnet18_v1b_shapes")
    with pytest.raises(PretrainedFileError, match="not a GluonCV resnet18_v1b ImageNet file: .*missing "
                                                  "\\(e.g. bn1.beta"):
        load_pretrained_base(frcnn, str(path))
