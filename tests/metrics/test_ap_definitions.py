"""Hand-computed cases pinning the 11-point and area AP definitions and the matching rules."""
import numpy as np
import pytest

from gluon_bof.metrics import VOC07MApMetric, VOCMApMetric, recall_precision, voc_ap


def test_eleven_point_and_area_on_a_hand_curve():
    # rec 0.5 reached at precision 1, then recall 1 at precision 2/3.
    rec = np.array([0.5, 0.5, 1.0])
    prec = np.array([1.0, 0.5, 2.0 / 3.0])
    # 11-point: t = 0..0.5 -> 1 (6 points), t = 0.6..1 -> 2/3 (5 points).
    assert voc_ap(rec, prec, use_07_metric=True) == pytest.approx((6 + 5 * 2.0 / 3.0) / 11, abs=1e-12)
    # Area: 0.5 * 1 + 0.5 * 2/3.
    assert voc_ap(rec, prec, use_07_metric=False) == pytest.approx(0.5 + 1.0 / 3.0, abs=1e-12)


def test_undefined_and_empty_curves():
    assert np.isnan(voc_ap(None, np.array([1.0]), True))  # no ground truth: recall undefined
    assert voc_ap(np.array([]), np.array([]), True) == 0.0  # ground truth, no detection
    assert voc_ap(np.array([]), np.array([]), False) == 0.0
    # A leading ignored detection gives precision 0/0 (NaN), counted as 0.
    rec, prec = recall_precision(np.array([-1, 1]), 1)
    assert np.isnan(prec[0]) and prec[1] == 1.0
    assert voc_ap(rec, prec, True) == pytest.approx(1.0)


def test_recall_stops_short_of_a_threshold():
    rec = np.array([0.25, 0.5])
    prec = np.array([1.0, 1.0])
    # Recall never reaches 0.6..1.0: those 5 points are 0.
    assert voc_ap(rec, prec, True) == pytest.approx(6 / 11.0)
    assert voc_ap(rec, prec, False) == pytest.approx(0.5)


def _metric_case(metric_cls):
    """One image: objects A and C (class 0), B difficult (class 0); six detections."""
    gt_boxes = np.array([[[0, 0, 9, 9], [100, 100, 119, 119], [50, 50, 59, 59]]], np.float32)
    gt_labels = np.array([[0, 0, 0]], np.float32)
    gt_difficult = np.array([[0, 0, 1]], np.float32)
    pred_boxes = np.array([[
        [200, 200, 220, 220],  # 0.95 false positive
        [0, 0, 9, 9],          # 0.90 true positive (A)
        [1, 1, 9, 9],          # 0.80 duplicate of A: false positive
        [50, 50, 59, 59],      # 0.70 matches difficult B: ignored
        [300, 300, 320, 320],  # 0.65 false positive
        [100, 100, 119, 119],  # 0.60 true positive (C)
        [-1, -1, -1, -1],      # padding
    ]], np.float32)
    pred_labels = np.array([[0, 0, 0, 0, 0, 0, -1]], np.float32)
    pred_scores = np.array([[0.95, 0.9, 0.8, 0.7, 0.65, 0.6, -1]], np.float32)
    metric = metric_cls(class_names=["thing"])
    metric.update(pred_boxes, pred_labels, pred_scores, gt_boxes, gt_labels, gt_difficult)
    return metric


def test_metric_hand_case_voc07():
    # prec = [0, .5, 1/3, 1/3, .25, .4], rec = [0, .5, .5, .5, .5, 1]:
    # 11-point = (6 * 0.5 + 5 * 0.4) / 11.
    names, values = _metric_case(VOC07MApMetric).get()
    assert names == ["thing", "mAP"]
    assert values[0] == pytest.approx(5.0 / 11.0, abs=1e-12)
    assert values[1] == values[0]


def test_metric_hand_case_area():
    names, values = _metric_case(VOCMApMetric).get()
    assert values[0] == pytest.approx(0.5 * 0.5 + 0.5 * 0.4, abs=1e-12)


def test_plus_one_pixel_convention_and_inclusive_threshold():
    # With +1: det [0,0,4,9] covers 5x10 = 50 of the 10x10 = 100 gt pixels: IoU exactly 0.5 -> TP.
    # Without it the IoU would be 36/81 < 0.5 (a false positive and AP 0).
    metric = VOC07MApMetric(iou_thresh=0.5)
    metric.update(np.array([[[0, 0, 4, 9]]], np.float32), np.array([[0.0]]), np.array([[0.9]]),
                  np.array([[[0, 0, 9, 9]]], np.float32), np.array([[0.0]]))
    assert metric.get()[1][-1] == pytest.approx(1.0)
    strict = VOC07MApMetric(iou_thresh=0.51)
    strict.update(np.array([[[0, 0, 4, 9]]], np.float32), np.array([[0.0]]), np.array([[0.9]]),
                  np.array([[[0, 0, 9, 9]]], np.float32), np.array([[0.0]]))
    assert strict.get()[1][-1] == 0.0


def test_edge_classes_yield_nan_or_zero_and_map_skips_nan():
    # class 0: gt and a perfect detection (AP 1); class 1: gt, no detection (AP 0);
    # class 2: detection, no gt (NaN); class 3: never seen (NaN).
    metric = VOC07MApMetric(class_names=["a", "b", "c", "d"])
    metric.update(
        np.array([[[0, 0, 9, 9], [30, 30, 40, 40]]], np.float32), np.array([[0, 2]], np.float32),
        np.array([[0.9, 0.8]], np.float32),
        np.array([[[0, 0, 9, 9], [50, 50, 60, 60]]], np.float32), np.array([[0, 1]], np.float32))
    names, values = metric.get()
    assert names == ["a", "b", "c", "d", "mAP"]
    assert values[0] == pytest.approx(1.0, abs=1e-12) and values[1] == 0.0
    assert np.isnan(values[2]) and np.isnan(values[3])
    assert values[4] == pytest.approx(0.5)


def test_nothing_seen_gives_nan():
    metric = VOCMApMetric(class_names=["a"])
    assert np.isnan(metric.get()[1]).all()
    metric.update(np.full((2, 3, 4), -1, np.float32), np.full((2, 3), -1, np.float32),
                  np.full((2, 3), -1, np.float32), np.full((2, 1, 4), -1, np.float32),
                  np.full((2, 1), -1, np.float32))
    assert np.isnan(metric.get()[1]).all() and metric.num_images == 2


def test_reset_forgets():
    metric = _metric_case(VOC07MApMetric)
    metric.reset()
    assert metric.num_images == 0 and np.isnan(metric.get()[1][-1])
