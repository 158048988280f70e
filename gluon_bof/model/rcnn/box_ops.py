"""Numpy box utilities for target generation: IoU and centre-offset encoding.

Boxes are corner boxes ``[xmin, ymin, xmax, ymax]`` in pixels. Width is ``xmax - xmin`` (no +1),
matching MXNet's ``contrib.box_iou`` / ``box_encode`` / ``box_decode`` used by the network side.
"""
from typing import Sequence

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(N, M)`` of corner boxes ``a (N, 4)`` and ``b (M, 4)``; 0 where the union is 0."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32).T[:, None, :]                      # 4 x (1, M)
    inter_w = np.minimum(a[:, 2:3], b[2]) - np.maximum(a[:, 0:1], b[0])    # (N, M)
    inter_h = np.minimum(a[:, 3:4], b[3]) - np.maximum(a[:, 1:2], b[1])
    inter = np.maximum(inter_w, 0) * np.maximum(inter_h, 0)
    area_a = np.maximum(a[:, 2:3] - a[:, 0:1], 0) * np.maximum(a[:, 3:4] - a[:, 1:2], 0)
    area_b = np.maximum(b[2] - b[0], 0) * np.maximum(b[3] - b[1], 0)
    union = area_a + area_b - inter
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def encode_boxes(anchors: np.ndarray, targets: np.ndarray,
                 stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
                 means: Sequence[float] = (0.0, 0.0, 0.0, 0.0)) -> np.ndarray:
    """Regression targets ``(N, 4)`` taking ``anchors (N, 4)`` to ``targets (N, 4)``.

    ``((gx - ax) / aw, (gy - ay) / ah, log(gw / aw), log(gh / ah))``, minus ``means``, over ``stds``,
    with centres ``x = xmin + w / 2``.
    """
    aw = anchors[:, 2] - anchors[:, 0]
    ah = anchors[:, 3] - anchors[:, 1]
    ax = anchors[:, 0] + 0.5 * aw
    ay = anchors[:, 1] + 0.5 * ah
    gw = targets[:, 2] - targets[:, 0]
    gh = targets[:, 3] - targets[:, 1]
    gx = targets[:, 0] + 0.5 * gw
    gy = targets[:, 1] + 0.5 * gh
    with np.errstate(divide="ignore", invalid="ignore"):
        codes = np.stack([(gx - ax) / aw, (gy - ay) / ah, np.log(gw / aw), np.log(gh / ah)], axis=1)
    return ((codes - np.asarray(means)) / np.asarray(stds)).astype(np.float32)
