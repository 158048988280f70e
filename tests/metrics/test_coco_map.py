"""COCO metric: same numbers as plain pycocotools (the reference) and as GluonCV's bookkeeping."""
import contextlib
import io
import json
import warnings

import numpy as np
import pytest

from gluon_bof.metrics import COCODetectionMetric

pycocotools_coco = pytest.importorskip("pycocotools.coco")
pycocotools_eval = pytest.importorskip("pycocotools.cocoeval")

CATEGORY_IDS = [1, 3, 7, 9, 12]  # 12 never has ground truth: its AP is NaN


def make_annotations(rng, images=40, max_gt=6):
    imgs, anns = [], []
    for i in range(images):
        image_id, h, w = 1000 + 3 * i, int(rng.integers(200, 500)), int(rng.integers(200, 500))
        imgs.append({"id": image_id, "height": h, "width": w, "file_name": "%d.jpg" % image_id})
        for _ in range(int(rng.integers(0, max_gt + 1))):
            x, y = float(rng.uniform(0, w - 20)), float(rng.uniform(0, h - 20))
            bw, bh = float(rng.uniform(2, min(250, w - x))), float(rng.uniform(2, min(250, h - y)))
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": int(rng.choice(CATEGORY_IDS[:-1])),
                         "bbox": [x, y, bw, bh], "area": bw * bh, "iscrowd": int(rng.random() < 0.05)})
    return {"images": imgs, "annotations": anns, "categories": [{"id": c, "name": "cat%d" % c} for c in CATEGORY_IDS]}


def make_detections(rng, coco, dets=30, data_shape=None):
    """Padded arrays over images in id order; xyxy boxes (in data_shape coordinates if given)."""
    images = sorted(coco["images"], key=lambda im: im["id"])
    boxes = -np.ones((len(images), dets, 4), np.float32)
    labels = -np.ones((len(images), dets), np.float32)
    scores = -np.ones((len(images), dets), np.float32)
    for b, im in enumerate(images):
        gts = [a for a in coco["annotations"] if a["image_id"] == im["id"]]
        for j in range(int(rng.integers(0, dets + 1))):
            if gts and rng.random() < 0.6:
                a = gts[int(rng.integers(len(gts)))]
                x, y, w, h = a["bbox"]
                box = np.array([x, y, x + w - 1, y + h - 1]) + rng.normal(0, 4, 4)
                label = CATEGORY_IDS.index(a["category_id"])
            else:
                x, y = rng.uniform(0, im["width"] - 10), rng.uniform(0, im["height"] - 10)
                box = np.array([x, y, x + rng.uniform(2, 200), y + rng.uniform(2, 200)])
                label = int(rng.integers(0, len(CATEGORY_IDS)))
            box = np.r_[np.minimum(box[:2], box[2:]), np.maximum(box[:2], box[2:])]
            if data_shape is not None:
                box = box * np.array([data_shape[1] / im["width"], data_shape[0] / im["height"]] * 2)
            boxes[b, j], labels[b, j], scores[b, j] = box, label, round(float(rng.random()), 2)
    return boxes, labels, scores


def reference(path, coco, boxes, labels, scores, data_shape=None, score_thresh=0.05):
    """Plain pycocotools, one dict per detection (GluonCV's conversion), then loadRes/COCOeval."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = pycocotools_coco.COCO(str(path))
    images = sorted(coco["images"], key=lambda im: im["id"])
    results = []
    for b, im in enumerate(images):
        sy, sx = (1.0, 1.0) if data_shape is None else (im["height"] / data_shape[0], im["width"] / data_shape[1])
        for box, label, score in zip(boxes[b].astype(np.float64), labels[b], scores[b].astype(np.float64)):
            if label < 0 or score < score_thresh:
                continue
            x1, y1, x2, y2 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
            results.append({"image_id": im["id"], "category_id": CATEGORY_IDS[int(label)],
                            "bbox": [x1, y1, x2 - (x1 - 1), y2 - (y1 - 1)], "score": float(score)})
    with contextlib.redirect_stdout(io.StringIO()):
        ev = pycocotools_eval.COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    per_class = []
    for k in range(len(CATEGORY_IDS)):
        p = ev.eval["precision"][:, :, k, 0, -1]
        per_class.append(float(np.mean(p[p > -1])) if (p > -1).any() else float("nan"))
    return np.array(ev.stats[:6]), np.array(per_class)


@pytest.fixture(scope="module")
def coco_case(tmp_path_factory):
    rng = np.random.default_rng(0)
    coco = make_annotations(rng)
    path = tmp_path_factory.mktemp("coco") / "instances_val.json"
    path.write_text(json.dumps(coco))
    return path, coco, rng


def evaluate(metric, boxes, labels, scores, batch=8):
    for start in range(0, boxes.shape[0], batch):
        metric.update(boxes[start:start + batch], labels[start:start + batch], scores[start:start + batch])
    return np.array([metric.summary()[k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")]), metric.get()


@pytest.mark.parametrize("engine", ["faster_coco_eval", "pycocotools"])
@pytest.mark.parametrize("data_shape", [None, (320, 416)])
def test_equals_plain_pycocotools(coco_case, engine, data_shape):
    path, coco, _ = coco_case
    boxes, labels, scores = make_detections(np.random.default_rng(1), coco, data_shape=data_shape)
    stats, (names, values) = evaluate(COCODetectionMetric(str(path), engine=engine, data_shape=data_shape),
                                      boxes, labels, scores)
    ref_stats, ref_class = reference(path, coco, boxes, labels, scores, data_shape)
    np.testing.assert_allclose(stats, ref_stats, rtol=0, atol=1e-12)
    np.testing.assert_allclose(values[:-1], ref_class, rtol=0, atol=1e-12)
    assert names == ["cat%d" % c for c in CATEGORY_IDS] + ["mAP"]
    assert values[-1] == stats[0] and 0.05 < stats[0] < 0.9
    assert np.isnan(values[CATEGORY_IDS.index(12)])


@pytest.mark.oracle
def test_matches_gluoncv_metric(coco_case, tmp_path):
    """GluonCV's metric (percent strings with one decimal) on a COCODetection-like object."""
    from gluoncv.utils.metrics.coco_detection import COCODetectionMetric as GluonCVMetric

    path, coco, _ = coco_case

    class Dataset:
        classes = ["cat%d" % c for c in CATEGORY_IDS]
        contiguous_id_to_json = dict(enumerate(CATEGORY_IDS))
        image_ids = sorted(im["id"] for im in coco["images"])

    with contextlib.redirect_stdout(io.StringIO()):
        Dataset.coco = pycocotools_coco.COCO(str(path))
    boxes, labels, scores = make_detections(np.random.default_rng(2), coco, data_shape=(256, 256))
    theirs = GluonCVMetric(Dataset(), str(tmp_path / "gluoncv"), use_time=False, data_shape=(256, 256))
    _, (names, values) = evaluate(COCODetectionMetric(Dataset(), data_shape=(256, 256)), boxes, labels, scores)
    for start in range(0, boxes.shape[0], 8):
        theirs.update(boxes[start:start + 8], labels[start:start + 8], scores[start:start + 8])
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        their_names, their_values = theirs.get()
    assert their_names[1:-1] == names[:-1]
    assert ["%.1f" % (100 * v) for v in values] == their_values[1:]


@pytest.mark.parametrize("engine", ["faster_coco_eval", "pycocotools"])
def test_zero_detections_give_zero_ap(coco_case, engine):
    path, coco, _ = coco_case
    metric = COCODetectionMetric(str(path), engine=engine)
    n = len(coco["images"])
    # Every detection is padding or under the 0.05 score threshold.
    metric.update(np.zeros((n, 2, 4), np.float32), np.array([[0, -1]] * n, np.float32),
                  np.array([[0.01, -1]] * n, np.float32))
    names, values = metric.get()
    assert values[-1] == 0.0 and metric.summary()["AP50"] == 0.0
    assert np.isnan(values[CATEGORY_IDS.index(12)])
    assert all(v == 0.0 for v in values[:-1] if not np.isnan(v))


def test_dataset_object_with_explicit_order_and_mapping(coco_case):
    path, coco, _ = coco_case
    boxes, labels, scores = make_detections(np.random.default_rng(3), coco)
    expected, _ = evaluate(COCODetectionMetric(str(path)), boxes, labels, scores)

    class Dataset:  # what gluon_bof.data.coco.COCODetection exposes
        contiguous_id_to_json = dict(enumerate(CATEGORY_IDS))
        image_ids = sorted(im["id"] for im in coco["images"])[::-1]  # item order: reversed ids

    with contextlib.redirect_stdout(io.StringIO()):
        Dataset.coco = pycocotools_coco.COCO(str(path))
    metric = COCODetectionMetric(Dataset())
    stats, _ = evaluate(metric, boxes[::-1], labels[::-1], scores[::-1])
    np.testing.assert_allclose(stats, expected, atol=1e-12, rtol=0)
    # Explicit ids per batch: any order, any batching.
    metric = COCODetectionMetric(str(path), contiguous_id_to_json=dict(enumerate(CATEGORY_IDS)))
    ids = np.array(sorted(im["id"] for im in coco["images"]))
    perm = np.random.default_rng(4).permutation(ids.size)
    for chunk in np.array_split(perm, 5):
        metric.update(boxes[chunk], labels[chunk], scores[chunk], image_ids=ids[chunk])
    np.testing.assert_allclose([metric.summary()[k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")],
                               expected, atol=1e-12, rtol=0)


def test_incomplete_evaluation_warns_and_text_summary(coco_case):
    path, coco, _ = coco_case
    boxes, labels, scores = make_detections(np.random.default_rng(5), coco)
    metric = COCODetectionMetric(str(path))
    metric.update(boxes[:10], labels[:10], scores[:10])
    with pytest.warns(UserWarning, match="recorded 10 out of 40 images"):
        metric.get()
    assert "Average Precision  (AP) @[ IoU=0.50:0.95" in metric.summary_text()
    fields = metric.results_fields()
    assert fields["protocol"] == "coco" and fields["num_images"] == 10 and set(fields["metrics"]) >= {"AP50", "APl"}


def test_ndarray_and_device_list_input(coco_case):
    import mxnet as mx

    path, coco, _ = coco_case
    boxes, labels, scores = make_detections(np.random.default_rng(6), coco)
    expected, _ = evaluate(COCODetectionMetric(str(path)), boxes, labels, scores)
    metric = COCODetectionMetric(str(path))
    for start in range(0, boxes.shape[0], 8):
        end = start + 8
        half = start + 4
        metric.update([mx.nd.array(boxes[start:half]), mx.nd.array(boxes[half:end])],
                      [mx.nd.array(labels[start:half]).expand_dims(2), mx.nd.array(labels[half:end]).expand_dims(2)],
                      [mx.nd.array(scores[start:half]), mx.nd.array(scores[half:end])])
    stats = [metric.summary()[k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")]
    np.testing.assert_allclose(stats, expected, atol=1e-12, rtol=0)
