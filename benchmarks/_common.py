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
