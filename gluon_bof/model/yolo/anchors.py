"""YOLOv3 anchor shapes and feature-map geometry, shared by the net and the numpy targets.

Anchors are given like GluonCV: one flat ``[w0, h0, w1, h1, w2, h2]`` list per output stride, in the
order of ``strides`` (shallow to deep, 8 -> 32), in input pixels. The net's heads and the target
layout run deepest first, so both use :func:`head_order`.
"""
import math
from typing import List, Sequence, Tuple

import numpy as np

DEFAULT_ANCHORS = ((10, 13, 16, 30, 33, 23), (30, 61, 62, 45, 59, 119), (116, 90, 156, 198, 373, 326))
DEFAULT_STRIDES = (8, 16, 32)


def check_anchors(anchors: Sequence[Sequence[float]], strides: Sequence[int]) -> np.ndarray:
    """Validate and return anchors as ``(num_strides, n_per_stride, 2)`` float32 (w, h) pixels."""
    if len(anchors) != len(strides) or not strides:
        raise ValueError("anchors: need one anchor list per stride, got %d lists for strides %s"
                         % (len(anchors), list(strides)))
    sizes = {len(a) for a in anchors}
    if len(sizes) != 1 or sizes.pop() % 2:
        raise ValueError("anchors: every stride needs the same even number of values (w, h pairs), "
                         "got lengths %s" % [len(a) for a in anchors])
    arr = np.asarray(anchors, dtype=np.float32).reshape(len(strides), -1, 2)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError("anchors: widths and heights must be finite and > 0, got %s" % arr.tolist())
    if any(int(s) != s or s <= 0 for s in strides):
        raise ValueError("strides must be positive integers, got %s" % list(strides))
    return arr


def head_order(strides: Sequence[int]) -> List[int]:
    """Indices of ``strides`` in the order of the net's output heads (largest stride first)."""
    return sorted(range(len(strides)), key=lambda i: -strides[i])


def feature_hw(input_hw: Tuple[int, int], stride: int) -> Tuple[int, int]:
    """Feature-map size of a stride: each stride-2 conv (k3, p1) maps n to ceil(n / 2)."""
    return int(math.ceil(input_hw[0] / stride)), int(math.ceil(input_hw[1] / stride))


def num_anchor_rows(input_hw: Tuple[int, int], strides: Sequence[int], anchors_per_stride: int = 3) -> int:
    """``A``: total number of (cell, anchor) rows of all heads for an input of ``input_hw``."""
    return sum(anchors_per_stride * h * w for h, w in (feature_hw(input_hw, s) for s in strides))
