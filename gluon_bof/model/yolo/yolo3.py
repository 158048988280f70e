"""YOLOv3 detector (Redmon & Farhadi 2018) with GluonCV-compatible parameter names.

Block tree (and so ``save_parameters`` keys) equals GluonCV 0.10's ``YOLOV3``: ``stages.i.*``
(backbone slices), ``yolo_blocks.i.{body,tip}.*``, ``transitions.(i-1).*`` and
``yolo_outputs.i.{prediction.weight, prediction.bias, anchors, offsets}``, head ``i = 0`` being the
deepest. ``.params`` files therefore load strictly in both directions.

Calls (see docs/architecture.md):

* inference, ``net(x)`` -> ``(ids (B, P, 1), scores (B, P, 1), bboxes (B, P, 4))`` after per-class
  NMS, padded with -1, ``P = post_nms``;
* training, inside ``autograd.record()``: ``net(x, gt_boxes, obj_t, center_t, scale_t, weight_t,
  class_t)`` -> per-image ``(obj_loss, center_loss, scale_loss, cls_loss)``, each (B,).
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from mxnet import autograd, gluon, nd
from mxnet.gluon import nn

from ..backbones.darknet import conv_cell
from ..backbones.norm import resolve_norm
from .anchors import check_anchors, feature_hw, head_order, num_anchor_rows
from .loss import YOLOv3Loss
from .targets import YOLOv3TargetGenerator

MAX_LOG_SCALE = 20.0
TRAIN_INPUTS = ("gt_boxes", "obj_t", "center_t", "scale_t", "weight_t", "class_t")


class YOLOOutputV3(gluon.HybridBlock):
    """One YOLOv3 head: a 1x1 conv to ``n * (5 + K)`` channels, decoded against anchors and grid.

    Parameters
    ----------
    index : int
        Head index, only used in the names of the constant parameters.
    num_class : int
        ``K``.
    anchors : array (n, 2)
        Anchor (w, h) of this head, pixels.
    stride : int
        Input pixels per feature cell.
    alloc_size : (int, int)
        Largest feature map (h, w) supported; the cell-offset grid is stored in the parameters.
    """

    def __init__(self, index: int, num_class: int, anchors: np.ndarray, stride: int,
                 alloc_size: Tuple[int, int] = (128, 128), **kwargs):
        super().__init__(**kwargs)
        anchors = np.asarray(anchors, dtype=np.float32).reshape(1, 1, -1, 2)
        self._num_class = num_class
        self._num_anchors = anchors.shape[2]
        self._stride = stride
        ys, xs = np.mgrid[0:alloc_size[0], 0:alloc_size[1]]
        grid = np.stack([xs, ys], axis=-1)[None, None].astype(np.float32)   # (1, 1, h, w, 2): (x, y)
        with self.name_scope():
            self.prediction = nn.Conv2D(self._num_anchors * (5 + num_class), kernel_size=1)
            self.anchors = self.params.get_constant("anchor_%d" % index, anchors)
            self.offsets = self.params.get_constant("offset_%d" % index, grid)

    def hybrid_forward(self, F, x, anchors, offsets):
        """Decode a feature map ``x`` (B, C, h, w).

        Returns
        -------
        boxes (B, h*w*n, 4) corner boxes in pixels, raw centers (B, h*w*n, 2), raw scales
        (B, h*w*n, 2), objectness logits (B, h*w*n, 1), class logits (B, h*w*n, K); rows ordered
        by cell (row-major) then anchor.
        """
        n, k = self._num_anchors, self._num_class
        pred = self.prediction(x).reshape((0, n * (5 + k), -1)).transpose(axes=(0, 2, 1))
        pred = pred.reshape((0, -1, n, 5 + k))                                 # (B, hw, n, 5+K)
        raw_xy = pred.slice_axis(axis=-1, begin=0, end=2)
        raw_wh = pred.slice_axis(axis=-1, begin=2, end=4)
        objness = pred.slice_axis(axis=-1, begin=4, end=5)
        cls_logits = pred.slice_axis(axis=-1, begin=5, end=None)
        grid = F.slice_like(offsets, x * 0, axes=(2, 3)).reshape((1, -1, 1, 2))
        xy = F.broadcast_add(F.sigmoid(raw_xy), grid) * self._stride
        # exp(20) * anchor stays finite even for area products; GluonCV's boxes overflow to inf/NaN
        # when a (diverging) net outputs raw scales > 88. The loss never differentiates `boxes`.
        half_wh = F.broadcast_mul(F.exp(F.minimum(raw_wh, MAX_LOG_SCALE)), anchors) / 2.0
        boxes = F.concat(xy - half_wh, xy + half_wh, dim=-1)
        flat = [v.reshape((0, -3, -1)) for v in (boxes, raw_xy, raw_wh, objness, cls_logits)]
        return tuple(flat)


class YOLODetectionBlockV3(gluon.HybridBlock):
    """Five alternating 1x1 (``channel``) / 3x3 (``2 * channel``) conv cells, then a 3x3 ``tip``.

    Returns ``(route, tip)``: ``route`` (channel) feeds the next, shallower head; ``tip`` feeds this
    head's output conv.
    """

    def __init__(self, channel: int, norm_layer: Any = nn.BatchNorm,
                 norm_kwargs: Optional[Dict[str, Any]] = None, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.body = nn.HybridSequential(prefix="")
            for kernel, ch in ((1, channel), (3, 2 * channel)) * 2 + ((1, channel),):
                self.body.add(conv_cell(ch, kernel, kernel // 2, 1, norm_layer, norm_kwargs))
            self.tip = conv_cell(2 * channel, 3, 1, 1, norm_layer, norm_kwargs)

    def hybrid_forward(self, F, x):
        route = self.body(x)
        return route, self.tip(route)


def _upsample2x(F, x):
    """Nearest-neighbour 2x upsampling of (B, C, h, w).

    Same values as GluonCV's two ``repeat`` calls, in one operator instead of two in the forward and
    two in the backward pass. The gradient (each input cell sums its four copies) equals GluonCV's up
    to float rounding: the four terms are added in another order, so a training run follows a
    trajectory that differs from the two-``repeat`` one at the last bit and drifts from there.
    """
    return F.UpSampling(x, scale=2, sample_type="nearest")


class YOLOV3(gluon.HybridBlock):
    """YOLOv3 over three backbone stages, GluonCV's structure and outputs.

    Parameters
    ----------
    stages : list of HybridBlock
        Backbone pieces, shallow to deep, with output strides ``strides``.
    channels : sequence of int
        1x1 width of each detection block, deepest first (GluonCV: ``[512, 256, 128]``).
    anchors : sequence
        One ``[w0, h0, ...]`` anchor list per stride, in the order of ``strides``.
    strides : sequence of int
        Output stride of each stage, shallow to deep (``(8, 16, 32)``).
    classes : sequence of str
        Class names; ``K = len(classes)``.
    alloc_size : (int, int)
        Largest feature map per head; inputs up to ``alloc_size * stride`` pixels.
    nms_thresh, nms_topk, post_nms : float, int, int
        Per-class NMS IoU threshold (outside (0, 1) disables NMS), candidates kept before NMS, and
        detections returned per image (-1: all).
    ignore_iou_thresh : float
        Negatives overlapping a gt by more IoU than this are ignored in the objectness loss.
    norm_layer, norm_kwargs
        Normalization of the detection blocks (the stages bring their own).
    """

    def __init__(self, stages: Sequence[gluon.HybridBlock], channels: Sequence[int],
                 anchors: Sequence[Sequence[float]], strides: Sequence[int], classes: Sequence[str],
                 alloc_size: Tuple[int, int] = (128, 128), nms_thresh: float = 0.45, nms_topk: int = 400,
                 post_nms: int = 100, ignore_iou_thresh: float = 0.7, norm_layer: Any = None,
                 norm_kwargs: Optional[Dict[str, Any]] = None, **kwargs):
        super().__init__(**kwargs)
        if not (len(stages) == len(channels) == len(strides)):
            raise ValueError("YOLOV3: need as many stages (%d), channels (%d) and strides (%d)"
                             % (len(stages), len(channels), len(strides)))
        if list(strides) != sorted(strides):
            raise ValueError("YOLOV3: strides must be given shallow to deep (increasing), got %s" % list(strides))
        if len(classes) < 1:
            raise ValueError("YOLOV3: classes must name at least one class")
        per_stride = check_anchors(anchors, strides)
        norm, nkw = resolve_norm(norm_layer, norm_kwargs)
        self._classes = tuple(classes)
        self._strides = tuple(int(s) for s in strides)
        self._anchors = [list(map(float, a)) for a in per_stride.reshape(len(strides), -1)]
        self._alloc_size = tuple(alloc_size)
        self._head_strides = [self._strides[i] for i in head_order(self._strides)]
        self._mode = None
        self.nms_thresh, self.nms_topk, self.post_nms = nms_thresh, nms_topk, post_nms
        with self.name_scope():
            self.stages = nn.HybridSequential()
            self.transitions = nn.HybridSequential()
            self.yolo_blocks = nn.HybridSequential()
            self.yolo_outputs = nn.HybridSequential()
            # Stages are added shallow to deep; head i works on the i-th deepest stage.
            for i, stage_idx in enumerate(head_order(self._strides)):
                self.stages.add(stages[i])
                self.yolo_blocks.add(YOLODetectionBlockV3(channels[i], norm, nkw))
                self.yolo_outputs.add(YOLOOutputV3(i, len(classes), per_stride[stage_idx],
                                                   self._strides[stage_idx], alloc_size))
                if i > 0:
                    self.transitions.add(conv_cell(channels[i], 1, 0, 1, norm, nkw))
        self._loss = YOLOv3Loss(ignore_iou_thresh)

    # ----------------------------------------------------------------- metadata for the data loader
    @property
    def classes(self) -> Tuple[str, ...]:
        """Class names."""
        return self._classes

    @property
    def num_class(self) -> int:
        """``K``, number of foreground classes."""
        return len(self._classes)

    @property
    def anchors(self) -> List[List[float]]:
        """Anchor lists per stride, shallow to deep (the generator's ``anchors`` argument)."""
        return [list(a) for a in self._anchors]

    @property
    def strides(self) -> Tuple[int, ...]:
        """Output strides, shallow to deep (the generator's ``strides`` argument)."""
        return self._strides

    def target_generator(self, label_smooth: bool = False) -> YOLOv3TargetGenerator:
        """A numpy :class:`~gluon_bof.model.yolo.targets.YOLOv3TargetGenerator` matching this net."""
        return YOLOv3TargetGenerator(self.num_class, self.anchors, self.strides, label_smooth)

    def set_nms(self, nms_thresh: float = 0.45, nms_topk: int = 400, post_nms: int = 100) -> None:
        """Change the NMS settings (clears the hybridized graph).

        ``nms_topk=-1`` (no bound) makes MXNet's ``box_nms`` quadratic in the candidates: avoid it.
        """
        self._clear_cached_op()
        self.nms_thresh, self.nms_topk, self.post_nms = nms_thresh, nms_topk, post_nms

    # ------------------------------------------------------------------------------- input checks
    def _check_inputs(self, x, args) -> None:
        if not isinstance(x, nd.NDArray) or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError("YOLOV3: x must be an NDArray (B, 3, H, W), got %s"
                             % (getattr(x, "shape", type(x).__name__),))
        hw = x.shape[2:]
        for s in self._head_strides:
            fh, fw = feature_hw(hw, s)
            if fh > self._alloc_size[0] or fw > self._alloc_size[1]:
                raise ValueError("YOLOV3: input %dx%d is too large for alloc_size=%s at stride %d "
                                 "(max %dx%d pixels)" % (hw[0], hw[1], self._alloc_size, s,
                                                         self._alloc_size[0] * s, self._alloc_size[1] * s))
        training = autograd.is_training()
        if args and not training:
            raise TypeError("YOLOV3: targets were given outside training mode; call net(x) for "
                            "inference or net(x, *targets) inside autograd.record()")
        if training and len(args) != len(TRAIN_INPUTS):
            raise TypeError("YOLOV3: in training mode call net(x, %s); got %d extra inputs"
                            % (", ".join(TRAIN_INPUTS), len(args)))
        if not args:
            return
        b = x.shape[0]
        n_rows = num_anchor_rows(hw, self._strides, len(self._anchors[0]) // 2)
        expected = {"obj_t": 1, "center_t": 2, "scale_t": 2, "weight_t": 2, "class_t": self.num_class}
        for name, arr in zip(TRAIN_INPUTS, args):
            if not isinstance(arr, nd.NDArray):
                raise TypeError("YOLOV3: %s must be an mx.nd.NDArray, got %s" % (name, type(arr).__name__))
            if name == "gt_boxes":
                ok = arr.ndim == 3 and arr.shape[0] == b and arr.shape[2] == 4 and arr.shape[1] >= 1
                want = "(%d, M>=1, 4)" % b
            else:
                want_shape = (b, n_rows, expected[name])
                ok = tuple(arr.shape) == want_shape
                want = str(want_shape)
            if not ok:
                raise ValueError("YOLOV3: %s must have shape %s for input %s and K=%d, got %s"
                                 % (name, want, tuple(x.shape), self.num_class, tuple(arr.shape)))

    def forward(self, x, *args):
        """Check inputs, then run (hybridized or not); see the module docstring for the calls."""
        if isinstance(x, nd.NDArray):
            self._check_inputs(x, args)
            mode = (autograd.is_training(), len(args))
            if self._active and self._mode is not None and mode != self._mode:
                # The cached graph was traced for the other mode (train vs inference).
                self._clear_cached_op()
            self._mode = mode
        return super().forward(x, *args)

    # ------------------------------------------------------------------------------------ forward
    def hybrid_forward(self, F, x, *args):
        routes = []
        for stage in self.stages:
            x = stage(x)
            routes.append(x)
        routes = routes[::-1]
        heads = []
        x = routes[0]
        for i in range(len(routes)):
            if i > 0:
                up = _upsample2x(F, self.transitions[i - 1](x))
                x = F.concat(F.slice_like(up, routes[i] * 0, axes=(2, 3)), routes[i], dim=1)
            x, tip = self.yolo_blocks[i](x)
            heads.append(self.yolo_outputs[i](tip))
        boxes, raw_xy, raw_wh, objness, cls_logits = [F.concat(*parts, dim=1) for parts in zip(*heads)]
        if args:
            return self._loss(objness, raw_xy, raw_wh, cls_logits, boxes, *args)
        return self._detect(F, heads)

    def _detect(self, F, heads):
        """Per-class candidates of all heads, then NMS: GluonCV's layout and settings."""
        k = self.num_class
        dets = []
        for boxes, _, _, objness, cls_logits in heads:
            scores = F.broadcast_mul(F.sigmoid(cls_logits), F.sigmoid(objness))          # (B, N, K)
            scores = scores.transpose(axes=(0, 2, 1)).expand_dims(axis=-1)             # (B, K, N, 1)
            ids = F.broadcast_add(scores * 0, F.arange(0, k).reshape((1, k, 1, 1)))
            boxes = F.broadcast_like(boxes.expand_dims(axis=1), scores, lhs_axes=(1,), rhs_axes=(1,))
            dets.append(F.concat(ids, scores, boxes, dim=-1).reshape((0, -3, -1)))     # (B, K*N, 6)
        result = F.concat(*dets, dim=1)
        if 0 < self.nms_thresh < 1:
            result = F.contrib.box_nms(result, overlap_thresh=self.nms_thresh, valid_thresh=0.01,
                                       topk=self.nms_topk, id_index=0, score_index=1, coord_start=2,
                                       force_suppress=False)
            if self.post_nms > 0:
                result = result.slice_axis(axis=1, begin=0, end=self.post_nms)
        ids = result.slice_axis(axis=-1, begin=0, end=1)
        scores = result.slice_axis(axis=-1, begin=1, end=2)
        bboxes = result.slice_axis(axis=-1, begin=2, end=None)
        return ids, scores, bboxes
