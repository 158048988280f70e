"""Draw detections on images (OpenCV): coloured boxes with class and score, ground truth in a
distinct dashed style, and a legend naming the class of each colour.

Detections come from models at any stage of training, so boxes may lie far outside the image or be
NaN/inf: every box is clipped to the image and non-finite or empty rows are skipped instead of
reaching ``cv2.rectangle`` (which rejects coordinates outside the int32 range).
"""
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = ["PALETTE", "class_color", "clip_boxes_to_image", "draw_detections", "draw_legend", "save_grid"]

PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]],
                   dtype=np.uint8)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE = 0.4
_DASH, _GAP = 4, 3
_GT_LABEL = "GT"


def class_color(class_id: int) -> Tuple[int, int, int]:
    """RGB colour of a class id (the palette repeats every ``len(PALETTE)`` classes)."""
    return tuple(int(c) for c in PALETTE[int(class_id) % len(PALETTE)])


def clip_boxes_to_image(boxes: np.ndarray, width: int, height: int) -> Tuple[np.ndarray, np.ndarray]:
    """Clip ``(N, 4)`` corner boxes (pixels) to ``[0, width-1] x [0, height-1]``.

    Returns the clipped boxes as int32 and a ``(N,)`` mask of the rows worth drawing: all four
    coordinates finite and a non-empty area left after clipping.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    finite = np.all(np.isfinite(boxes), axis=1)
    safe = np.where(finite[:, None], boxes, 0.0)
    safe[:, 0::2] = np.clip(safe[:, 0::2], 0, max(int(width) - 1, 0))
    safe[:, 1::2] = np.clip(safe[:, 1::2], 0, max(int(height) - 1, 0))
    clipped = np.round(safe).astype(np.int32)
    visible = finite & (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    return clipped, visible


def _dashed_rectangle(canvas: np.ndarray, p1: Tuple[int, int], p2: Tuple[int, int]) -> None:
    """White dashes over a thin black line: readable on both light and dark backgrounds."""
    cv2.rectangle(canvas, p1, p2, (0, 0, 0), 1)
    (x1, y1), (x2, y2) = p1, p2
    for a, b, fixed, horizontal in ((x1, x2, y1, True), (x1, x2, y2, True), (y1, y2, x1, False),
                                    (y1, y2, x2, False)):
        for start in range(a, b, _DASH + _GAP):
            end = min(start + _DASH, b)
            if horizontal:
                cv2.line(canvas, (start, fixed), (end, fixed), (255, 255, 255), 1)
            else:
                cv2.line(canvas, (fixed, start), (fixed, end), (255, 255, 255), 1)


def _class_name(class_names: Sequence[str], class_id: int) -> str:
    return class_names[class_id] if 0 <= class_id < len(class_names) else "class %d" % class_id


def draw_legend(canvas: np.ndarray, entries: Sequence[Tuple[str, Optional[Tuple[int, int, int]]]]) -> np.ndarray:
    """Draw a legend panel in the top-right corner of ``canvas`` (HxWx3 uint8 RGB, in place).

    ``entries`` are ``(text, rgb colour)`` pairs; a colour of ``None`` draws the ground-truth sample
    (a dashed white box). Returns ``canvas``.
    """
    if not entries:
        return canvas
    sizes = [cv2.getTextSize(text, _FONT, _FONT_SCALE, 1)[0] for text, _ in entries]
    row_h = max(h for _, h in sizes) + 6
    swatch = row_h - 4
    width = max(w for w, _ in sizes) + swatch + 10
    height = row_h * len(entries) + 4
    h_img, w_img = canvas.shape[:2]
    x0, y0 = max(w_img - width - 2, 0), 2
    x1, y1 = min(x0 + width, w_img - 1), min(y0 + height, h_img - 1)
    region = canvas[y0:y1, x0:x1]
    region[:] = (region.astype(np.float32) * 0.35).astype(np.uint8)  # darkened panel behind the text
    for row, ((text, color), (_, th)) in enumerate(zip(entries, sizes)):
        top = y0 + 2 + row * row_h
        s1, s2 = (x0 + 3, top + 2), (x0 + 3 + swatch, top + 2 + swatch - 1)
        if color is None:
            _dashed_rectangle(canvas, s1, s2)
        else:
            cv2.rectangle(canvas, s1, s2, color, -1)
        cv2.putText(canvas, text, (x0 + swatch + 7, top + 2 + (swatch + th) // 2), _FONT, _FONT_SCALE,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def draw_detections(image: np.ndarray, boxes: np.ndarray, ids: np.ndarray, scores: np.ndarray,
                    class_names: Sequence[str], score_thresh: float = 0.3,
                    gt_boxes: Optional[np.ndarray] = None, legend: bool = True,
                    thickness: int = 2) -> np.ndarray:
    """Return a copy of ``image`` (HxWx3 uint8 RGB) with detections, ground truth and a legend.

    Parameters
    ----------
    boxes : (N, 4) corner boxes in pixels of ``image``; clipped to the image, and rows with a
        non-finite coordinate or no area inside the image are skipped.
    ids, scores : (N,) or (N, 1); rows with id < 0 or score < ``score_thresh`` are skipped.
    class_names : names indexed by class id (ids past the end are drawn as ``class <id>``).
    gt_boxes : (M, 4) ground-truth boxes, drawn underneath as dashed black-and-white boxes, so they
        never look like a detection (detections are solid, in their class colour).
    legend : add a panel naming the colour of each drawn class (and ``GT`` when ground truth is drawn).
    """
    canvas = np.ascontiguousarray(np.array(image, dtype=np.uint8, copy=True))
    h, w = canvas.shape[:2]
    entries: List[Tuple[str, Optional[Tuple[int, int, int]]]] = []
    if gt_boxes is not None:
        gt, visible = clip_boxes_to_image(gt_boxes, w, h)
        for box in gt[visible]:
            _dashed_rectangle(canvas, (int(box[0]), int(box[1])), (int(box[2]), int(box[3])))
        if visible.any():
            entries.append((_GT_LABEL, None))
    ids = np.asarray(ids, dtype=np.float64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    clipped, visible = clip_boxes_to_image(boxes, w, h)
    keep = visible & np.isfinite(ids) & (ids >= 0) & np.isfinite(scores) & (scores >= score_thresh)
    drawn_classes = []
    for box, cid, score in zip(clipped[keep], ids[keep].astype(int), scores[keep]):
        color = class_color(cid)
        p1, p2 = (int(box[0]), int(box[1])), (int(box[2]), int(box[3]))
        cv2.rectangle(canvas, p1, p2, color, thickness)
        text = "%s %.2f" % (_class_name(class_names, cid), score)
        (tw, th), _ = cv2.getTextSize(text, _FONT, _FONT_SCALE, 1)
        top = max(p1[1], th + 3)
        cv2.rectangle(canvas, (p1[0], top - th - 3), (p1[0] + tw + 2, top), color, -1)
        cv2.putText(canvas, text, (p1[0] + 1, top - 2), _FONT, _FONT_SCALE, (0, 0, 0), 1, cv2.LINE_AA)
        if cid not in drawn_classes:
            drawn_classes.append(cid)
    if legend:
        entries = [(_class_name(class_names, c), class_color(c)) for c in sorted(drawn_classes)] + entries
        draw_legend(canvas, entries)
    return canvas


def save_grid(images: List[np.ndarray], path: str, columns: int = 3, tile: int = 320) -> str:
    """Tile RGB images (resized to ``tile`` x ``tile``) into one PNG/JPEG at ``path``."""
    if not images:
        raise ValueError("save_grid: no image to save")
    tiles = [cv2.resize(im, (tile, tile), interpolation=cv2.INTER_AREA) for im in images]
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)]
    if not cv2.imwrite(path, np.vstack(rows)[:, :, ::-1]):
        raise OSError("save_grid: could not write %s" % path)
    return path
