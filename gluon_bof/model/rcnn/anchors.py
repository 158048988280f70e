"""RPN anchors: the fixed reference boxes every RPN output position regresses from.

GluonCV convention (kept for parameter and target parity):

* the reference window of a position is ``[0, 0, stride - 1, stride - 1]``, centre ``(stride - 1) / 2``;
* for each aspect ratio ``r`` (h / w), ``w_r = round(sqrt(stride**2 / r))``, ``h_r = round(w_r * r)``;
  each scale ``s`` then multiplies both by ``base_size * s / stride``;
* a box of width ``w`` around centre ``c`` spans ``[c - (w - 1) / 2, c + (w - 1) / 2]``;
* order: position (row-major over the feature map) > ratio > scale.

Anchors are pre-computed for an ``alloc_size`` feature map (128 x 128 by default) and cropped to the
actual feature map, both inside the network and in the data workers (RPN targets).
"""
import math
from typing import Sequence, Tuple

import numpy as np
from mxnet import gluon


def base_anchors(stride: int, base_size: int, ratios: Sequence[float],
                 scales: Sequence[float]) -> np.ndarray:
    """Anchors of the position at the origin, ``(len(ratios) * len(scales), 4)`` corner boxes, pixels."""
    centre = 0.5 * (stride - 1)
    out = []
    for ratio in ratios:
        w_r = np.round(np.sqrt(stride * stride / float(ratio)))
        h_r = np.round(w_r * float(ratio))
        for scale in scales:
            factor = base_size * float(scale) / stride
            half_w, half_h = 0.5 * (w_r * factor - 1), 0.5 * (h_r * factor - 1)
            out.append([centre - half_w, centre - half_h, centre + half_w, centre + half_h])
    return np.asarray(out, dtype=np.float64)


def generate_anchors(stride: int, base_size: int, ratios: Sequence[float], scales: Sequence[float],
                     alloc_size: Tuple[int, int]) -> np.ndarray:
    """All anchors of an ``alloc_size = (H, W)`` feature map, shape ``(1, 1, H, W, 4 * A)`` float32."""
    height, width = alloc_size
    base = base_anchors(stride, base_size, ratios, scales)                    # (A, 4)
    ys, xs = np.meshgrid(np.arange(height) * stride, np.arange(width) * stride, indexing="ij")
    shifts = np.stack([xs, ys, xs, ys], axis=-1).reshape(height, width, 1, 4)  # (H, W, 1, 4)
    anchors = shifts + base.reshape(1, 1, -1, 4)                               # (H, W, A, 4)
    return anchors.reshape(1, 1, height, width, -1).astype(np.float32)


def feature_size(image_size: int, num_halvings: int = 4) -> int:
    """Feature-map size after ``num_halvings`` stride-2 layers that each map ``s`` to ``ceil(s / 2)``."""
    for _ in range(num_halvings):
        image_size = int(math.ceil(image_size / 2.0))
    return image_size


class RPNAnchorGenerator(gluon.HybridBlock):
    """Holds the pre-computed anchors as a constant ``anchors`` (a saved parameter, as in GluonCV).

    Called on a feature map ``(B, C, h, w)`` it returns the anchors of that map, ``(1, h * w * A, 4)``.
    ``h`` and ``w`` must not exceed ``alloc_size``.
    """

    def __init__(self, stride: int, base_size: int, ratios: Sequence[float],
                 scales: Sequence[float], alloc_size: Tuple[int, int], **kwargs):
        super().__init__(**kwargs)
        if not base_size or base_size <= 0:
            raise ValueError("RPNAnchorGenerator: base_size must be positive, got %r" % (base_size,))
        self.stride = int(stride)
        self.alloc_size = tuple(alloc_size)
        self.num_depth = len(ratios) * len(scales)
        self.anchors = self.params.get_constant(
            "anchor_", generate_anchors(stride, base_size, ratios, scales, alloc_size))

    def hybrid_forward(self, F, x, anchors):
        return F.slice_like(anchors, x, axes=(2, 3)).reshape((1, -1, 4))

    def anchors_for_feature(self, feat_h: int, feat_w: int) -> np.ndarray:
        """Numpy anchors of a ``(feat_h, feat_w)`` map, ``(feat_h * feat_w * A, 4)``, for data workers."""
        if feat_h > self.alloc_size[0] or feat_w > self.alloc_size[1]:
            raise ValueError("feature map %dx%d exceeds the anchor alloc_size %r; build the model with "
                             "a larger alloc_size" % (feat_h, feat_w, self.alloc_size))
        full = self.anchors.data().asnumpy()
        return full[0, 0, :feat_h, :feat_w, :].reshape(-1, 4)
