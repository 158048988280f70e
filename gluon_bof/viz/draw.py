"""Draw detections on images (OpenCV), e.g. the demo's picture of what the trained model finds."""
from typing import List, Optional, Sequence

import cv2
import numpy as np

_PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                     [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]],
                    dtype=np.uint8)


def draw_detections(image: np.ndarray, boxes: np.ndarray, ids: np.ndarray, scores: np.ndarray,
                    class_names: Sequence[str], score_thresh: float = 0.3,
                    gt_boxes: Optional[np.ndarray] = None) -> np.ndarray:
    """Return a copy of ``image`` (HxWx3 uint8 RGB) with boxes, class names and scores drawn.

    ``boxes (N, 4)`` in pixels of ``image``, ``ids``/``scores`` of shape ``(N,)`` or ``(N, 1)``
    (rows with id < 0 or score < ``score_thresh`` are skipped). Ground-truth boxes, if given, are
    drawn thin and white underneath.
    """
    canvas = np.ascontiguousarray(image.copy())
    if gt_boxes is not None:
        for box in np.asarray(gt_boxes).reshape(-1, 4):
            if box[2] > box[0] >= 0:
                cv2.rectangle(canvas, tuple(int(v) for v in box[:2]), tuple(int(v) for v in box[2:4]),
                              (255, 255, 255), 1)
    ids, scores = np.asarray(ids).reshape(-1), np.asarray(scores).reshape(-1)
    for box, cid, score in zip(np.asarray(boxes).reshape(-1, 4), ids, scores):
        if cid < 0 or score < score_thresh:
            continue
        color = tuple(int(c) for c in _PALETTE[int(cid) % len(_PALETTE)])
        p1, p2 = tuple(int(round(v)) for v in box[:2]), tuple(int(round(v)) for v in box[2:4])
        cv2.rectangle(canvas, p1, p2, color, 2)
        text = "%s %.2f" % (class_names[int(cid)], score)
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        top = max(p1[1], th + 3)
        cv2.rectangle(canvas, (p1[0], top - th - 3), (p1[0] + tw + 2, top), color, -1)
        cv2.putText(canvas, text, (p1[0] + 1, top - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                    cv2.LINE_AA)
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
