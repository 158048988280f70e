"""Faster R-CNN (single feature map, RoIAlign), parameter-compatible with GluonCV's ``FasterRCNN``.

Structure and saved-parameter names: ``features`` (backbone up to stride 16), ``top_features`` (the
last stage, run on every RoI), ``rpn``, ``class_predictor`` (C + 1 logits), ``box_predictor``
(4 C offsets). The R-CNN sampler and target encoder hold no parameters.

Training call (inside ``autograd.record()``)::

    (cls_pred, box_pred, rois, samples, matches, rpn_score, rpn_box, anchors,
     cls_targets, box_targets, box_masks, indices) = net(x, gt_boxes, gt_labels)

with ``x (B, 3, H, W)``, ``gt_boxes (B, M, 4)`` and ``gt_labels (B, M, 1)`` padded with -1, ``B`` equal
to ``per_device_batch_size``. Shapes: ``cls_pred (B, S, C+1)`` logits of the ``S = num_sample`` RoIs;
``box_pred (B, P, C, 4)`` for the ``P = max_pos`` RoIs listed in ``indices (B, P)``; ``rois (B, S, 4)``;
``samples``/``matches (B, S)``; ``rpn_score (B, N, 1)`` logits and ``rpn_box (B, N, 4)`` offsets of the
``N`` anchors; ``anchors (1, N, 4)``; targets as in :class:`RCNNTargetEncoder`. Feed them with the
data-worker RPN targets to :func:`gluon_bof.model.rcnn.losses.faster_rcnn_losses`.

Inference: ``net(x)`` returns ``(ids (B, K, 1), scores (B, K, 1), bboxes (B, K, 4))``, ``K = C * R``
(``R`` = RPN test post-NMS proposals), per-class NMS applied and suppressed rows set to -1, in input
pixel coordinates (not clipped; the caller clips, as GluonCV's script does).
"""
from typing import Optional, Sequence

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet.gluon import nn

from .anchors import feature_size
from .rcnn_targets import RCNNSampler, RCNNTargetEncoder
from .rpn import RPN


class FasterRCNN(gluon.HybridBlock):
    """Faster R-CNN detector. Defaults are GluonCV's ``faster_rcnn_resnet50_v1b_voc`` settings.

    Parameters
    ----------
    features, top_features : HybridBlock
        Backbone up to the RoI feature map (stride ``stride``) and the per-RoI head.
    classes : sequence of str
        Foreground class names, ``C = len(classes)``.
    short, max_size : int
        Image resize used by the presets (kept on the net, as GluonCV does).
    train_patterns : str or None
        Regex of trainable parameter names (``collect_train_params``).
    nms_thresh, nms_topk, post_nms : final per-class NMS settings (``post_nms`` is stored only, as in
        GluonCV).
    roi_size, stride, clip : RoIAlign output, feature stride, log-size clip of box decoding.
    rpn_channel, base_size, scales, ratios, alloc_size : RPN head and anchors.
    rpn_nms_thresh, rpn_train_pre_nms, rpn_train_post_nms, rpn_test_pre_nms, rpn_test_post_nms,
    rpn_min_size : proposal settings.
    per_device_batch_size : int, images per device in training.
    num_sample, pos_iou_thresh, pos_ratio, max_num_gt : R-CNN sampler.
    """

    def __init__(self, features: gluon.HybridBlock, top_features: gluon.HybridBlock,
                 classes: Sequence[str], short=600, max_size=1000, train_patterns: Optional[str] = None,
                 nms_thresh=0.3, nms_topk=400, post_nms=100, roi_size=(14, 14), stride=16,
                 clip: Optional[float] = None, rpn_channel=1024, base_size=16,
                 scales=(2, 4, 8, 16, 32), ratios=(0.5, 1, 2), alloc_size=(128, 128),
                 rpn_nms_thresh=0.7, rpn_train_pre_nms=12000, rpn_train_post_nms=2000,
                 rpn_test_pre_nms=6000, rpn_test_post_nms=300, rpn_min_size=16,
                 per_device_batch_size=1, num_sample=128, pos_iou_thresh=0.5, pos_ratio=0.25,
                 max_num_gt=300, force_nms=False, **kwargs):
        super().__init__(**kwargs)
        classes = list(classes)
        if not classes:
            raise ValueError("FasterRCNN: `classes` is empty; give the foreground class names")
        if len(roi_size) != 2:
            raise ValueError("FasterRCNN: roi_size must be (height, width), got %r" % (roi_size,))
        self.classes = classes
        self.num_class = len(classes)
        self.short, self.max_size = short, max_size
        self.train_patterns = train_patterns
        self.nms_thresh, self.nms_topk, self.post_nms = nms_thresh, nms_topk, post_nms
        self.force_nms = force_nms
        self.stride = stride
        self.ashape = alloc_size[0]
        self._roi_size = tuple(roi_size)
        self._clip = -1.0 if clip is None else float(clip)
        self._batch_size = int(per_device_batch_size)
        self._num_sample = int(num_sample)
        self._max_num_gt = int(max_num_gt)
        rpn_train_post_nms = min(rpn_train_post_nms, rpn_train_pre_nms)
        with self.name_scope():
            self.features = features
            self.top_features = top_features
            self.class_predictor = nn.Dense(self.num_class + 1,
                                            weight_initializer=mx.init.Normal(0.01))
            self.box_predictor = nn.Dense(self.num_class * 4,
                                          weight_initializer=mx.init.Normal(0.001))
            self.rpn = RPN(rpn_channel, stride, base_size, scales, ratios, alloc_size, clip,
                           rpn_nms_thresh, rpn_train_pre_nms, rpn_train_post_nms, rpn_test_pre_nms,
                           rpn_test_post_nms, rpn_min_size)
            self.sampler = RCNNSampler(self._batch_size, rpn_train_post_nms, num_sample,
                                       pos_iou_thresh, pos_ratio, max_num_gt)
            self.target_encoder = RCNNTargetEncoder(self.num_class, self.sampler.max_pos,
                                                    self._batch_size)

    # -- GluonCV-compatible helpers --------------------------------------------------------------
    def collect_train_params(self, select: Optional[str] = None) -> gluon.ParameterDict:
        """Parameters to optimise: ``train_patterns`` (frozen conv1/layer1/BN by default)."""
        return self.collect_params(select if select is not None else self.train_patterns)

    def set_nms(self, nms_thresh=0.3, nms_topk=400, force_nms=False, post_nms=100) -> None:
        """Change the final NMS (re-hybridize afterwards)."""
        self._clear_cached_op()
        self.nms_thresh, self.nms_topk = nms_thresh, nms_topk
        self.force_nms, self.post_nms = force_nms, post_nms

    def load_parameters(self, filename, ctx=None, allow_missing=False, ignore_extra=False,
                        cast_dtype=False, dtype_source="current"):
        """Load a ``.params`` file saved by this class or by GluonCV's ``FasterRCNN``.

        GluonCV registers its R-CNN target encoder (two constants, ``_target_generator._box_encoder.
        means/stds``) at the first training forward, so files it saves after training carry those
        keys; they are skipped here. Shape mismatches raise a ValueError naming file and parameter.
        """
        saved = mx.nd.load(filename)
        own = self._collect_params_with_prefix()
        extra = [k for k in saved if k not in own]
        if extra and not ignore_extra and all(k.startswith("_target_generator.") for k in extra):
            ignore_extra = True
        for key, arr in saved.items():
            shape = own[key].shape if key in own else None
            if shape and all(d > 0 for d in shape) and tuple(shape) != arr.shape:
                raise ValueError("%s: parameter %r has shape %s in the file but %s in this model "
                                 "(%d classes); build the model the file was trained with"
                                 % (filename, key, arr.shape, tuple(shape), self.num_class))
        super().load_parameters(filename, ctx=ctx, allow_missing=allow_missing,
                                ignore_extra=ignore_extra, cast_dtype=cast_dtype,
                                dtype_source=dtype_source)

    def anchors_for_image(self, height: int, width: int) -> np.ndarray:
        """Numpy anchors ``(h * w * A, 4)`` of an input of ``height x width`` (for data workers)."""
        return self.rpn.anchor_generator.anchors_for_feature(feature_size(height),
                                                             feature_size(width))

    # -- forward ---------------------------------------------------------------------------------
    def forward(self, x, *args):
        """Drop the cached graph when switching between ``net(x)`` and ``net(x, gt_box, gt_label)``.

        A hybridized MXNet block refuses a call whose argument structure differs from the cached
        one, so without this a training net could not be validated in place.
        """
        arity = len(args)
        if getattr(self, "_call_arity", arity) != arity:
            self._clear_cached_op()
        self._call_arity = arity
        return super().forward(x, *args)

    def hybrid_forward(self, F, x, gt_box=None, gt_label=None):
        feat = self.features(x)
        training = autograd.is_training()
        if training:
            if gt_box is None or gt_label is None:
                raise ValueError("FasterRCNN: training forward needs net(x, gt_boxes, gt_labels)")
            if isinstance(x, mx.nd.NDArray) and x.shape[0] != self._batch_size:
                raise ValueError("FasterRCNN: batch of %d images but per_device_batch_size=%d; "
                                 "build the model with per_device_batch_size=%d"
                                 % (x.shape[0], self._batch_size, x.shape[0]))
            if isinstance(gt_box, mx.nd.NDArray) and gt_box.shape[1] > self._max_num_gt:
                raise ValueError("FasterRCNN: gt_boxes padded to %d boxes but max_num_gt=%d; raise "
                                 "max_num_gt or pad labels to at most %d rows"
                                 % (gt_box.shape[1], self._max_num_gt, self._max_num_gt))
            rpn_score, rpn_box, raw_score, raw_box, anchors = self.rpn(x, feat)
            rpn_box, samples, matches = self.sampler(rpn_box, rpn_score, gt_box)
            num_roi, batch = self._num_sample, self._batch_size
        else:
            _, rpn_box = self.rpn(x, feat)
            num_roi = self.rpn.test_post_nms
        with autograd.pause():
            batch_ids = F.repeat(F.contrib.arange_like(rpn_box, axis=0), num_roi)
            rois = F.stop_gradient(F.concat(batch_ids.reshape((-1, 1)), rpn_box.reshape((-1, 4)),
                                            dim=-1))
        pooled = F.contrib.ROIAlign(feat, rois, self._roi_size, 1.0 / self.stride, sample_ratio=2)
        top = self.top_features(pooled)
        box_feat = F.contrib.AdaptiveAvgPooling2D(top, output_size=1)
        cls_pred = self.class_predictor(box_feat).reshape((-1, num_roi, self.num_class + 1))
        if training:
            cls_t, box_t, box_m, indices = self.target_encoder(rpn_box, samples, matches,
                                                               gt_label, gt_box)
            box_feat = box_feat.reshape((batch, num_roi, -1))
            picked = [F.take(F.squeeze(F.slice_axis(box_feat, axis=0, begin=i, end=i + 1), axis=0),
                             F.squeeze(F.slice_axis(indices, axis=0, begin=i, end=i + 1), axis=0))
                      for i in range(batch)]
            box_pred = self.box_predictor(F.concat(*picked, dim=0))
            box_pred = box_pred.reshape((batch, -1, self.num_class, 4))
            return (cls_pred, box_pred, rpn_box, samples, matches, raw_score, raw_box, anchors,
                    cls_t, box_t, box_m, indices)
        box_pred = self.box_predictor(box_feat).reshape((-1, num_roi, self.num_class, 4))
        return self._detect(F, cls_pred, box_pred, rpn_box)

    def _detect(self, F, cls_pred, box_pred, rpn_box):
        """Per-class decoding and NMS; any batch size. Returns ids, scores, boxes ``(B, C*R, .)``."""
        probs = F.softmax(cls_pred, axis=-1).slice_axis(axis=-1, begin=1, end=None)  # (B, R, C)
        class_ids = F.broadcast_like(F.arange(self.num_class).reshape((1, 1, -1)), probs)
        keep = probs > 0.01
        class_ids = F.where(keep, class_ids, -F.ones_like(class_ids))
        probs = F.where(keep, probs, F.zeros_like(probs))
        class_ids = class_ids.transpose((0, 2, 1)).expand_dims(-1)                   # (B, C, R, 1)
        probs = probs.transpose((0, 2, 1)).expand_dims(-1)
        offsets = box_pred.transpose((0, 2, 1, 3))                                   # (B, C, R, 4)
        anchors = F.broadcast_like(rpn_box.expand_dims(1), offsets)                  # (B, C, R, 4)
        boxes = F.contrib.box_decode(offsets.reshape((1, -1, 4)), anchors.reshape((1, -1, 4)),
                                     0.1, 0.1, 0.2, 0.2, clip=self._clip, format="corner")
        boxes = F.reshape_like(boxes, offsets)
        det = F.concat(class_ids, probs, boxes, dim=-1)                              # (B, C, R, 6)
        if self.force_nms:
            det = det.reshape((0, 1, -1, 6))
        det = F.contrib.box_nms(det, overlap_thresh=self.nms_thresh, topk=self.nms_topk,
                                valid_thresh=0.0001, id_index=0, score_index=1, coord_start=2,
                                force_suppress=self.force_nms)
        det = det.reshape((0, -1, 6))
        return (det.slice_axis(axis=-1, begin=0, end=1), det.slice_axis(axis=-1, begin=1, end=2),
                det.slice_axis(axis=-1, begin=2, end=6))
