"""The evaluation loop shared by the detectors: run a net over a validation loader, feed a metric.

Images of a batch are split over the devices; detections come back as ``(ids, scores, boxes)``
padded with -1 (GluonCV's layout) and go, with the ground truth of the batch, to a metric of
``gluon_bof.metrics`` (``update(pred_bboxes, pred_labels, pred_scores, gt_bboxes, gt_labels,
gt_difficults)``).
"""
from typing import Any, Callable, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np
from mxnet import gluon

from .context import split_batch

Detections = Tuple[np.ndarray, np.ndarray, np.ndarray]


def clip_to_input(ids: np.ndarray, scores: np.ndarray, boxes: np.ndarray, images: np.ndarray,
                  extras: Sequence[np.ndarray]) -> Detections:
    """GluonCV's YOLOv3 validation: boxes clipped to the network input ``[0, W] x [0, H]``."""
    h, w = images.shape[2:]
    boxes = boxes.copy()
    boxes[..., 0::2] = np.clip(boxes[..., 0::2], 0, w)
    boxes[..., 1::2] = np.clip(boxes[..., 1::2], 0, h)
    return ids, scores, boxes


def predict_batch(net: gluon.Block, images: np.ndarray, ctxs: Sequence[mx.Context]) -> Detections:
    """Detections of ``net`` for a batch of images, split over ``ctxs`` (inference mode).

    Returns numpy ``ids (B, N, 1)``, ``scores (B, N, 1)``, ``boxes (B, N, 4)``.
    """
    ctxs = list(ctxs)[: max(1, len(images))]
    if len(images) % len(ctxs):
        ctxs = ctxs[:1]
    outputs = [net(x) for (x,) in split_batch((images,), ctxs)]
    ids, scores, boxes = (np.concatenate([o[i].asnumpy() for o in outputs]) for i in range(3))
    return ids, scores, boxes


def evaluate(net: gluon.Block, loader: Any, metric: Any, ctxs: Sequence[mx.Context],
             postprocess: Optional[Callable[..., Detections]] = clip_to_input,
             max_batches: Optional[int] = None) -> Tuple[Sequence[str], Sequence[float]]:
    """Run ``net`` over ``loader`` (one pass, dataset order) and return ``metric.get()``.

    Parameters
    ----------
    net : gluon.Block
        Detector in inference mode: ``net(x) -> (ids, scores, boxes)``.
    loader :
        ``iter_epoch(0)`` yields ``(images (B,3,H,W), labels (B,M,6) padded with -1, *extras)``.
    metric :
        A ``gluon_bof.metrics`` metric; reset here.
    ctxs : list of Context
    postprocess : callable, optional
        ``(ids, scores, boxes, images, extras) -> (ids, scores, boxes)``, e.g. clipping, or mapping
        boxes back to original image coordinates (then the ground truth is mapped the same way by
        the caller's loader).
    max_batches : int, optional
        Stop early (smoke tests).
    """
    metric.reset()
    for i, batch in enumerate(loader.iter_epoch(0)):
        if max_batches is not None and i >= max_batches:
            break
        images, labels, extras = batch[0], batch[1], batch[2:]
        ids, scores, boxes = predict_batch(net, images, ctxs)
        if postprocess is not None:
            ids, scores, boxes = postprocess(ids, scores, boxes, images, extras)
        difficult = labels[..., 5] if labels.shape[-1] > 5 else None
        metric.update(boxes, ids, scores, labels[..., :4], labels[..., 4], difficult)
    return metric.get()


def copy_weights(src: gluon.Block, dst: gluon.Block, ctxs: Sequence[mx.Context]) -> None:
    """Copy every parameter (weights and BN statistics) of ``src`` into ``dst`` by structural name.

    Validation runs on a plain-BatchNorm twin of a SyncBatchNorm training net (SyncBN needs every
    device in each forward pass); the parameter names of both are the same.
    """
    src_params = src._collect_params_with_prefix()
    for key, param in dst._collect_params_with_prefix().items():
        value = src_params[key].data(src_params[key].list_ctx()[0])
        if param._data is None:
            param.initialize(ctx=list(ctxs))
        param.set_data(value)
