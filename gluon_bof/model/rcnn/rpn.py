"""Region Proposal Network: a 3x3 conv head, objectness and box offsets per anchor, and proposals.

Proposals (no gradient): decode the offsets onto the anchors (stds 1, optional log-size clip), clip to
the image (``[0, W] x [0, H]``, GluonCV's bound), mark boxes narrower or shorter than ``min_size``
(``x2 - x1 + 1``) invalid (score and box -1), then class-agnostic NMS over the ``pre_nms`` best and keep
the first ``post_nms``. Train and test use their own pre/post top-k.
"""
from typing import Optional, Sequence, Tuple

import mxnet as mx
from mxnet import autograd, gluon
from mxnet.gluon import nn

from .anchors import RPNAnchorGenerator


def clip_boxes_to_image(F, boxes, image):
    """Clip corner boxes ``(B, N, 4)`` to ``[0, W] x [0, H]`` of ``image (B, C, H, W)``."""
    hw = F.shape_array(image).slice_axis(axis=0, begin=2, end=4)                  # (H, W)
    limit = F.cast(F.tile(F.reverse(hw, axis=0), reps=(2,)), dtype="float32")      # (W, H, W, H)
    return F.broadcast_minimum(F.maximum(boxes, 0.0), limit.reshape((1, 1, 4)))


class RPN(gluon.HybridBlock):
    """Region proposal network over one feature map of stride ``stride``.

    Parameter names (``anchor_generator.anchors``, ``conv1.0``, ``score``, ``loc``) equal GluonCV's.

    Returns, in training: ``(scores (B, post, 1), rois (B, post, 4), raw_scores (B, N, 1),
    raw_offsets (B, N, 4), anchors (1, N, 4))``; at inference ``(scores, rois)``. ``N = h * w * A``.
    """

    def __init__(self, channels: int, stride: int, base_size: int, scales: Sequence[float],
                 ratios: Sequence[float], alloc_size: Tuple[int, int], clip: Optional[float],
                 nms_thresh: float, train_pre_nms: int, train_post_nms: int, test_pre_nms: int,
                 test_post_nms: int, min_size: float, **kwargs):
        super().__init__(**kwargs)
        self._clip = -1.0 if clip is None else float(clip)
        self._nms_thresh = float(nms_thresh)
        self._min_size = float(min_size)
        self._train = (max(1, train_pre_nms), max(1, min(train_post_nms, train_pre_nms)))
        self._test = (max(1, test_pre_nms), max(1, min(test_post_nms, test_pre_nms)))
        init = mx.init.Normal(0.01)
        with self.name_scope():
            self.anchor_generator = RPNAnchorGenerator(stride, base_size, ratios, scales, alloc_size)
            depth = self.anchor_generator.num_depth
            self.conv1 = nn.HybridSequential()
            self.conv1.add(nn.Conv2D(channels, 3, 1, 1, weight_initializer=init),
                           nn.Activation("relu"))
            self.score = nn.Conv2D(depth, 1, 1, 0, weight_initializer=init)
            self.loc = nn.Conv2D(depth * 4, 1, 1, 0, weight_initializer=init)

    @property
    def test_post_nms(self) -> int:
        return self._test[1]

    def hybrid_forward(self, F, image, feat):
        pre_nms, post_nms = self._train if autograd.is_training() else self._test
        anchors = self.anchor_generator(feat)                                       # (1, N, 4)
        x = self.conv1(feat)
        raw_scores = self.score(x).transpose((0, 2, 3, 1)).reshape((0, -1, 1))      # (B, N, 1)
        raw_offsets = self.loc(x).transpose((0, 2, 3, 1)).reshape((0, -1, 4))       # (B, N, 4)
        if isinstance(feat, mx.nd.NDArray) and raw_scores.shape[1] < post_nms:
            raise ValueError(
                "RPN: the %dx%d feature map has %d anchors, fewer than the %d proposals to keep "
                "(post_nms); use a larger input or a smaller rpn_%s_post_nms"
                % (feat.shape[2], feat.shape[3], raw_scores.shape[1], post_nms,
                   "train" if autograd.is_training() else "test"))
        with autograd.pause():
            scores = F.sigmoid(F.stop_gradient(raw_scores))
            rois = F.contrib.box_decode(F.stop_gradient(raw_offsets), anchors, 1.0, 1.0, 1.0, 1.0,
                                        clip=self._clip, format="corner")
            rois = clip_boxes_to_image(F, rois, image)
            x1, y1, x2, y2 = F.split(rois, axis=-1, num_outputs=4)
            invalid = ((x2 - x1 + 1.0) < self._min_size) + ((y2 - y1 + 1.0) < self._min_size)
            scores = F.where(invalid, F.ones_like(invalid) * -1, scores)
            invalid4 = F.broadcast_axes(invalid, axis=2, size=4)
            rois = F.where(invalid4, F.ones_like(invalid4) * -1, rois)
            kept = F.contrib.box_nms(F.concat(scores, rois, dim=-1), overlap_thresh=self._nms_thresh,
                                     topk=pre_nms, coord_start=1, score_index=0, id_index=-1,
                                     force_suppress=True)
            kept = F.slice_axis(kept, axis=1, begin=0, end=post_nms)
            prop_scores = F.slice_axis(kept, axis=-1, begin=0, end=1)
            prop_rois = F.slice_axis(kept, axis=-1, begin=1, end=None)
        if autograd.is_training():
            return prop_scores, prop_rois, raw_scores, raw_offsets, anchors
        return prop_scores, prop_rois
