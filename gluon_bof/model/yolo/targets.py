"""Numpy YOLOv3 training targets for one image, made in the data workers.

Same targets as GluonCV's ``YOLOV3PrefetchTargetGenerator``, plus what GluonCV does later inside
the network: label smoothing of the positives' class vectors (GluonCV's current formula, with
``eps = min(1/K, 1/40)``). The mixup weight of each box is its positive's objectness target, which
the loss uses as the weight of every loss term of that anchor.

Rows of the output, ``A`` of them, follow the net's heads, deepest first: for each head all cells
row-major (``y * fw + x``), and for each cell the head's 3 anchors.
"""
from typing import Sequence, Tuple

import numpy as np

from .anchors import DEFAULT_ANCHORS, DEFAULT_STRIDES, check_anchors, feature_hw, head_order, num_anchor_rows

Targets = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def smoothing_epsilon(num_classes: int) -> float:
    """GluonCV's label-smoothing epsilon ``min(1/K, 1/40)`` (0.025 for VOC, 0.0125 for COCO)."""
    return min(1.0 / num_classes, 1.0 / 40)


class YOLOv3TargetGenerator:
    """Build YOLOv3 targets of one image from its label, independently of the network.

    Parameters
    ----------
    num_classes : int
        ``K``, number of foreground classes.
    anchors : sequence of sequences of float
        One ``[w0, h0, w1, h1, ...]`` list per stride, in the order of ``strides``, pixels.
    strides : sequence of int
        Output strides of the heads (shallow to deep), e.g. ``(8, 16, 32)``.
    label_smooth : bool
        Positives' class vector becomes ``1 - eps`` at the true class and ``eps`` elsewhere,
        ``eps = min(1/K, 1/40)``; otherwise one-hot. Non-positive rows keep ``-1`` (ignored).

    Notes
    -----
    * Each box is matched to the one anchor (over all heads) whose shape, centered at the origin, has
      the highest IoU with the box's shape; its cell is the one holding the box center.
    * A later box overwrites an earlier one matched to the same (cell, anchor), as in GluonCV.
    * Ignored rows of ``label`` (padding): any coordinate negative or not finite, ``xmax < xmin``,
      ``ymax < ymin``, a negative class id, or a non-finite weight. GluonCV stops at the first padded
      row instead; the two agree whenever padding is at the end.
    * Degenerate boxes stay finite: sizes below one pixel use 1 in the log scale target, and a
      center on or past the right/bottom border is put in the last cell with offset clipped to 1.
    """

    def __init__(self, num_classes: int, anchors: Sequence[Sequence[float]] = DEFAULT_ANCHORS,
                 strides: Sequence[int] = DEFAULT_STRIDES, label_smooth: bool = False):
        if int(num_classes) != num_classes or num_classes < 1:
            raise ValueError("YOLOv3TargetGenerator: num_classes must be a positive int, got %r" % (num_classes,))
        self.num_classes = int(num_classes)
        self.strides = tuple(int(s) for s in strides)
        per_stride = check_anchors(anchors, self.strides)
        order = head_order(self.strides)
        # Heads deepest first, like the network and GluonCV's matching order (argmax ties -> first).
        self._head_strides = [self.strides[i] for i in order]
        self._head_anchors = per_stride[order]                        # (heads, n, 2)
        self._n = self._head_anchors.shape[1]
        self._flat_anchors = self._head_anchors.reshape(-1, 2)        # (heads * n, 2)
        self.label_smooth = bool(label_smooth)
        self.anchors = [list(map(float, a)) for a in np.asarray(anchors, dtype=np.float64)]

    def num_rows(self, input_hw: Tuple[int, int]) -> int:
        """``A`` for an input of ``(H, W)`` pixels."""
        return num_anchor_rows(input_hw, self.strides, self._n)

    def _valid_rows(self, label: np.ndarray, has_weight: bool) -> np.ndarray:
        coords = label[:, :4]
        valid = np.all(np.isfinite(coords), axis=1) & np.all(coords >= 0, axis=1)
        with np.errstate(invalid="ignore"):
            valid &= (coords[:, 2] >= coords[:, 0]) & (coords[:, 3] >= coords[:, 1])
            valid &= np.isfinite(label[:, 4]) & (label[:, 4] >= 0)
            if has_weight:
                valid &= np.isfinite(label[:, -1])
        return valid

    def __call__(self, label: np.ndarray, input_hw: Tuple[int, int], has_weight: bool = False) -> Targets:
        return self.gen(label, input_hw, has_weight)

    def gen(self, label: np.ndarray, input_hw: Tuple[int, int], has_weight: bool = False) -> Targets:
        """Targets of one image.

        Parameters
        ----------
        label : array (M, C)
            ``[xmin, ymin, xmax, ymax, class_id, ...]`` in input pixels, ``C >= 5``; with
            ``has_weight`` the last column is the box's mixup weight (``C >= 6``).
        input_hw : (int, int)
            Network input ``(H, W)`` in pixels.
        has_weight : bool
            Whether the last label column is the per-box mixup weight (otherwise weight 1).

        Returns
        -------
        objectness (A, 1), center (A, 2), scale (A, 2), weights (A, 2), class (A, K), float32
            objectness is the box weight at positives and 0 elsewhere; center is the offset of the
            box center in its cell (0..1); scale is ``log(max(w, 1) / anchor_w)`` (and h); weights
            is ``2 - w * h / (W * H)`` at positives; class is the (smoothed) one-hot at positives and
            ``-1`` elsewhere.
        """
        label = np.asarray(label, dtype=np.float32)
        if label.ndim != 2 or label.shape[1] < (6 if has_weight else 5):
            raise ValueError("YOLOv3TargetGenerator.gen: label must be (M, C) with C >= %d "
                             "(xmin, ymin, xmax, ymax, class_id%s), got shape %s"
                             % (6 if has_weight else 5, ", ..., weight" if has_weight else "", label.shape))
        try:
            in_h, in_w = (int(v) for v in input_hw)
        except (TypeError, ValueError):
            raise ValueError("YOLOv3TargetGenerator.gen: input_hw must be (H, W) ints, got %r" % (input_hw,))
        if in_h < 1 or in_w < 1:
            raise ValueError("YOLOv3TargetGenerator.gen: input_hw must be positive, got %r" % (input_hw,))

        sizes = [feature_hw((in_h, in_w), s) for s in self._head_strides]
        cells = [h * w for h, w in sizes]
        num_rows = self._n * sum(cells)
        k = self.num_classes
        obj = np.zeros((num_rows, 1), np.float32)
        center = np.zeros((num_rows, 2), np.float32)
        scale = np.zeros((num_rows, 2), np.float32)
        weights = np.zeros((num_rows, 2), np.float32)
        cls = np.full((num_rows, k), -1, np.float32)

        rows = label[self._valid_rows(label, has_weight)]
        if len(rows) == 0:
            return obj, center, scale, weights, cls
        cid = rows[:, 4].astype(np.int64)
        if np.any(cid >= k) or np.any(rows[:, 4] != cid):
            bad = rows[:, 4][(cid >= k) | (rows[:, 4] != cid)][0]
            raise ValueError("YOLOv3TargetGenerator.gen: class ids must be integers in [0, %d), got %r"
                             % (k, float(bad)))
        box_w = rows[:, 2] - rows[:, 0]
        box_h = rows[:, 3] - rows[:, 1]
        cx = rows[:, 0] + box_w * np.float32(0.5)
        cy = rows[:, 1] + box_h * np.float32(0.5)

        # IoU of origin-centered shapes: intersection is min(w) * min(h).
        aw, ah = self._flat_anchors[:, 0], self._flat_anchors[:, 1]
        inter = np.minimum(box_w[:, None], aw) * np.minimum(box_h[:, None], ah)
        union = (aw * ah)[None, :] + (box_w * box_h)[:, None] - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, inter / union, 0.0)
        match = np.argmax(iou, axis=1)                                   # (G,)
        head = match // self._n

        fh = np.array([s[0] for s in sizes])[head]
        fw = np.array([s[1] for s in sizes])[head]
        head_start = self._n * np.concatenate([[0], np.cumsum(cells)[:-1]])[head]
        gx = cx.astype(np.float64) / in_w * fw
        gy = cy.astype(np.float64) / in_h * fh
        loc_x = np.minimum(gx.astype(np.int64), fw - 1)
        loc_y = np.minimum(gy.astype(np.int64), fh - 1)
        row = head_start + (loc_y * fw + loc_x) * self._n + match % self._n

        # Later boxes win on the same row: keep each row's last occurrence.
        _, last_in_reversed = np.unique(row[::-1], return_index=True)
        keep = np.sort(len(row) - 1 - last_in_reversed)
        row, match, cid = row[keep], match[keep], cid[keep]

        center[row, 0] = np.minimum(gx[keep] - loc_x[keep], 1.0)
        center[row, 1] = np.minimum(gy[keep] - loc_y[keep], 1.0)
        anchor = self._flat_anchors[match].astype(np.float64)
        scale[row, 0] = np.log(np.maximum(box_w[keep], 1.0) / anchor[:, 0])
        scale[row, 1] = np.log(np.maximum(box_h[keep], 1.0) / anchor[:, 1])
        area_frac = box_w[keep].astype(np.float64) * box_h[keep] / in_w / in_h
        weights[row, :] = (2.0 - area_frac)[:, None]
        obj[row, 0] = rows[keep, -1] if has_weight else 1.0
        if self.label_smooth:
            eps = smoothing_epsilon(k)
            cls[row, :] = eps
            cls[row, cid] = 1.0 - eps
        else:
            cls[row, :] = 0.0
            cls[row, cid] = 1.0
        return obj, center, scale, weights, cls


def pad_gt_boxes(labels: Sequence[np.ndarray], min_rows: int = 1) -> np.ndarray:
    """Stack the ``[:, :4]`` boxes of several labels into ``(B, M, 4)`` float32 padded with ``-1``.

    ``M`` is the largest number of rows (at least ``min_rows``, so the net's ignore-IoU is defined
    for images without boxes). This is the ``gt_boxes`` input of the training call.
    """
    m = max([min_rows] + [len(lab) for lab in labels])
    out = np.full((len(labels), m, 4), -1, np.float32)
    for i, lab in enumerate(labels):
        lab = np.asarray(lab, dtype=np.float32)
        if len(lab):
            if lab.ndim != 2 or lab.shape[1] < 4:
                raise ValueError("pad_gt_boxes: label %d must be (N, >=4), got shape %s" % (i, lab.shape))
            out[i, :len(lab)] = lab[:, :4]
    return out
