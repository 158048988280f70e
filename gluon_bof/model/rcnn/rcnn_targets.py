"""R-CNN training-time RoI sampling and target encoding (inside the network, on the device).

The proposals exist only after the RPN forward pass, so this runs in the graph, without gradient.

Sampling per image (GluonCV's ``RCNNTargetSampler``, reproduced draw for draw so that, with the same
MXNet seed, both pick the same RoIs):

* candidates = the ``P`` proposals plus the ``M`` (padded) gt boxes; padded gts (all -1) and invalid
  proposals (score -1) are ignored; IoU with the gts decides positive (``>= pos_iou``) or negative;
* candidates are shuffled by the argsort of ``P + max_num_gt`` uniform draws;
* the first ``max_pos = round(num_sample * pos_ratio)`` of the shuffled list, ordered
  positive > negative > ignored, are kept; the remaining ``num_sample - max_pos`` are taken, ordered
  negative > positive > ignored, from the shuffled list *after its first max_pos entries*. So when
  negatives run short, positives fill up (possibly repeating one already kept): a GluonCV quirk
  that we keep for parity, documented in docs/faster_rcnn.md;
* the kept RoIs are sorted by area (ascending).

Targets: class ``gt_label + 1`` for positives, 0 for negatives, -1 for ignored; class-specific box
offsets (stds 0.1, 0.1, 0.2, 0.2) for the first ``max_pos`` positives only (``indices``).
"""
from mxnet import autograd, gluon


class RCNNSampler(gluon.HybridBlock):
    """Choose ``num_sample`` RoIs per image among proposals and gt boxes.

    Inputs: ``rois (B, P, 4)``, ``scores (B, P, 1)`` (-1 = invalid), ``gt_boxes (B, M, 4)`` padded with -1.
    Outputs: ``rois (B, S, 4)``, ``samples (B, S)`` (+1 pos, -1 neg, 0 ignore), ``matches (B, S)``
    (index of the best gt).
    """

    def __init__(self, num_image: int, num_proposal: int, num_sample: int, pos_iou: float,
                 pos_ratio: float, max_num_gt: int, **kwargs):
        super().__init__(**kwargs)
        self._num_image = int(num_image)
        self._num_proposal = int(num_proposal)
        self._num_sample = int(num_sample)
        self.max_pos = int(round(num_sample * pos_ratio))
        self._pos_iou = float(pos_iou)
        self._max_num_gt = int(max_num_gt)

    def hybrid_forward(self, F, rois, scores, gt_boxes):
        with autograd.pause():
            outputs = [[], [], []]
            for i in range(self._num_image):
                roi = F.squeeze(F.slice_axis(rois, axis=0, begin=i, end=i + 1), axis=0)
                score = F.squeeze(F.slice_axis(scores, axis=0, begin=i, end=i + 1), axis=0)
                gt = F.squeeze(F.slice_axis(gt_boxes, axis=0, begin=i, end=i + 1), axis=0)
                for out, value in zip(outputs, self._sample_one(F, roi, score, gt)):
                    out.append(value)
            return tuple(F.stack(*out, axis=0) for out in outputs)

    def _sample_one(self, F, roi, score, gt):
        gt_valid = F.sign(F.sum(gt, axis=-1, keepdims=True) + 1)       # -1 for (-1,-1,-1,-1) padding
        cand = F.concat(roi, gt, dim=0)                                 # (P+M, 4)
        cand_score = F.concat(score, gt_valid, dim=0).squeeze(axis=-1)
        ious = F.contrib.box_iou(cand, gt, format="corner")             # (P+M, M)
        best_iou = ious.max(axis=-1)
        match = ious.argmax(axis=-1)
        # codes: 3 positive, 2 negative, 0 ignored
        code = F.where(cand_score < 0, F.zeros_like(best_iou), F.ones_like(best_iou) * 2)
        code = F.where(best_iou >= self._pos_iou, F.ones_like(code) * 3, code)
        draws = F.random.uniform(0, 1, shape=(self._num_proposal + self._max_num_gt,))
        perm = F.argsort(F.slice_like(draws, match))
        code = F.take(code, perm)
        match = F.take(match, perm)
        # first max_pos: positives first
        first = F.slice_axis(F.argsort(code, is_ascend=False), axis=0, begin=0, end=self.max_pos)
        pos_idx = F.take(perm, first)
        pos_code = F.take(code, first)
        pos_match = F.take(match, first)
        # the rest, from the shuffled list after max_pos: negatives first (code 2 -> 4)
        rest_perm = F.slice_axis(perm, axis=0, begin=self.max_pos, end=None)
        rest_code = F.slice_axis(code, axis=0, begin=self.max_pos, end=None)
        rest_match = F.slice_axis(match, axis=0, begin=self.max_pos, end=None)
        rest_code = F.where(rest_code == 2, F.ones_like(rest_code) * 4, rest_code)
        second = F.slice_axis(F.argsort(rest_code, is_ascend=False), axis=0, begin=0,
                              end=self._num_sample - self.max_pos)
        neg_idx = F.take(rest_perm, second)
        neg_code = F.take(rest_code, second)
        neg_match = F.take(rest_match, second)
        index = F.concat(pos_idx, neg_idx, dim=0)
        code = F.concat(pos_code, neg_code, dim=0)
        sample = F.where(code == 3, F.ones_like(code),
                         F.where((code == 2) + (code == 4), -F.ones_like(code), F.zeros_like(code)))
        matches = F.concat(pos_match, neg_match, dim=0)
        chosen = F.take(cand, index)
        x1, y1, x2, y2 = F.split(chosen, axis=-1, num_outputs=4, squeeze_axis=True)
        by_area = F.argsort((x2 - x1) * (y2 - y1))
        return F.take(chosen, by_area), F.take(sample, by_area), F.take(matches, by_area)


def encode_centre_offsets(F, rois, refs, stds):
    """Offsets ``(..., 4)`` taking corner boxes ``rois`` to ``refs`` (same shape), divided by ``stds``."""
    r = F.split(rois, axis=-1, num_outputs=4)
    g = F.split(refs, axis=-1, num_outputs=4)
    rw, rh = r[2] - r[0], r[3] - r[1]
    gw, gh = g[2] - g[0], g[3] - g[1]
    tx = ((g[0] + 0.5 * gw) - (r[0] + 0.5 * rw)) / rw / stds[0]
    ty = ((g[1] + 0.5 * gh) - (r[1] + 0.5 * rh)) / rh / stds[1]
    tw = F.log(gw / rw) / stds[2]
    th = F.log(gh / rh) / stds[3]
    return F.concat(tx, ty, tw, th, dim=-1)


class RCNNTargetEncoder(gluon.HybridBlock):
    """Classification and class-specific box targets of the sampled RoIs.

    Inputs: ``rois (B, S, 4)``, ``samples (B, S)``, ``matches (B, S)``, ``gt_labels (B, M, 1)``,
    ``gt_boxes (B, M, 4)``.
    Outputs: ``cls_targets (B, S)`` in ``[-1, C]``; ``box_targets (B, max_pos, C, 4)``;
    ``box_masks (B, max_pos, C, 4)`` (1 only on the gt's class of a positive); ``indices
    (B, max_pos)``, the RoIs (positives first) the box rows belong to.
    """

    def __init__(self, num_class: int, max_pos: int, num_image: int,
                 stds=(0.1, 0.1, 0.2, 0.2), **kwargs):
        super().__init__(**kwargs)
        self._num_class = int(num_class)
        self._max_pos = int(max_pos)
        self._num_image = int(num_image)
        self._stds = tuple(float(s) for s in stds)

    def hybrid_forward(self, F, rois, samples, matches, gt_labels, gt_boxes):
        with autograd.pause():
            labels = gt_labels.reshape((0, -1))                                      # (B, M)
            matched_label = F.pick(F.broadcast_like(labels.expand_dims(1), matches, lhs_axes=1,
                                                    rhs_axes=1), matches, axis=2)   # (B, S)
            cls_targets = F.where(samples > 0.5, matched_label + 1, -F.ones_like(matched_label))
            cls_targets = F.where(samples < -0.5, F.zeros_like(cls_targets), cls_targets)
            positive = samples > 0.5                                                  # (B, S)
            indices = F.slice_axis(F.argsort(positive, axis=1, is_ascend=False), axis=1, begin=0,
                                   end=self._max_pos)                                 # (B, P)
            targets, masks, labels_sel = [], [], []
            for i in range(self._num_image):
                def one(t, i=i):
                    return F.squeeze(F.slice_axis(t, axis=0, begin=i, end=i + 1), axis=0)
                ind = one(indices)
                roi = F.take(one(rois), ind)                                          # (P, 4)
                match = F.take(one(matches), ind)
                ref = F.take(one(gt_boxes), match)                                    # (P, 4)
                pos = F.take(one(positive), ind)                                      # (P,)
                code = encode_centre_offsets(F, roi, ref, self._stds)
                code = F.where(F.broadcast_like(pos.expand_dims(1), code), code, F.zeros_like(code))
                targets.append(code)
                masks.append(pos)
                labels_sel.append(F.take(one(matched_label), ind))
            targets = F.stack(*targets, axis=0)                                       # (B, P, 4)
            masks = F.stack(*masks, axis=0)                                           # (B, P)
            labels_sel = F.stack(*labels_sel, axis=0)                                 # (B, P)
            same = F.broadcast_equal(labels_sel.expand_dims(2),
                                     F.arange(self._num_class).reshape((1, 1, -1)))   # (B, P, C)
            class_mask = F.broadcast_mul(same, masks.expand_dims(2))                  # (B, P, C)
            box_targets = F.broadcast_axes(targets.expand_dims(2), axis=2, size=self._num_class)
            box_masks = F.broadcast_axes(class_mask.expand_dims(3), axis=3, size=4)
        return cls_targets, box_targets, box_masks, indices
