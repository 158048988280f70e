"""Inputs shared by the benchmarks (run them as ``python benchmarks/<name>.py``)."""
from typing import List, Sequence

import mxnet as mx
import numpy as np

from gluon_bof.model.yolo.anchors import DEFAULT_ANCHORS, DEFAULT_STRIDES
from gluon_bof.model.yolo.targets import YOLOv3TargetGenerator, pad_gt_boxes


def yolo3_step_inputs(num_class: int, size: int, batch: int, seed: int = 0,
                      anchors: Sequence[Sequence[float]] = DEFAULT_ANCHORS,
                      strides: Sequence[int] = DEFAULT_STRIDES) -> List[mx.nd.NDArray]:
    """``[x, gt_boxes, obj, center, scale, weight, class]`` NDArrays for one YOLOv3 training call:
    random images of ``size`` x ``size`` with 1-5 random boxes each and their numpy targets."""
    rng = np.random.default_rng(seed)
    gen = YOLOv3TargetGenerator(num_class, anchors, strides)
    labels = []
    for _ in range(batch):
        n = int(rng.integers(1, 6))
        xy = rng.uniform(0, size * 0.7, (n, 2))
        wh = rng.uniform(16, size * 0.3, (n, 2))
        labels.append(np.concatenate([xy, np.minimum(xy + wh, size - 1), rng.integers(0, num_class, (n, 1))],
                                     1).astype(np.float32))
    targets = [np.stack(t) for t in zip(*[gen.gen(lab, (size, size)) for lab in labels])]
    x = rng.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)
    return [mx.nd.array(a) for a in [x, pad_gt_boxes(labels)] + targets]


def faster_rcnn_step_inputs(net, height: int, width: int, batch: int = 1, seed: int = 0,
                            max_boxes: int = 5) -> List[mx.nd.NDArray]:
    """``[x, labels, rpn_cls, rpn_box, rpn_mask, rpn_weight]`` NDArrays for one Faster R-CNN training call.

    Random ``height`` x ``width`` images with 1-``max_boxes`` random boxes each; ``labels`` is
    ``(B, M, 7)`` ``[x1, y1, x2, y2, class, difficult, mixup weight 1]`` padded with -1, the RPN
    targets come from the anchor table of ``net`` (a gluon_bof ``FasterRCNN``) as the data workers
    make them. GluonCV's training call takes ``labels[:, :, :6]`` and the first three RPN targets.
    """
    from gluon_bof.model.rcnn import RPNTargetTransform, pad_rpn_targets
    rng = np.random.default_rng(seed)
    make_targets = RPNTargetTransform.from_net(net)
    labels, targets = [], []
    for _ in range(batch):
        n = int(rng.integers(1, max_boxes + 1))
        xy = rng.uniform(0, 0.7, (n, 2)) * (width, height)
        wh = rng.uniform(0.1, 0.3, (n, 2)) * (width, height)
        x2y2 = np.minimum(xy + wh, (width - 1, height - 1))
        lab = np.concatenate([xy, x2y2, rng.integers(0, len(net.classes), (n, 1)), np.zeros((n, 1)),
                              np.ones((n, 1))], 1).astype(np.float32)
        labels.append(lab)
        targets.append(make_targets((height, width), lab, rng))
    padded = np.full((batch, max(len(lab) for lab in labels), 7), -1, np.float32)
    for i, lab in enumerate(labels):
        padded[i, :len(lab)] = lab
    x = rng.uniform(-1, 1, (batch, 3, height, width)).astype(np.float32)
    return [mx.nd.array(a) for a in (x, padded) + tuple(pad_rpn_targets(targets))]
