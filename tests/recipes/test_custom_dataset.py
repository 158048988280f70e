"""The scripts on data as users have it: a VOC-layout folder of PNG photos with capitalised class names, and
a COCO-format folder (train a few iterations, evaluate, compare the COCO metric with plain pycocotools)."""
import contextlib
import io
import json
import os
import sys

import numpy as np
import pytest

import eval_faster_rcnn
import eval_yolo3
import train_faster_rcnn
import train_yolo3
from gluon_bof.data.shapes import ShapesDetection
from gluon_bof.metrics import COCODetectionMetric

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data"))
from photo_folder import write_photo_folder  # noqa: E402

SPLITS = ["--train-splits", "MyData_train", "--val-splits", "MyData_val"]
# No ImageNet weights on the test machine: the backbones start from scratch.
YOLO = ["--no-pretrained-base", "--network", "tiny", "--data-shape", "96", "--random-shapes", "64:96", "--batch-size", "3", "-j", "0",
        "--epochs", "1", "--no-progress", "--lr", "0.001"]
RCNN = ["--no-pretrained-base", "--network", "mobilenet0.25", "--short", "96", "--max-size", "128", "--batch-size", "1", "-j", "0",
        "--epochs", "1", "--no-progress", "--lr", "0.01"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """6 training photos (one 3000x2000) and 3 validation photos, PNG and others, names capitalised."""
    root = str(tmp_path_factory.mktemp("photos"))
    write_photo_folder(root, {"train": 6, "val": 3}, mixed_extensions=True, large=(3000, 2000))
    return root


def collected_classes(out):
    line = next(ln for ln in out.splitlines() if ln.startswith("--classes not given"))
    return line.split("--classes ")[-1].split(",")


def check_results(path, classes):
    with open(path) as f:
        results = json.load(f)
    assert results["classes"] == classes
    assert all(c[0].isupper() for c in results["classes"])  # the annotations' spelling, not lowercased
    assert 0.0 <= results["map"] <= 1.0
    return results


def test_yolo3_trains_and_evaluates_png_photos_with_capitalised_names(photos, tmp_path, capsys):
    save_dir = str(tmp_path / "yolo")
    final_map = train_yolo3.main(YOLO + ["--dataset", "custom", "--dataset-root", photos, "--save-dir", save_dir,
                                         "--picture", "1"] + SPLITS)
    classes = collected_classes(capsys.readouterr().out)
    assert classes == sorted(classes, key=str.lower) and "Circle" in classes
    assert 0.0 <= final_map <= 1.0 and os.path.isfile(os.path.join(save_dir, "detections.jpg"))
    check_results(os.path.join(save_dir, "results_final.json"), classes)
    out = str(tmp_path / "eval.json")
    value = eval_yolo3.main(["--params", os.path.join(save_dir, "epoch0000.params"), "--network", "tiny",
                             "--data-shape", "96", "-j", "0", "--dataset", "custom", "--dataset-root", photos,
                             "--val-splits", "MyData_val", "--classes", ",".join(c.lower() for c in classes),
                             "--results", out])
    with open(out) as f:
        results = json.load(f)
    assert results["classes"] == [c.lower() for c in classes]  # --classes in lower case: matched, shown as given
    assert results["map"] == pytest.approx(value)


def test_faster_rcnn_trains_and_evaluates_png_photos_with_capitalised_names(photos, tmp_path, capsys):
    save_dir = str(tmp_path / "rcnn")
    train_faster_rcnn.main(RCNN + ["--dataset", "custom", "--dataset-root", photos, "--save-dir", save_dir,
                                   "--picture", "0"] + SPLITS)
    classes = collected_classes(capsys.readouterr().out)
    check_results(os.path.join(save_dir, "results_final.json"), classes)
    out = str(tmp_path / "eval.json")
    value = eval_faster_rcnn.main(["--params", os.path.join(save_dir, "epoch0000.params"), "--network",
                                   "mobilenet0.25", "--short", "96", "--max-size", "128", "-j", "0", "--dataset",
                                   "custom", "--dataset-root", photos, "--val-splits", "MyData_val", "--results", out])
    assert check_results(out, classes)["map"] == pytest.approx(value)


@pytest.fixture(scope="module")
def crowded(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("crowded"))
    write_photo_folder(root, {"train": 2, "val": 1}, crowded_split="train")  # one image of 300 boxes
    return root


def test_hundreds_of_boxes_in_one_image_train_yolo3(crowded, tmp_path):
    assert 0.0 <= train_yolo3.main(YOLO + ["--dataset", "custom", "--dataset-root", crowded, "--picture", "0",
                                           "--save-dir", str(tmp_path / "yolo")] + SPLITS) <= 1.0


def test_hundreds_of_boxes_in_one_image_train_faster_rcnn(crowded, tmp_path):
    assert 0.0 <= train_faster_rcnn.main(RCNN + ["--dataset", "custom", "--dataset-root", crowded, "--picture", "0",
                                                 "--save-dir", str(tmp_path / "rcnn")] + SPLITS) <= 1.0


def pycocotools_stats(annotation_file, batches, data_shape, score_thresh=0.05):
    """Plain pycocotools COCOeval of recorded metric batches (GluonCV's box conversion): ``stats[:6]``."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(annotation_file)
    images = sorted(gt.dataset["images"], key=lambda im: im["id"])
    categories = sorted(gt.getCatIds())
    results, k = [], 0
    for boxes, labels, scores in batches:
        for b in range(boxes.shape[0]):
            im = images[k]
            k += 1
            sx, sy = im["width"] / data_shape[1], im["height"] / data_shape[0]
            for box, label, score in zip(boxes[b].astype(np.float64), labels[b].ravel(), scores[b].ravel()):
                if label < 0 or float(score) < score_thresh:
                    continue
                x1, y1, x2, y2 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
                results.append({"image_id": im["id"], "category_id": categories[int(label)],
                                "bbox": [x1, y1, x2 - x1 + 1, y2 - y1 + 1], "score": float(score)})
    assert results, "the net made no detection above the threshold: nothing to compare"
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.array(ev.stats[:6])


def test_coco_format_trains_evaluates_and_matches_pycocotools(tmp_path, monkeypatch):
    root = str(tmp_path / "coco")
    ShapesDetection(6, seed=5, split="train", min_size=96, max_size=128).write_coco(root, "instances_train2017")
    val_json = ShapesDetection(4, seed=5, split="val", min_size=96, max_size=128).write_coco(root, "instances_val2017")
    save_dir = str(tmp_path / "run")
    coco = ["--dataset", "coco", "--dataset-root", root, "--train-splits", "instances_train2017",
            "--val-splits", "instances_val2017"]
    final_map = train_yolo3.main(YOLO + coco + ["--save-dir", save_dir, "--picture", "0"])
    with open(os.path.join(save_dir, "results_final.json")) as f:
        assert json.load(f)["protocol"].startswith("coco")
    assert 0.0 <= final_map <= 1.0

    batches = []
    update = COCODetectionMetric.update

    def recording_update(self, pred_bboxes, pred_labels, pred_scores, *args, **kwargs):
        batches.append(tuple(np.array(getattr(a, "asnumpy", lambda: a)()) for a in
                             (pred_bboxes, pred_labels, pred_scores)))
        return update(self, pred_bboxes, pred_labels, pred_scores, *args, **kwargs)

    monkeypatch.setattr(COCODetectionMetric, "update", recording_update)
    out = str(tmp_path / "eval.json")
    value = eval_yolo3.main(["--params", os.path.join(save_dir, "epoch0000.params"), "--network", "tiny",
                             "--data-shape", "96", "-j", "0", "--results", out] + coco[:4] + coco[6:])
    with open(out) as f:
        results = json.load(f)
    assert results["map"] == pytest.approx(value)
    assert results["classes"] == list(ShapesDetection.CLASSES)
    ours = np.array([results["metrics"][k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")])
    np.testing.assert_allclose(ours, pycocotools_stats(val_json, batches, (96, 96)), atol=1e-9)
