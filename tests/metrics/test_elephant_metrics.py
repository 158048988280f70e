"""Elephant-in-the-room statistics on hand-made detections: IoU, covered fraction, the pasted
object's match, one-to-one disappearance, occluded scene objects left out, totals over frames."""
import numpy as np
import pytest

from gluon_bof.metrics.elephant import (box_iou, covered_fraction, disappeared, frame_outcome,
                                        match_pasted_object, summarize)


def dets(rows):
    """``[(x0, y0, x1, y1, class, score), ...]`` -> detections dict."""
    arr = np.array(rows, np.float64).reshape(-1, 6)
    return {"boxes": arr[:, :4], "ids": arr[:, 4].astype(int), "scores": arr[:, 5]}


def test_box_iou_hand_values():
    iou = box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10], [3, 3, 3, 8]])
    np.testing.assert_allclose(iou, [[50 / 150, 0.0, 1.0, 0.0]])
    assert box_iou(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)


def test_covered_fraction_counts_inclusive_pixels_and_clips():
    mask = np.zeros((10, 12), bool)
    mask[0:2, 0:4] = True  # 8 pixels
    frac = covered_fraction([[0, 0, 3, 3],      # 16 pixels, 8 covered
                             [0.4, 0.4, 3.4, 1.4],  # rounds to 0..3 x 0..1: fully covered
                             [6, 6, 9, 9],      # no covered pixel
                             [-5, -5, 1, 1],    # clipped to 0..1 x 0..1: 4 pixels, all covered
                             [20, 20, 30, 30]], mask)  # outside the frame
    np.testing.assert_allclose(frac, [0.5, 1.0, 0.0, 1.0, 0.0])


def test_pasted_object_needs_score_iou_and_class():
    frame = dets([[0, 0, 10, 10, 1, 0.9],    # IoU 1/3 with the object: too little
                  [5, 0, 14, 10, 2, 0.7],    # IoU 0.9, class 2
                  [5, 0, 15, 10, 3, 0.4]])   # IoU 1, below the threshold
    box = [5, 0, 15, 10]
    found = match_pasted_object(frame["boxes"], frame["ids"], frame["scores"], box, thresh=0.5)
    assert found["found"] and found["iou"] == pytest.approx(0.9) and found["score"] == pytest.approx(0.7)
    assert match_pasted_object(frame["boxes"], frame["ids"], frame["scores"], box, 0.5, class_id=2)["found"]
    as_one = match_pasted_object(frame["boxes"], frame["ids"], frame["scores"], box, 0.5, class_id=1)
    assert not as_one["found"] and as_one["iou"] == pytest.approx(1 / 3) and as_one["score"] is None
    assert match_pasted_object(frame["boxes"], frame["ids"], frame["scores"], box, 0.3, class_id=3)["found"]
    assert not match_pasted_object(frame["boxes"], frame["ids"], frame["scores"], box, 0.5, iou_thresh=0.95)["found"]


def test_disappeared_same_class_one_to_one_above_threshold():
    scene = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [0, 1, 10, 11], [40, 40, 50, 50]], np.float64)
    scene_ids = np.array([0, 1, 0, 2])
    frame = dets([[0, 0, 10, 10.5, 0, 0.8],   # matches scene 0 (IoU 0.95) and scene 2 (IoU 0.86): one of them
                  [20, 0, 30, 10, 0, 0.9],    # right place, wrong class for scene 1
                  [40, 40, 50, 50, 2, 0.3]])  # scene 3, but below the threshold
    gone = disappeared(scene, scene_ids, frame["boxes"], frame["ids"], frame["scores"], thresh=0.5)
    assert gone.tolist() == [False, True, True, True]
    gone = disappeared(scene, scene_ids, frame["boxes"], frame["ids"], frame["scores"], thresh=0.2)
    assert gone.tolist() == [False, True, True, False]
    assert disappeared(scene, scene_ids, np.zeros((0, 4)), [], [], 0.5).all()


def test_frame_outcome_leaves_out_covered_scene_objects():
    scene = dets([[0, 0, 9, 9, 0, 0.9],       # 100 pixels, 60 covered below: left out
                  [20, 0, 29, 9, 1, 0.8],     # visible, kept alive
                  [40, 0, 49, 9, 2, 0.6],     # visible, gone in the frame
                  [60, 0, 69, 9, 3, 0.2]])    # not a scene object: below the threshold
    mask = np.zeros((30, 80), bool)
    mask[0:6, 0:10] = True
    mask[20:30, 60:70] = True                 # the pasted object's pixels
    frame = dets([[20, 0, 29, 9, 1, 0.7], [60, 20, 69, 29, 4, 0.6]])
    out = frame_outcome(scene, frame, [60, 20, 69, 29], mask, thresh=0.5)
    assert out == {"found_any": True, "iou": pytest.approx(1.0), "score": pytest.approx(0.6), "found_class": None,
                   "scene_objects": 2, "occluded": 1, "disappeared": 1}
    strict = frame_outcome(scene, frame, [60, 20, 69, 29], mask, thresh=0.5, occlusion_limit=0.7, class_id=5)
    assert (strict["scene_objects"], strict["occluded"], strict["disappeared"]) == (3, 0, 2)
    assert strict["found_any"] and strict["found_class"] is False


def test_summarize_rates_over_frames():
    keys = ("found_any", "iou", "score", "found_class", "scene_objects", "occluded", "disappeared")
    outcomes = [dict(zip(keys, row)) for row in [(True, 0.8, 0.9, True, 3, 0, 0),
                                                 (True, 0.7, 0.5, False, 2, 1, 1),
                                                 (False, 0.1, None, False, 3, 0, 2),
                                                 (True, 0.9, 0.7, True, 0, 3, 0)]]
    s = summarize(outcomes)
    assert s["frames"] == 4 and s["found_any"] == 3 and s["recall_any"] == pytest.approx(0.75)
    assert s["found_class"] == 2 and s["recall_class"] == pytest.approx(0.5)
    assert (s["scene_objects"], s["disappeared"], s["occluded"]) == (8, 3, 4)
    assert s["disappeared_rate"] == pytest.approx(3 / 8)
    assert s["mean_object_score"] == pytest.approx(0.8)  # frames found as the class: 0.9 and 0.7
    for o in outcomes:
        o["found_class"], o["scene_objects"] = None, 0
    s = summarize(outcomes)
    assert s["recall_class"] is None and s["found_class"] is None and s["disappeared_rate"] is None
    assert s["mean_object_score"] == pytest.approx(0.7)  # any class: 0.9, 0.5, 0.7
