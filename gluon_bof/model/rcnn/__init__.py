"""Faster R-CNN with GluonCV's model-zoo names, plus the paper's freebies in its losses.

Modules: ``anchors`` (anchor grid), ``box_ops`` (numpy IoU / encoding), ``rpn`` (RPN head and
proposals), ``rpn_targets`` (numpy anchor sampling for the data workers), ``rcnn_targets`` (in-graph
RoI sampling), ``faster_rcnn`` (the network), ``losses`` (GluonCV-normalised losses with label
smoothing and per-box mixup weights), ``zoo`` (constructors). See docs/faster_rcnn.md.
"""
from .faster_rcnn import FasterRCNN
from .losses import faster_rcnn_losses, smooth_softmax_targets
from .rpn_targets import RPNTargetGenerator, RPNTargetTransform, pad_rpn_targets

__all__ = ["FasterRCNN", "RPNTargetGenerator", "RPNTargetTransform", "pad_rpn_targets", "faster_rcnn_losses",
           "smooth_softmax_targets"]
