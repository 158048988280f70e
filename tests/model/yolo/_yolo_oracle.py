"""Shared helpers of the YOLOv3 tests: GluonCV reference targets and random labels."""
import numpy as np

from gluon_bof.model.yolo.anchors import DEFAULT_ANCHORS, DEFAULT_STRIDES


def gluoncv_prefetch(labels, input_hw, num_class, mix=False, strides=DEFAULT_STRIDES, anchors=DEFAULT_ANCHORS):
    """GluonCV's prefetch targets for a batch of labels (no network needed: only shapes matter)."""
    from mxnet import nd
    from gluoncv.model_zoo.yolo.yolo_target import YOLOV3PrefetchTargetGenerator
    from gluon_bof.model.yolo.anchors import feature_hw

    h, w = input_hw
    order = sorted(range(len(strides)), key=lambda i: -strides[i])
    nd_anchors = [nd.array(np.asarray(anchors[i], np.float32).reshape(1, 1, -1, 2)) for i in order]
    sizes = [feature_hw(input_hw, strides[i]) for i in order]
    xs = [nd.zeros((1, 1, fh, fw)) for fh, fw in sizes]
    offsets = [nd.zeros((1, fh * fw, 1, 2)) for fh, fw in sizes]
    m = max(1, max(len(lab) for lab in labels))
    padded = np.full((len(labels), m, labels[0].shape[1]), -1, np.float32)
    for i, lab in enumerate(labels):
        padded[i, :len(lab)] = lab
    gen = YOLOV3PrefetchTargetGenerator(num_class)
    out = gen(nd.zeros((len(labels), 3, h, w)), xs, nd_anchors, offsets, nd.array(padded[:, :, :4]),
              nd.array(padded[:, :, 4:5]), nd.array(padded[:, :, -1:]) if mix else None)
    return [o.asnumpy() for o in out]


def random_labels(rng, n_images, input_hw, num_class, mix):
    h, w = input_hw
    labels = []
    for _ in range(n_images):
        n = int(rng.integers(0, 12))
        x1 = rng.uniform(0, w - 2, n)
        y1 = rng.uniform(0, h - 2, n)
        x2 = np.minimum(x1 + rng.uniform(0.5, w * 0.9, n), w - 1)
        y2 = np.minimum(y1 + rng.uniform(0.5, h * 0.9, n), h - 1)
        cols = [x1, y1, x2, y2, rng.integers(0, num_class, n), np.zeros(n)]
        if mix:
            cols.append(rng.uniform(0.05, 1.0, n))
        labels.append(np.stack(cols, axis=1).astype(np.float32).reshape(n, len(cols)))
    return labels
