"""Detection on a user's images: pictures and JSON per image, boxes in original pixels, bad files skipped.

Expected detections are computed independently of the tool: the validation transform, the network,
then the boxes clipped to the input and scaled back by hand.
"""
import json
import os
import warnings

import cv2
import mxnet as mx
import numpy as np
import pytest

from gluon_bof.data.transforms.presets import FasterRCNNValTransform, YOLO3ValTransform
from gluon_bof.engine.checkpoint import save_checkpoint
from gluon_bof.model import get_model
from gluon_bof.tools import detect as detect_tool
from gluon_bof.tools.export import run_export
from gluon_bof.tools.run_model import load_run_model

SHAPES = ["circle", "rectangle", "triangle", "star", "cross", "ring"]
EMPTY = np.zeros((0, 6), np.float32)


def save_run(run_dir, name, args, input_shape):
    mx.random.seed(5)
    net = get_model(name, classes=SHAPES, pretrained_base=False)
    net.initialize(mx.init.Xavier(magnitude=2.0))
    net(mx.nd.zeros(input_shape))
    save_checkpoint(str(run_dir), "best", net, None, {"epoch": 1, "args": args})
    return net, str(run_dir / "best.params")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return save_run(tmp_path_factory.mktemp("tiny"), "yolo3_tiny_shapes",
                    {"network": "tiny", "dataset": "shapes", "tiny_width": 0.25, "tiny_head_width": 0.125,
                     "data_shape": 128, "epochs": 1}, (1, 3, 128, 128))


@pytest.fixture(scope="module")
def rcnn_run(tmp_path_factory):
    return save_run(tmp_path_factory.mktemp("rcnn"), "faster_rcnn_mobilenet0.25_shapes",
                    {"network": "mobilenet0.25", "dataset": "shapes", "short": None, "max_size": None,
                     "epochs": 1}, (1, 3, 224, 224))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Two good pictures of different sizes, a truncated JPEG, a text file named .jpg, and a .txt."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.RandomState(0)
    good = {"wide.jpg": rng.randint(0, 255, (150, 260, 3)), "tall.png": rng.randint(0, 255, (200, 120, 3))}
    for name, pixels in good.items():
        cv2.imwrite(str(folder / name), pixels.astype(np.uint8))
    (folder / "cut.jpg").write_bytes((folder / "wide.jpg").read_bytes()[:400])
    (folder / "notes.jpg").write_text("not an image")
    (folder / "readme.txt").write_text("ignored: not an image extension")
    return folder


def expected_yolo(net, image, side, thresh):
    x, _ = YOLO3ValTransform(side, side)(image, EMPTY)
    ids, scores, boxes = [o.asnumpy()[0] for o in net(mx.nd.array(x[None]))]
    h, w = image.shape[:2]
    boxes = np.clip(boxes, 0, side) * np.array([w / side, h / side] * 2)
    keep = (ids[:, 0] >= 0) & (scores[:, 0] >= thresh)
    return ids[keep, 0], scores[keep, 0], boxes[keep]


def expected_rcnn(net, image, thresh):
    x, _, im_scale = FasterRCNNValTransform(224, 320)(image, EMPTY)
    ids, scores, boxes = [o.asnumpy()[0] for o in net(mx.nd.array(x[None]))]
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, x.shape[2])
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, x.shape[1])
    keep = (ids[:, 0] >= 0) & (scores[:, 0] >= thresh)
    return ids[keep, 0], scores[keep, 0], boxes[keep] * im_scale


def read_record(out, stem):
    with open(os.path.join(out, stem + ".json"), encoding="utf-8") as f:
        return json.load(f)


def assert_record_matches(record, expected):
    ids, scores, boxes = expected
    dets = record["detections"]
    assert len(dets) == len(ids) > 0
    np.testing.assert_array_equal([d["class_id"] for d in dets], ids)
    np.testing.assert_allclose([d["score"] for d in dets], scores, atol=2e-6)
    np.testing.assert_allclose([d["box"] for d in dets], boxes, atol=0.01)
    assert all(d["class"] == SHAPES[d["class_id"]] for d in dets)


def load_rgb(path):
    return cv2.imread(str(path))[:, :, ::-1]


def test_yolo_detect_writes_pictures_and_json_in_original_pixels(tiny_run, images, tmp_path, capsys):
    net, params = tiny_run
    out = str(tmp_path / "out")
    code = detect_tool.main(["--params", params, "--images", str(images), str(images / "gone.png"), "--out", out,
                             "--thresh", "0.2", "--no-progress"])
    assert code == 0
    err = capsys.readouterr().err
    for bad in ("cut.jpg", "notes.jpg", "gone.png"):
        assert "skipped %s" % os.path.join(str(images), bad) in err
    summary = json.loads(open(os.path.join(out, "summary.json")).read())
    assert summary["processed"] == 2 and len(summary["skipped"]) == 3
    assert any("[image_truncated]" in s["reason"] for s in summary["skipped"])
    for stem, ext in (("wide", ".jpg"), ("tall", ".png")):
        image = load_rgb(images / (stem + ext))
        record = read_record(out, stem)
        assert (record["width"], record["height"]) == (image.shape[1], image.shape[0])
        assert_record_matches(record, expected_yolo(net, image, 128, 0.2))
        picture = cv2.imread(os.path.join(out, stem + ".jpg"))
        assert picture.shape == image.shape and np.abs(picture.astype(int) - image[:, :, ::-1]).max() > 100
    assert sorted(os.listdir(out)) == ["summary.json", "tall.jpg", "tall.json", "wide.jpg", "wide.json"]


def test_batches_give_the_same_detections_as_single_images(tiny_run, images, tmp_path):
    model = load_run_model(tiny_run[1])
    paths = [str(images / "wide.jpg"), str(images / "tall.png"), str(images / "wide.jpg")]
    one = detect_tool.detect_images(model, paths, str(tmp_path / "one"), 0.2, batch_size=1, progress=False)
    three = detect_tool.detect_images(model, paths, str(tmp_path / "three"), 0.2, batch_size=3, progress=False)
    assert [i["json"] for i in three["images"]] == ["wide.json", "tall.json", "wide_1.json"]  # no overwrite
    for item in one["images"]:
        assert read_record(str(tmp_path / "one"), item["json"][:-5])["detections"] == \
            read_record(str(tmp_path / "three"), item["json"][:-5])["detections"]


def test_faster_rcnn_boxes_are_scaled_back_by_im_scale(rcnn_run, images, tmp_path):
    net, params = rcnn_run
    model = load_run_model(params)
    assert (model.short, model.max_size) == (224, 320)
    out = str(tmp_path / "out")
    summary = detect_tool.detect_images(model, [str(images / "wide.jpg"), str(images / "tall.png")], out,
                                        thresh=0.05, batch_size=2, progress=False)
    assert summary["processed"] == 2
    for stem, ext in (("wide", ".jpg"), ("tall", ".png")):
        assert_record_matches(read_record(out, stem), expected_rcnn(net, load_rgb(images / (stem + ext)), 0.05))


def test_symbol_export_detects_like_the_params_file(tiny_run, images, tmp_path):
    _, params = tiny_run
    for preprocess in (False, True):
        export = tmp_path / ("export%d" % preprocess)
        run_export(params, str(export), ["symbol"], preprocess=preprocess, timing_runs=0)
        a, b = str(tmp_path / ("sym%d" % preprocess)), str(tmp_path / ("par%d" % preprocess))
        path = [str(images / "wide.jpg")]
        detect_tool.detect_images(load_run_model(str(export / "yolo3_tiny_shapes-symbol.json")), path, a, 0.2,
                                  progress=False)
        detect_tool.detect_images(load_run_model(params), path, b, 0.2, progress=False)
        got, want = read_record(a, "wide")["detections"], read_record(b, "wide")["detections"]
        assert [d["class_id"] for d in got] == [d["class_id"] for d in want] and len(want) > 0
        np.testing.assert_allclose([d["box"] for d in got], [d["box"] for d in want], atol=0.05)


@pytest.mark.oracle
def test_gluoncv_checkpoint_runs_with_network_flag(images, tmp_path):
    yolo3 = pytest.importorskip("gluoncv.model_zoo.yolo.yolo3")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = yolo3.custom_yolov3("mobilenet0.25", [64, 32, 16], [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119],
                                  [116, 90, 156, 198, 373, 326]], [8, 16, 32], SHAPES, "shapes", pretrained_base=False)
    mx.random.seed(9)
    ref.initialize(mx.init.Xavier(magnitude=2.0))
    ref(mx.nd.zeros((1, 3, 128, 128)))
    path = str(tmp_path / "gluoncv.params")
    ref.save_parameters(path)
    out = str(tmp_path / "out")
    assert detect_tool.main(["--params", path, "--network", "yolo3_tiny_shapes", "--data-shape", "160",
                             "--images", str(images / "tall.png"), "--out", out, "--thresh", "0.2",
                             "--no-progress"]) == 0
    assert_record_matches(read_record(out, "tall"), expected_yolo(ref, load_rgb(images / "tall.png"), 160, 0.2))


def test_no_readable_image_exits_1_and_bad_arguments_exit_2(tiny_run, images, tmp_path, capsys):
    _, params = tiny_run
    assert detect_tool.main(["--params", params, "--images", str(images / "cut.jpg"), "--out",
                             str(tmp_path), "--no-progress"]) == 1
    assert "0 images" in capsys.readouterr().out
    assert detect_tool.main(["--params", params, "--images", str(images), "--out", str(tmp_path),
                             "--thresh", "1.5"]) == 2
    assert detect_tool.main(["--params", params, "--images", str(images), "--out", str(tmp_path),
                             "--data-shape", "100"]) == 2
    assert "--data-shape 100: YOLOv3 needs a positive multiple of 32" in capsys.readouterr().err
