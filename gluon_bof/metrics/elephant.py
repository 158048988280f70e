"""Statistics of the "elephant in the room" test: recall of a pasted object, disappeared scene objects.

An object is pasted into a scene at many positions (frames). For every frame and every model:

* the pasted object is *found* when a detection scoring at least ``thresh`` overlaps its box with
  IoU >= ``iou_thresh`` (any class, or only detections of ``class_id``);
* the *scene objects* are the model's detections of the clean scene scoring at least ``thresh``.
  Those whose box is covered by the pasted pixels for more than ``occlusion_limit`` of its area
  are *occluded* and left out (a hidden object cannot be seen); each remaining one has
  *disappeared* when no detection of the frame of the same class, scoring at least ``thresh``,
  matches it with IoU >= ``iou_thresh`` (one-to-one, highest IoU first).

Over all frames: recall = frames where the object is found / frames; disappeared rate =
disappeared scene objects / scene objects (both summed over frames), as Table 2 of the paper.

Boxes are ``(N, 4)`` corners ``[xmin, ymin, xmax, ymax]`` in pixels of the frame; IoU is computed
on continuous coordinates. Pure numpy: nothing here knows about models or images on disk.
"""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

__all__ = ["box_iou", "covered_fraction", "match_pasted_object", "disappeared", "frame_outcome",
           "summarize"]


def _boxes(boxes: Any, name: str) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError("%s: expected (N, 4) corner boxes, got shape %s" % (name, arr.shape))
    return arr


def box_iou(a: Any, b: Any) -> np.ndarray:
    """``(N, M)`` IoU of corner boxes ``a (N, 4)`` and ``b (M, 4)``; 0 where a union is empty."""
    a, b = _boxes(a, "a"), _boxes(b, "b")
    left = np.maximum(a[:, None, 0], b[None, :, 0])
    top = np.maximum(a[:, None, 1], b[None, :, 1])
    right = np.minimum(a[:, None, 2], b[None, :, 2])
    bottom = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def covered_fraction(boxes: Any, mask: np.ndarray) -> np.ndarray:
    """Fraction of each box's pixels that are set in ``mask`` (``(H, W)`` bool, the pasted pixels).

    A box covers the pixels with indices ``round(xmin)..round(xmax)`` and ``round(ymin)..round(ymax)``
    (inclusive, as dataset labels), clipped to the mask; a box with no pixel inside gets 0.
    Returns ``(N,)`` float64 in [0, 1].
    """
    boxes = _boxes(boxes, "boxes")
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError("mask: expected (H, W), got shape %s" % (mask.shape,))
    h, w = mask.shape
    table = np.zeros((h + 1, w + 1), np.int64)  # summed-area table: table[y, x] = mask[:y, :x].sum()
    table[1:, 1:] = mask.cumsum(0).cumsum(1)
    corners = np.round(boxes).astype(np.int64)
    x0, x1 = np.clip(corners[:, 0], 0, w), np.clip(corners[:, 2] + 1, 0, w)
    y0, y1 = np.clip(corners[:, 1], 0, h), np.clip(corners[:, 3] + 1, 0, h)
    area = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    inside = area > 0
    x1, y1 = np.maximum(x1, x0), np.maximum(y1, y0)
    covered = table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
    return np.where(inside, covered / np.maximum(area, 1), 0.0)


def match_pasted_object(boxes: Any, ids: Any, scores: Any, object_box: Sequence[float], thresh: float,
                        iou_thresh: float = 0.5, class_id: Optional[int] = None) -> Dict[str, Any]:
    """Whether a frame's detections find the pasted object.

    Parameters
    ----------
    boxes, ids, scores : ``(N, 4)``, ``(N,)``, ``(N,)`` detections of the frame.
    object_box : the pasted object's ``[xmin, ymin, xmax, ymax]``.
    thresh : minimum score of a detection that counts.
    class_id : count only detections of this class (``None``: any class).

    Returns
    -------
    ``{'found': bool, 'iou': best IoU among counted detections (0 without any), 'score': highest
    score among the matching detections (``None`` when not found)}``.
    """
    boxes = _boxes(boxes, "boxes")
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    keep = scores >= thresh
    if class_id is not None:
        keep &= ids == int(class_id)
    if not keep.any():
        return {"found": False, "iou": 0.0, "score": None}
    iou = box_iou(boxes[keep], np.asarray(object_box, np.float64).reshape(1, 4))[:, 0]
    hits = iou >= iou_thresh
    return {"found": bool(hits.any()), "iou": float(iou.max()),
            "score": float(scores[keep][hits].max()) if hits.any() else None}


def disappeared(scene_boxes: Any, scene_ids: Any, boxes: Any, ids: Any, scores: Any, thresh: float,
                iou_thresh: float = 0.5) -> np.ndarray:
    """``(K,)`` bool: which of the ``K`` scene objects no frame detection matches.

    A frame detection (score >= ``thresh``) matches a scene object of its class with IoU >=
    ``iou_thresh``; pairs are taken from the highest IoU down, each detection and each scene object
    used once, so two scene objects cannot both be kept alive by one detection.
    """
    scene_boxes = _boxes(scene_boxes, "scene_boxes")
    scene_ids = np.asarray(scene_ids, dtype=np.int64).reshape(-1)
    boxes = _boxes(boxes, "boxes")
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    keep = np.asarray(scores, dtype=np.float64).reshape(-1) >= thresh
    boxes, ids = boxes[keep], ids[keep]
    gone = np.ones(len(scene_boxes), bool)
    if not len(scene_boxes) or not len(boxes):
        return gone
    iou = box_iou(scene_boxes, boxes)
    iou[scene_ids[:, None] != ids[None, :]] = -1.0
    rows, cols = np.nonzero(iou >= iou_thresh)
    used = np.zeros(len(boxes), bool)
    for k in np.argsort(-iou[rows, cols], kind="stable"):
        r, c = rows[k], cols[k]
        if gone[r] and not used[c]:
            gone[r], used[c] = False, True
    return gone


def frame_outcome(scene: Dict[str, np.ndarray], frame: Dict[str, np.ndarray], object_box: Sequence[float],
                  paste_mask: np.ndarray, thresh: float = 0.5, iou_thresh: float = 0.5,
                  occlusion_limit: float = 0.5, class_id: Optional[int] = None) -> Dict[str, Any]:
    """One model's outcome on one frame.

    ``scene`` and ``frame`` hold detections as ``{'boxes': (N, 4), 'ids': (N,), 'scores': (N,)}``
    (the clean scene's and the frame's, any score); ``paste_mask`` is the ``(H, W)`` bool map of the
    pasted pixels. Returns counts and the object match (``found_any``; ``found_class`` when
    ``class_id`` is given, else ``None``), ready for JSON.
    """
    scene_scores = np.asarray(scene["scores"], np.float64).reshape(-1)
    strong = scene_scores >= thresh
    scene_boxes = _boxes(scene["boxes"], "scene boxes")[strong]
    scene_ids = np.asarray(scene["ids"], np.int64).reshape(-1)[strong]
    occluded = covered_fraction(scene_boxes, paste_mask) > occlusion_limit
    gone = disappeared(scene_boxes[~occluded], scene_ids[~occluded], frame["boxes"], frame["ids"],
                       frame["scores"], thresh, iou_thresh)
    any_class = match_pasted_object(frame["boxes"], frame["ids"], frame["scores"], object_box, thresh, iou_thresh)
    outcome = {"found_any": any_class["found"], "iou": any_class["iou"], "score": any_class["score"],
               "found_class": None, "scene_objects": int((~occluded).sum()), "occluded": int(occluded.sum()),
               "disappeared": int(gone.sum())}
    if class_id is not None:
        as_class = match_pasted_object(frame["boxes"], frame["ids"], frame["scores"], object_box, thresh,
                                       iou_thresh, class_id)
        outcome["found_class"] = as_class["found"]
        outcome["score"] = as_class["score"] if as_class["found"] else outcome["score"]
    return outcome


def _ratio(num: int, den: int) -> Optional[float]:
    return num / den if den else None


def summarize(outcomes: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Totals over a model's frames (outcomes of :func:`frame_outcome`), rates as fractions.

    ``recall_class`` is ``None`` when no class was asked for; ``disappeared_rate`` is ``None`` when
    no frame had a visible scene object; ``mean_object_score`` averages the matched object's score
    over the frames where it was found (with the class when one was asked for).
    """
    frames = len(outcomes)
    found_any = sum(bool(o["found_any"]) for o in outcomes)
    with_class = [o for o in outcomes if o["found_class"] is not None]
    found_class = sum(bool(o["found_class"]) for o in with_class)
    scene = sum(o["scene_objects"] for o in outcomes)
    gone = sum(o["disappeared"] for o in outcomes)
    hit_key = "found_class" if with_class else "found_any"
    hit_scores = [o["score"] for o in outcomes if o[hit_key] and o["score"] is not None]
    return {
        "frames": frames,
        "found_any": found_any, "recall_any": _ratio(found_any, frames),
        "found_class": found_class if with_class else None,
        "recall_class": _ratio(found_class, len(with_class)) if with_class else None,
        "scene_objects": scene, "occluded": sum(o["occluded"] for o in outcomes),
        "disappeared": gone, "disappeared_rate": _ratio(gone, scene),
        "mean_object_score": float(np.mean(hit_scores)) if hit_scores else None,
    }
