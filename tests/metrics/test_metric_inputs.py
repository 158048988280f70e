"""Bad input to ``update`` gets a clear error naming the argument and the rule, not a wrong number.

The VOC metrics check shapes in ``update`` and values (NaN/inf, box corners, labels) in ``get``,
whose message names the image counted over every image given to ``update``.
"""
import numpy as np
import pytest

from gluon_bof.metrics import COCODetectionMetric, VOC07MApMetric


def good():
    """One image: two detections (one padding), one ground truth."""
    return dict(
        pred_bboxes=np.array([[[0, 0, 10, 10], [-1, -1, -1, -1]]], np.float32),
        pred_labels=np.array([[0, -1]], np.float32),
        pred_scores=np.array([[0.9, -1]], np.float32),
        gt_bboxes=np.array([[[0, 0, 10, 10]]], np.float32),
        gt_labels=np.array([[1]], np.float32),
        gt_difficults=np.array([[0]], np.float32),
    )


def update_with(**changes):
    """Update a fresh metric with ``good()`` changed by ``changes``, then evaluate it."""
    args = good()
    args.update(changes)
    metric = VOC07MApMetric(class_names=["a", "b"])
    metric.update(**args)
    return metric.get()


def test_good_input_passes():
    names, values = update_with()
    assert names == ["a", "b", "mAP"]
    np.testing.assert_array_equal(values, [np.nan, 0.0, 0.0])  # class a: no ground truth; b: missed


def test_bad_values_are_reported_by_get_with_the_same_message_every_time():
    args = good()
    args["pred_scores"] = np.array([[np.inf, -1]], np.float32)
    metric = VOC07MApMetric(class_names=["a", "b"])
    metric.update(**args)  # values are not checked here: that is get's work
    assert metric.num_images == 1
    for _ in range(2):
        with pytest.raises(ValueError, match=r"pred_scores: image 0, row 0 is inf; values of valid rows"):
            metric.get()
    metric.reset()
    metric.update(**good())
    assert metric.get()[1][-1] == 0.0


@pytest.mark.parametrize("changes,pattern", [
    (dict(pred_scores=np.array([[np.nan, -1]], np.float32)), r"pred_scores: image 0, row 0 .*finite"),
    (dict(pred_bboxes=np.array([[[10, 0, 0, 10], [-1] * 4]], np.float32)),
     r"pred_bboxes: image 0, row 0 .*xmin <= xmax"),
    (dict(gt_bboxes=np.array([[[0, 10, 10, 0]]], np.float32)), r"gt_bboxes: image 0, row 0 .*ymin <= ymax"),
    (dict(gt_bboxes=np.array([[[0, 0, np.inf, 10]]], np.float32)), r"gt_bboxes: .*finite"),
    (dict(pred_labels=np.array([[2, -1]], np.float32)), r"pred_labels: image 0, row 0 has class 2 outside \[0, 2\)"),
    (dict(gt_labels=np.array([[0.5]], np.float32)), r"gt_labels: .*whole numbers"),
    (dict(gt_labels=np.array([[np.nan]], np.float32)), r"gt_labels: .*NaN; use -1 for padding"),
    (dict(gt_labels=np.array([[0], [1]], np.float32)), r"mismatched batch lengths"),
    (dict(pred_scores=np.array([[0.9, 0.5, 0.1]], np.float32)), r"mismatched numbers of pred rows"),
    (dict(pred_bboxes=np.zeros((1, 2, 5), np.float32)), r"pred_bboxes: expected shape \(B, N, 4\)"),
    (dict(pred_labels=np.zeros((2,), np.float32)), r"pred_labels: expected shape \(B, N\)"),
])
def test_bad_input_is_rejected(changes, pattern):
    with pytest.raises(ValueError, match=pattern):
        update_with(**changes)


def test_padding_rows_are_not_checked():
    # Garbage in padding rows (label -1) is ignored, as GluonCV ignores those rows.
    update_with(pred_bboxes=np.array([[[0, 0, 10, 10], [5, 5, 0, np.nan]]], np.float32),
                pred_scores=np.array([[0.9, np.nan]], np.float32))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="iou_thresh"):
        VOC07MApMetric(iou_thresh=0)
    with pytest.raises(ValueError, match="class_names"):
        VOC07MApMetric(class_names="abc")


def test_coco_metric_rejects_bad_input(tmp_path):
    import json

    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": [{"id": 1, "height": 10, "width": 10}],
                                "annotations": [], "categories": [{"id": 5, "name": "x"}]}))
    metric = COCODetectionMetric(str(path))
    box = np.array([[[0, 0, 5, 5]]], np.float32)
    with pytest.raises(ValueError, match="pred_labels: .*outside \\[0, 1\\)"):
        metric.update(box, np.array([[1.0]]), np.array([[0.5]]))
    with pytest.raises(ValueError, match="pred_scores: .*finite"):
        metric.update(box, np.array([[0.0]]), np.array([[np.nan]]))
    with pytest.raises(ValueError, match="mismatched batch lengths"):
        metric.update(box, np.array([[0.0], [0.0]]), np.array([[0.5], [0.5]]))
    metric.update(box, np.array([[0.0]]), np.array([[0.5]]))
    with pytest.raises(ValueError, match="received 2 images but the data set has 1"):
        metric.update(box, np.array([[0.0]]), np.array([[0.5]]))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        COCODetectionMetric(str(tmp_path / "missing.json"))
    with pytest.raises(TypeError, match="annotation JSON path or an object with a pycocotools COCO"):
        COCODetectionMetric(object())
    with pytest.raises(ValueError, match="category ids \\[9\\] are not in the annotations"):
        COCODetectionMetric(str(path), contiguous_id_to_json={0: 9})


@pytest.mark.parametrize("box", [[0, 0, np.inf, 10], [-np.inf, 0, 10, 10], [np.inf, 0, np.inf, 10],
                                 [0, -np.inf, 10, -np.inf], [0, 0, 10, np.nan]])
def test_every_non_finite_corner_is_rejected(box):
    # The quick check of update sees boxes through their extents; each corner must still count.
    with pytest.raises(ValueError, match=r"pred_bboxes: image 0, row 0 .*finite"):
        update_with(pred_bboxes=np.array([[box, [-1] * 4]], np.float32))


def test_unsigned_boxes_with_xmin_above_xmax_are_rejected():
    with pytest.raises(ValueError, match=r"gt_bboxes: image 0, row 0 .*xmin <= xmax"):
        update_with(gt_bboxes=np.array([[[10, 0, 5, 10]]], np.uint8))
    update_with(gt_bboxes=np.array([[[0, 0, 10, 10]]], np.uint8))  # and good ones pass


def test_bad_input_in_a_later_update_names_the_image_counted_over_all_updates():
    metric = VOC07MApMetric(class_names=["a", "b"])
    metric.update(**good())
    empty4, empty = np.zeros((2, 0, 4), np.float32), np.zeros((2, 0), np.float32)
    metric.update(empty4, empty, empty, empty4, empty, empty)  # two images without rows still count
    bad = good()
    bad["pred_scores"] = np.array([[0.9, np.nan]], np.float32)
    bad["pred_labels"] = np.array([[0, 1]], np.float32)
    metric.update(**bad)
    metric.update(**good())
    with pytest.raises(ValueError, match=r"pred_scores: image 3, row 1 .*finite"):
        metric.get()


def test_the_first_bad_update_is_reported_and_inside_it_detections_first():
    metric = VOC07MApMetric(class_names=["a", "b"])
    args = {k: np.repeat(v, 3, axis=0) for k, v in good().items()}
    args["gt_labels"][1, 0] = 7          # image 1: bad ground-truth label
    args["pred_bboxes"][2, 0, 0] = 99     # image 2: bad detection box
    metric.update(**good())
    metric.update(**args)                 # images 1..3 in one batch
    metric.update(**{**good(), "pred_labels": np.array([[np.nan, -1]], np.float32)})
    # As the batch checked on its own would report: its detections before its ground truths.
    with pytest.raises(ValueError, match=r"pred_bboxes: image 3, row 0 .*xmin <= xmax"):
        metric.get()
