"""RPN training targets, computed in numpy inside the data workers (as GluonCV's prefetching does).

Rules (GluonCV's ``RPNTargetGenerator(num_sample=256, pos_iou=0.7, neg_iou=0.3, pos_ratio=0.5)``):

1. Anchors not fully inside the image (``xmin < 0``, ``ymin < 0``, ``xmax >= W`` or ``ymax >= H``)
   are ignored (GluonCV sets their IoU row to -1). If *no* anchor is inside, GluonCV makes every
   anchor a positive (all rows tie at -1); we leave them all ignored.
2. Positive: an anchor whose IoU is within ``eps`` (float32 spacing of 1) of the best IoU of some gt,
   or whose best IoU is ``>= pos_iou``.
3. Negative: best IoU in ``[0, neg_iou)``. This is applied *after* rule 2, so a gt's best anchor with
   IoU below ``neg_iou`` ends up negative (GluonCV's order, kept for parity).
4. At most ``round(num_sample * pos_ratio)`` positives and ``num_sample - #positives`` negatives are
   kept; the surplus is dropped uniformly at random with the caller's ``rng`` (GluonCV uses the global
   ``np.random``).

Per-box mixup weights: a positive anchor takes the weight of the gt it regresses to (its argmax-IoU
gt); negatives and ignored anchors get 1.0 (a negative belongs to no box; the loss masks ignored ones).
"""
from typing import Optional, Sequence, Tuple

import numpy as np

from .anchors import feature_size
from .box_ops import box_iou, encode_boxes

_EPS = float(np.spacing(np.float32(1.0)))


class RPNTargetGenerator:
    """Sample anchors and encode RPN targets for one image.

    Parameters
    ----------
    num_sample : int
        Anchors sampled per image (positives + negatives).
    pos_iou, neg_iou : float
        IoU thresholds for positives (``>=``) and negatives (``<``).
    pos_ratio : float
        Maximum fraction of positives among the samples.
    stds : four floats
        Regression targets are divided by these.
    """

    def __init__(self, num_sample: int = 256, pos_iou: float = 0.7, neg_iou: float = 0.3,
                 pos_ratio: float = 0.5, stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0)):
        if not 0 <= neg_iou <= pos_iou <= 1:
            raise ValueError("RPNTargetGenerator: need 0 <= neg_iou <= pos_iou <= 1, got %r, %r"
                             % (neg_iou, pos_iou))
        if num_sample <= 0 or not 0 < pos_ratio <= 1:
            raise ValueError("RPNTargetGenerator: num_sample must be > 0 and pos_ratio in (0, 1], "
                             "got %r, %r" % (num_sample, pos_ratio))
        self.num_sample = int(num_sample)
        self.max_pos = int(round(num_sample * pos_ratio))
        self.pos_iou = float(pos_iou)
        self.neg_iou = float(neg_iou)
        self.stds = tuple(float(s) for s in stds)

    def __call__(self, anchors: np.ndarray, gt_boxes: np.ndarray, image_size: Tuple[int, int],
                 rng: np.random.Generator, gt_weights: Optional[np.ndarray] = None
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Targets for ``anchors (N, 4)`` given ``gt_boxes (M, 4)`` of an image of ``(height, width)``.

        Returns
        -------
        cls_target : (N,) float32, 1 positive, 0 negative, -1 ignored.
        box_target : (N, 4) float32, encoded offsets of positives, 0 elsewhere.
        box_mask : (N, 4) float32, 1 for positives, 0 elsewhere.
        weight : (N,) float32, per-anchor loss weight (the matched gt's mixup weight for positives).
        """
        anchors = np.asarray(anchors, dtype=np.float32).reshape(-1, 4)
        gt_boxes = np.asarray(gt_boxes, dtype=np.float32).reshape(-1, 4)
        num_anchor = anchors.shape[0]
        if gt_weights is None:
            gt_weights = np.ones(gt_boxes.shape[0], dtype=np.float32)
        gt_weights = np.asarray(gt_weights, dtype=np.float32).reshape(-1)
        if gt_weights.shape[0] != gt_boxes.shape[0]:
            raise ValueError("RPNTargetGenerator: gt_weights has %d entries for %d gt boxes"
                             % (gt_weights.shape[0], gt_boxes.shape[0]))
        if gt_boxes.shape[0] == 0:
            return self._no_gt(anchors, image_size, rng)
        height, width = image_size
        inside = np.flatnonzero((anchors[:, 0] >= 0) & (anchors[:, 1] >= 0)
                                & (anchors[:, 2] < width) & (anchors[:, 3] < height))
        # Outside anchors have IoU -1 (GluonCV); only inside rows are computed.
        ious = box_iou(anchors[inside], gt_boxes)                              # (n_inside, M)
        matches = np.zeros(num_anchor, dtype=np.int64)
        best_iou = np.full(num_anchor, -1.0, dtype=np.float32)
        samples = np.zeros(num_anchor, dtype=np.float32)
        if inside.size:
            matches[inside] = ious.argmax(axis=1)
            best_iou[inside] = ious.max(axis=1)
            is_best_of_gt = ((ious + _EPS) > ious.max(axis=0, keepdims=True)).any(axis=1)
            samples[inside[is_best_of_gt]] = 1.0
        samples[best_iou >= self.pos_iou] = 1.0
        samples[(best_iou >= 0) & (best_iou < self.neg_iou)] = -1.0
        self._subsample(samples, rng)

        positive = samples > 0
        box_target = np.zeros((num_anchor, 4), dtype=np.float32)
        box_target[positive] = encode_boxes(anchors[positive], gt_boxes[matches[positive]],
                                            self.stds)
        box_mask = np.repeat(positive[:, None], 4, axis=1).astype(np.float32)
        cls_target = np.where(positive, 1.0, np.where(samples < 0, 0.0, -1.0)).astype(np.float32)
        weight = np.where(positive, gt_weights[matches], 1.0).astype(np.float32)
        return cls_target, box_target, box_mask, weight

    def _subsample(self, samples: np.ndarray, rng: np.random.Generator) -> None:
        """Drop surplus positives, then surplus negatives, in place (0 = ignored)."""
        pos = np.flatnonzero(samples > 0)
        if pos.size > self.max_pos:
            samples[rng.choice(pos, size=pos.size - self.max_pos, replace=False)] = 0.0
        max_neg = self.num_sample - min(pos.size, self.max_pos)
        neg = np.flatnonzero(samples < 0)
        if neg.size > max_neg:
            samples[rng.choice(neg, size=neg.size - max_neg, replace=False)] = 0.0

    def _no_gt(self, anchors, image_size, rng):
        """An image without boxes: every inside anchor is a negative candidate."""
        height, width = image_size
        inside = ((anchors[:, 0] >= 0) & (anchors[:, 1] >= 0)
                  & (anchors[:, 2] < width) & (anchors[:, 3] < height))
        samples = np.where(inside, -1.0, 0.0).astype(np.float32)
        self._subsample(samples, rng)
        num_anchor = anchors.shape[0]
        cls_target = np.where(samples < 0, 0.0, -1.0).astype(np.float32)
        zeros = np.zeros((num_anchor, 4), dtype=np.float32)
        return cls_target, zeros, zeros.copy(), np.ones(num_anchor, dtype=np.float32)


def pad_rpn_targets(targets: Sequence[Tuple[np.ndarray, ...]]) -> Tuple[np.ndarray, ...]:
    """Batch per-image RPN targets laid out as ``(h, w, A)`` / ``(h, w, 4A)`` into flat arrays.

    Images of a batch are padded to a common size, so the network sees the largest feature map; the
    targets of smaller images are padded spatially with ignore (-1) / zeros / weight 1 and flattened
    in the network's anchor order to ``(B, H*W*A)``, ``(B, H*W*A, 4)``, ``(B, H*W*A, 4)``,
    ``(B, H*W*A)``.
    """
    max_h = max(t[0].shape[0] for t in targets)
    max_w = max(t[0].shape[1] for t in targets)
    out = [[], [], [], []]
    for cls_t, box_t, mask_t, weight_t in targets:
        h, w, depth = cls_t.shape
        for k, (arr, fill, last) in enumerate(((cls_t, -1.0, depth), (box_t, 0.0, 4 * depth),
                                               (mask_t, 0.0, 4 * depth), (weight_t, 1.0, depth))):
            padded = np.full((max_h, max_w, last), fill, dtype=np.float32)
            padded[:h, :w] = arr.reshape(h, w, last)
            out[k].append(padded.reshape((-1, 4) if k in (1, 2) else (-1,)))
    return tuple(np.stack(x, axis=0) for x in out)


class RPNTargetTransform:
    """Data-worker step: RPN targets of a transformed training image, laid out ``(h, w, A)``.

    Picklable and numpy-only (no network in the workers): built from the model's anchor table.

    Parameters
    ----------
    anchors : ``(1, 1, H_alloc, W_alloc, 4A)`` array, e.g. ``net.rpn.anchor_generator.anchors``.
    generator : RPNTargetGenerator, GluonCV's defaults when None.
    num_halvings : int, stride-2 layers before the RPN (4 for stride 16).
    """

    def __init__(self, anchors: np.ndarray, generator: Optional[RPNTargetGenerator] = None,
                 num_halvings: int = 4):
        anchors = np.asarray(anchors, dtype=np.float32)
        if anchors.ndim != 5 or anchors.shape[-1] % 4:
            raise ValueError("RPNTargetTransform: anchors must have shape (1, 1, H, W, 4A), got %s"
                             % (anchors.shape,))
        self.anchors = anchors
        self.generator = generator or RPNTargetGenerator()
        self.num_halvings = int(num_halvings)

    @classmethod
    def from_net(cls, net, generator: Optional[RPNTargetGenerator] = None) -> "RPNTargetTransform":
        """Use the anchor table of a :class:`FasterRCNN` (stride 16)."""
        return cls(net.rpn.anchor_generator.anchors.data().asnumpy(), generator)

    def __call__(self, image_hw: Tuple[int, int], label: np.ndarray, rng: np.random.Generator
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Targets for an input of ``image_hw`` and a label ``(N, 6)`` or ``(N, 7)``.

        The mixup weight is the 7th (last) column when present, else 1. Returns ``cls (h, w, A)``,
        ``box (h, w, 4A)``, ``mask (h, w, 4A)``, ``weight (h, w, A)``; batch them with
        :func:`pad_rpn_targets`.
        """
        height, width = int(image_hw[0]), int(image_hw[1])
        fh, fw = feature_size(height, self.num_halvings), feature_size(width, self.num_halvings)
        if fh > self.anchors.shape[2] or fw > self.anchors.shape[3]:
            raise ValueError("RPNTargetTransform: a %dx%d input gives a %dx%d feature map, larger than "
                             "the anchor table %dx%d" % (height, width, fh, fw, *self.anchors.shape[2:4]))
        label = np.asarray(label, dtype=np.float32).reshape(len(label), -1)
        if label.shape[0] and label.shape[1] < 5:
            raise ValueError("RPNTargetTransform: label must be (N, 6+) [x1, y1, x2, y2, class, "
                             "difficult(, weight)], got %s" % (label.shape,))
        weights = label[:, 6] if label.shape[1] >= 7 else None
        anchors = self.anchors[0, 0, :fh, :fw, :].reshape(-1, 4)
        cls_t, box_t, mask_t, w_t = self.generator(anchors, label[:, :4], (height, width), rng,
                                                   gt_weights=weights)
        return (cls_t.reshape(fh, fw, -1), box_t.reshape(fh, fw, -1), mask_t.reshape(fh, fw, -1),
                w_t.reshape(fh, fw, -1))
