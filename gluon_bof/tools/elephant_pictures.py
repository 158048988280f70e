"""Pictures of the "elephant in the room" test (the paper's Figure 5): the same frames seen by each
model, side by side, as a contact sheet (one row per model) and as an animated GIF.

Each panel is the frame with the model's detections scoring at least the threshold (class colour,
name, score, a legend), the pasted object's box dashed (``GT``), and a caption naming the model and
whether it found the object.
"""
from typing import Any, Dict, List, Sequence

import cv2
import numpy as np

from ..viz.draw import draw_detections

__all__ = ["panel", "contact_sheet", "write_gif", "fit_tile"]

_CAPTION_H = 22
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def fit_tile(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` scaled to fit a ``side x side`` square (aspect kept) and padded with black."""
    h, w = image.shape[:2]
    f = side / max(h, w)
    small = cv2.resize(image, (max(1, int(round(w * f))), max(1, int(round(h * f)))), interpolation=cv2.INTER_AREA)
    tile = np.zeros((side, side, 3), np.uint8)
    tile[:small.shape[0], :small.shape[1]] = small
    return tile


def panel(frame: np.ndarray, dets: Dict[str, np.ndarray], object_box: Sequence[int], classes: Sequence[str],
          thresh: float, caption: str, side: int) -> np.ndarray:
    """One model's view of one frame: ``(side + caption, side, 3)`` uint8 RGB.

    ``dets`` holds ``boxes (N, 4)``, ``ids (N,)`` and ``scores (N,)`` in the frame's pixels.
    """
    drawn = draw_detections(frame, dets["boxes"], dets["ids"], dets["scores"], classes, score_thresh=thresh,
                            gt_boxes=np.asarray(object_box, np.float32).reshape(1, 4))
    bar = np.full((_CAPTION_H, side, 3), 255, np.uint8)
    cv2.putText(bar, caption[:60], (4, _CAPTION_H - 7), _FONT, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, fit_tile(drawn, side)])


def contact_sheet(panels: List[List[np.ndarray]], path: str) -> str:
    """Write ``panels[model][frame]`` as one picture (a row per model, a column per frame) at ``path``."""
    if not panels or not panels[0]:
        raise ValueError("contact sheet: no frame to draw")
    gap = 4
    rows = []
    for row in panels:
        cells: List[np.ndarray] = []
        for tile in row:
            cells += [tile, np.full((tile.shape[0], gap, 3), 255, np.uint8)]
        rows += [np.hstack(cells[:-1]), np.full((gap, sum(c.shape[1] for c in cells[:-1]), 3), 255, np.uint8)]
    if not cv2.imwrite(path, np.vstack(rows[:-1])[:, :, ::-1]):
        raise OSError("elephant: could not write %s" % path)
    return path


def write_gif(frames: List[np.ndarray], path: str, duration_ms: int = 250) -> str:
    """Write RGB ``frames`` (all the same size) as a looping GIF at ``path``."""
    from PIL import Image
    if not frames:
        raise ValueError("GIF: no frame to write")
    images: List[Any] = [Image.fromarray(f).convert("P", palette=Image.ADAPTIVE, colors=255) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(duration_ms), loop=0)
    return path
