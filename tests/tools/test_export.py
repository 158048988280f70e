"""Export of a trained run: zoo file (loaded by GluonCV's own loader), symbol graph, ONNX, model card.

Runs are fixtures, not trainings: a model is built, initialised, saved with a checkpoint manifest
and a results file, exactly as a training run leaves them. Every format is checked against the
network the weights came from.
"""
import hashlib
import json
import os
import sys
import warnings

import mxnet as mx
import numpy as np
import pytest

from gluon_bof.engine.checkpoint import save_checkpoint
from gluon_bof.metrics.results import FORMAT as RESULTS_FORMAT, save_results_json
from gluon_bof.model import get_model
from gluon_bof.tools import export as export_tool
from gluon_bof.tools.onnx_export import OnnxExportError, export_onnx
from gluon_bof.tools.run_model import ModelFileError, load_run_model

SHAPES = ["circle", "rectangle", "triangle", "star", "cross", "ring"]
YOLO_ARGS = {"network": "tiny", "dataset": "shapes", "classes": None, "tiny_width": 0.25, "tiny_head_width": 0.125,
             "data_shape": 128, "epochs": 3, "mixup": True, "label_smooth": True, "lr_mode": "cosine",
             "warmup_epochs": 1, "syncbn": False, "no_random_shape": False, "no_wd": True, "num_workers": 0}
RCNN_ARGS = {"network": "mobilenet0.25", "dataset": "shapes", "classes": None, "short": None, "max_size": None,
             "epochs": 2, "mixup": True, "mixup_mode": "weighted", "label_smooth": 0.1, "lr_mode": "cosine",
             "lr_warmup": 200, "norm_layer": None}


def make_run(run_dir, name, args, classes, input_shape, kwargs=None, seed=1, map_value=0.42):
    """A training run's folder: best.params + best.manifest.json + the results file of that epoch."""
    mx.random.seed(seed)
    net = get_model(name, classes=classes, pretrained_base=False, **(kwargs or {}))
    net.initialize(mx.init.Xavier(magnitude=2.0))
    net(mx.nd.zeros(input_shape))
    epoch = int(args["epochs"])
    save_checkpoint(str(run_dir), "best", net, None, {"epoch": epoch, "args": dict(args), "best_map": map_value})
    save_results_json(str(run_dir / ("results_epoch%04d.json" % (epoch - 1))), {
        "format": RESULTS_FORMAT, "version": 1, "protocol": "voc07", "iou_thresh": 0.5, "difficult": "ignored",
        "dataset": args["dataset"], "split": "val", "model": name, "checkpoint": None, "epoch": epoch - 1,
        "classes": list(net.classes), "per_class_ap": [map_value] * len(net.classes), "map": map_value, "num_images": 8})
    return net, str(run_dir / "best.params")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("tiny_run"), "yolo3_tiny_shapes", YOLO_ARGS, SHAPES, (1, 3, 128, 128))


@pytest.fixture(scope="module")
def rcnn_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("rcnn_run"), "faster_rcnn_mobilenet0.25_shapes", RCNN_ARGS, SHAPES,
                    (1, 3, 224, 224))


def sha1(path):
    return hashlib.sha1(open(path, "rb").read()).hexdigest()


def detections(net, x):
    return [o.asnumpy() for o in net(mx.nd.array(x))]


def assert_same(got, want):
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-5, atol=1e-3)


def test_tiny_export_zoo_and_card(tiny_run, tmp_path):
    net, params = tiny_run
    out = tmp_path / "export"
    card = export_tool.run_export(params, str(out), ["zoo"], timing_runs=2)
    digest = sha1(params)
    zoo_file = out / ("yolo3_tiny_shapes-%s.params" % digest[:8])
    assert sha1(str(zoo_file)) == digest
    entry = (out / "model_store_entry.txt").read_text()
    assert "    ('%s', 'yolo3_tiny_shapes'),\n" % digest in entry
    assert "GluonCV has no model named yolo3_tiny_shapes" in entry and "custom_yolov3('mobilenet0.25'" in entry
    assert (out / "classes.txt").read_text().split() == SHAPES

    on_disk = json.loads((out / "model_card.json").read_text())
    assert on_disk == json.loads(json.dumps(card))
    assert card["model_name"] == "yolo3_tiny_shapes" and card["classes"] == SHAPES
    assert card["input"]["data_shape"] == 128
    assert card["evaluation"]["map"] == pytest.approx(0.42) and card["evaluation"]["split"] == "val"
    assert card["evaluation"]["epoch"] == 2 and card["evaluation"]["results_file"] == "results_epoch0002.json"
    assert "python train_yolo3.py" in card["training"]["command"] and "--mixup" in card["training"]["command"]
    assert "--tiny-width 0.25" in card["training"]["command"]
    assert card["training"]["freebies"]["mixup"] and card["training"]["freebies"]["cosine_lr"]
    assert not card["training"]["freebies"]["synchronized_bn"]
    assert card["training"]["freebies"]["data_augmentation"] == ["color_jitter", "expand", "crop", "flip",
                                                                 "random_interp"]
    assert card["parameters"]["total"] == sum(int(np.prod(p.shape)) for p in net.collect_params().values())
    assert card["inference"]["ms_per_image_median"] > 0 and card["inference"]["input_shape"] == [1, 3, 128, 128]
    assert card["package"]["gluon_bof"]
    listed = {f["file"]: f for f in card["files"]}
    assert set(listed) == {zoo_file.name, "model_store_entry.txt", "classes.txt"}
    for name, record in listed.items():
        assert record["sha1"] == sha1(str(out / name)) and record["bytes"] == os.path.getsize(out / name)
    md = (out / "model_card.md").read_text()
    assert "0.4200 voc07 on shapes / val" in md and digest in md


@pytest.mark.oracle
def test_tiny_zoo_file_loads_into_the_gluoncv_architecture_it_names(tiny_run, tmp_path):
    yolo3 = pytest.importorskip("gluoncv.model_zoo.yolo.yolo3")
    net, params = tiny_run
    card = export_tool.run_export(params, str(tmp_path), ["zoo"], timing_runs=0)
    assert card["architecture"]["gluoncv"] == "gluoncv.model_zoo.yolo.yolo3.custom_yolov3('mobilenet0.25', " \
                                              "filters=[64, 32, 16])"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = yolo3.custom_yolov3("mobilenet0.25", [64, 32, 16], [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119],
                                  [116, 90, 156, 198, 373, 326]], [8, 16, 32], SHAPES, "shapes", pretrained_base=False)
    ref.load_parameters(str(tmp_path / card["exports"]["zoo"]["file"]))
    x = np.random.RandomState(0).uniform(-1, 1, (2, 3, 128, 160)).astype(np.float32)
    assert_same(detections(ref, x), detections(net, x))


@pytest.mark.oracle
def test_plain_tiny_zoo_file_loads_into_the_gluoncv_yolov3_the_card_describes(tmp_path):
    yolo3 = pytest.importorskip("gluoncv.model_zoo.yolo.yolo3")
    args = dict(YOLO_ARGS, tiny_backbone="plain")
    net, params = make_run(tmp_path / "run", "yolo3_tiny_shapes", args, SHAPES, (1, 3, 128, 128),
                           {"backbone": "plain"})
    card = export_tool.run_export(params, str(tmp_path / "out"), ["zoo"], timing_runs=0)
    arch = card["architecture"]
    assert arch["verified_in_gluoncv"] and "plain_features(0.25)" in arch["load_in_gluoncv"]
    loader = arch["load_in_gluoncv"].replace("net.load_parameters(FILE)", "")
    scope = {"gluoncv": pytest.importorskip("gluoncv")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(loader, scope)                                          # the card's own instructions
    ref = scope["net"]
    assert isinstance(ref, yolo3.YOLOV3)
    ref.load_parameters(str(tmp_path / "out" / card["exports"]["zoo"]["file"]))
    x = np.random.RandomState(0).uniform(-1, 1, (2, 3, 128, 160)).astype(np.float32)
    assert_same(detections(ref, x), detections(net, x))


@pytest.mark.oracle
def test_zoo_file_loads_with_gluoncv_get_model_pretrained(tmp_path, monkeypatch):
    """The store entry, patched into GluonCV's table, makes get_model(pretrained=True) load our file."""
    gcv_zoo = pytest.importorskip("gluoncv.model_zoo")
    from gluoncv.model_zoo import model_store
    name = "yolo3_mobilenet0.25_voc"
    args = dict(YOLO_ARGS, network="mobilenet0.25", dataset="voc", data_shape=128)
    net, params = make_run(tmp_path / "run", name, args, None, (1, 3, 128, 128))
    out = tmp_path / "zoo"
    card = export_tool.run_export(params, str(out), ["zoo"], timing_runs=0)
    assert card["classes"] == list(net.classes) and card["architecture"]["in_gluoncv_store"] is False
    line = (out / "model_store_entry.txt").read_text().splitlines()[-1]
    digest, entry_name = eval(line.strip().rstrip(","))  # the tuple a maintainer pastes into the table
    assert entry_name == name and digest == sha1(params)

    monkeypatch.delenv("MXNET_HOME", raising=False)
    monkeypatch.setenv("MXNET_GLUON_REPO", "http://127.0.0.1:9/")  # any download attempt fails fast
    monkeypatch.setitem(model_store._model_sha1, entry_name, digest)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = gcv_zoo.get_model(name, pretrained=True, root=str(out))
    x = np.random.RandomState(1).uniform(-1, 1, (1, 3, 128, 128)).astype(np.float32)
    assert_same(detections(ref, x), detections(net, x))
    assert [f for f in os.listdir(out) if f.endswith((".params", ".zip"))] == [card["exports"]["zoo"]["file"]]


def _reload(out, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mx.gluon.SymbolBlock.imports(str(out / (name + "-symbol.json")), ["data"],
                                            str(out / (name + "-0000.params")))


@pytest.mark.parametrize("which", ["yolo", "rcnn"])
def test_symbol_export_reloads_with_the_same_detections(which, tiny_run, rcnn_run, tmp_path):
    net, params = tiny_run if which == "yolo" else rcnn_run
    card = export_tool.run_export(params, str(tmp_path), ["symbol"], timing_runs=0)
    name = card["model_name"]
    assert card["exports"]["symbol"]["ok"], card["exports"]["symbol"]
    assert {f["file"] for f in card["files"]} == {name + "-symbol.json", name + "-0000.params"}
    block = _reload(tmp_path, name)
    # an input the export never saw, at another size than the one it was traced at
    shape = (1, 3, 160, 224) if which == "yolo" else (1, 3, 224, 300)
    x = np.random.RandomState(2).uniform(-1.5, 1.5, shape).astype(np.float32)
    want = detections(net, x)
    assert (want[0] >= 0).sum() > 10  # the comparison covers real detections
    assert_same(detections(block, x), want)


def test_symbol_export_with_preprocessing_takes_raw_rgb(tiny_run, tmp_path):
    net, params = tiny_run
    card = export_tool.run_export(params, str(tmp_path), ["symbol"], preprocess=True, timing_runs=0)
    assert card["exports"]["symbol"]["ok"] and card["input"]["normalize_in_graph"] is True
    assert card["exports"]["symbol"]["input"] == "NHWC raw RGB 0-255"
    raw = np.random.RandomState(3).uniform(0, 255, (1, 128, 128, 3)).astype(np.float32)
    mean, std = np.array([0.485, 0.456, 0.406]) * 255, np.array([0.229, 0.224, 0.225]) * 255
    normalized = ((raw - mean) / std).transpose(0, 3, 1, 2).astype(np.float32)
    got, want = detections(_reload(tmp_path, "yolo3_tiny_shapes"), raw), detections(net, normalized)
    np.testing.assert_allclose(got[2], want[2], atol=1e-2)
    np.testing.assert_array_equal(got[0], want[0])


def _installed(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def test_onnx_yolo_fails_naming_box_nms_and_keeps_the_symbol_export(tiny_run, tmp_path):
    _, params = tiny_run
    card = export_tool.run_export(params, str(tmp_path), ["onnx"], timing_runs=0)
    assert card["exports"]["symbol"]["ok"]  # requested implicitly: ONNX is made from it
    assert (tmp_path / "yolo3_tiny_shapes-symbol.json").exists()
    onnx_info = card["exports"]["onnx"]
    assert not onnx_info["ok"] and not (tmp_path / "yolo3_tiny_shapes.onnx").exists()
    if not _installed("onnx"):
        assert "needs the 'onnx' package" in onnx_info["error"]
    elif not _installed("onnxruntime"):
        assert "converted, but not written: checking the ONNX graph needs onnxruntime" in onnx_info["error"]
    else:  # every operator converts, but ONNX's NonMaxSuppression is not MXNet's per-class box_nms
        assert "box_nms" in onnx_info["error"] and "differ from MXNet" in onnx_info["error"]
    assert "FAILED" in (tmp_path / "model_card.md").read_text()
    assert export_tool.main(["--params", params, "--out", str(tmp_path / "cli"), "--format", "onnx",
                             "--timing-runs", "0"]) == 3


def test_onnx_without_the_onnx_package_names_it(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    card = export_tool.run_export(tiny_run[1], str(tmp_path), ["onnx"], timing_runs=0)
    assert card["exports"]["symbol"]["ok"] and not card["exports"]["onnx"]["ok"]
    assert "ONNX export needs the 'onnx' package: pip install -e '.[export]'" in card["exports"]["onnx"]["error"]


def test_onnx_faster_rcnn_matches_mxnet(rcnn_run, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    net, params = rcnn_run
    card = export_tool.run_export(params, str(tmp_path), ["symbol", "onnx"], timing_runs=0)
    info = card["exports"]["onnx"]
    assert info["ok"], info.get("error")
    assert info["opset"] == 13 and info["check"]["same"] and info["check"]["valid_detections"] > 10
    from gluon_bof.tools.onnx_export import onnx_runtime
    _, run = onnx_runtime(str(tmp_path / "faster_rcnn_mobilenet0.25_shapes.onnx"))
    x = np.random.RandomState(4).uniform(-1.5, 1.5, (1, 3, 224, 288)).astype(np.float32)
    assert_same(run(x)[:3], detections(net, x))
    assert "faster_rcnn_mobilenet0.25_shapes.onnx" in {f["file"] for f in card["files"]}


def test_onnx_error_names_the_unconvertible_node(tmp_path):
    pytest.importorskip("onnx")
    data = mx.sym.var("data")
    out = mx.sym.reshape(mx.sym.FullyConnected(data, num_hidden=6, flatten=False, name="fc"),
                         shape=(0, -4, 2, -1, 0), name="split_axis")
    mx.model.save_checkpoint(str(tmp_path / "toy"), 0, out, {"fc_weight": mx.nd.ones((6, 4)),
                                                            "fc_bias": mx.nd.zeros(6)}, {})
    x = np.ones((1, 4, 4), np.float32)
    with pytest.raises(OnnxExportError, match=r"node 'split_axis' \(operator Reshape.*-4"):
        export_onnx(str(tmp_path / "toy-symbol.json"), str(tmp_path / "toy-0000.params"),
                    str(tmp_path / "toy.onnx"), x, [np.zeros(1)] * 3)
    assert not (tmp_path / "toy.onnx").exists()


def _nms_graph(tmp_path, tag, topk, classes_in_rows):
    """Faster R-CNN's final NMS (one class per row, ``(1, C, R, 6)``) or YOLOv3's (all classes in one
    axis, ``(1, C*R, 6)``), with GluonCV's per-class settings, split into ``(ids, scores, boxes)``."""
    rng = np.random.RandomState(0)
    c, r = 4, 150
    xy, wh = rng.uniform(0, 200, (1, c, r, 2)), rng.uniform(5, 80, (1, c, r, 2))
    scores = rng.uniform(0, 1, (1, c, r, 1))
    ids = np.where(scores > 0.01, np.arange(c).reshape(1, c, 1, 1), -1)
    x = np.concatenate([ids, np.where(scores > 0.01, scores, 0), xy, xy + wh], -1).astype(np.float32)
    if not classes_in_rows:
        x = x.reshape(1, c * r, 6)
    det = mx.sym.contrib.box_nms(mx.sym.var("data"), overlap_thresh=0.3, topk=topk, valid_thresh=1e-4, id_index=0,
                                 score_index=1, coord_start=2, force_suppress=False)
    det = mx.sym.reshape(det, shape=(0, -1, 6))
    out = mx.sym.Group([mx.sym.slice_axis(det, axis=-1, begin=b, end=e) for b, e in ((0, 1), (1, 2), (2, 6))])
    mx.model.save_checkpoint(str(tmp_path / tag), 0, out, {}, {})
    want = [o.asnumpy() for o in out.eval(ctx=mx.cpu(), data=mx.nd.array(x))]
    return str(tmp_path / (tag + "-symbol.json")), str(tmp_path / (tag + "-0000.params")), x, want


def test_onnx_nms_is_faithful_only_per_class_rows_with_topk_above_the_candidates(tmp_path):
    """What decides which detectors export: ONNX's NonMaxSuppression suppresses across all boxes it is
    given and caps the output, where MXNet's box_nms is per class and caps the candidates."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    sym, params, x, want = _nms_graph(tmp_path, "rows", topk=400, classes_in_rows=True)  # Faster R-CNN
    report = export_onnx(sym, params, str(tmp_path / "rows.onnx"), x, want)
    assert report["check"]["same"] and report["check"]["valid_detections"] > 100
    for tag, topk, rows in (("rows_topk", 100, True), ("one_axis", 400, False)):  # topk < R; YOLOv3's layout
        sym, params, x, want = _nms_graph(tmp_path, tag, topk, rows)
        with pytest.raises(OnnxExportError, match="detections differ from MXNet's"):
            export_onnx(sym, params, str(tmp_path / (tag + ".onnx")), x, want)
        assert not (tmp_path / (tag + ".onnx")).exists()


def test_file_that_does_not_fit_lists_the_parameters(tiny_run, tmp_path):
    _, params = tiny_run
    bare = tmp_path / "weights.params"
    bare.write_bytes(open(params, "rb").read())  # no manifest beside it
    with pytest.raises(ModelFileError, match="no .manifest.json beside it"):
        load_run_model(str(bare))
    with pytest.raises(ModelFileError) as err:  # 2 classes instead of 6: the output layers are mis-shaped
        load_run_model(str(bare), network="yolo3_tiny_shapes", classes="a,b")
    text = str(err.value)
    assert str(bare) in text and "does not fit yolo3_tiny_shapes" in text and "mis-shaped" in text
    assert "yolov30_yolooutputv30_prediction_weight" not in text  # structural names, as in the file
    assert "yolo_outputs.0.prediction.weight file (33, 128, 1, 1) vs network (21, ?, 1, 1)" in text
    with pytest.raises(ModelFileError, match=r"missing from the file: box_predictor.bias.*\(130 in all\)\n  unexpected in the file: stages.0.0.weight"):
        load_run_model(str(bare), network="faster_rcnn_mobilenet0.25_shapes")
    with pytest.raises(ModelFileError, match="both YOLOv3 and Faster R-CNN"):
        load_run_model(str(bare), network="mobilenet0.25", dataset="shapes")


def test_a_run_file_changed_after_training_is_refused(tiny_run, tmp_path):
    _, params = tiny_run
    run = os.path.dirname(params)
    for name in ("best.params", "best.manifest.json"):
        (tmp_path / name).write_bytes(open(os.path.join(run, name), "rb").read())
    data = bytearray((tmp_path / "best.params").read_bytes())
    data[-1] ^= 1  # one bit of one weight
    (tmp_path / "best.params").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"best.params is not the file .*best.manifest.json recorded"):
        load_run_model(str(tmp_path / "best.params"))


def test_cli_default_formats_and_bad_arguments(tiny_run, tmp_path, capsys):
    _, params = tiny_run
    assert export_tool.main(["--params", params, "--out", str(tmp_path / "default"), "--timing-runs", "0"]) == 0
    card = json.loads((tmp_path / "default" / "model_card.json").read_text())
    assert sorted(card["exports"]) == ["symbol", "zoo"] and all(e["ok"] for e in card["exports"].values())
    assert "yolo3_tiny_shapes-symbol.json" in capsys.readouterr().out
    assert export_tool.main(["--params", params, "--out", str(tmp_path), "--format", "zoo,tflite"]) == 2
    assert "--format 'zoo,tflite'" in capsys.readouterr().err
    assert export_tool.main(["--params", str(tmp_path / "none.params"), "--out", str(tmp_path)]) == 2
    assert "none.params: weights file does not exist" in capsys.readouterr().err
