"""Faster R-CNN recipe: the objects ``train_faster_rcnn.py`` builds from its flags.

Mirrors ``gluon_bof.engine.yolo3``: the network (frozen BN by default as GluonCV, ``syncbn`` by
flag), the validation loop in *original* image coordinates (GluonCV's ``validate``: detections
clipped to the input, then detections and ground truth multiplied by ``im_scale = original height
/ resized height``), the metric (VOC07 11-point mAP at IoU 0.5 for voc/custom/shapes, COCO mAP for
coco) and the results file.

Differences from GluonCV's script (kept on purpose):

* LR: one ``build_lr_scheduler`` over updates (warmup from ``lr * --lr-warmup-factor``, then step or
  cosine). MXNet indexes the first update 1, so the ramp and the step decays come one update earlier
  than GluonCV's per-iteration ``set_learning_rate`` (which uses ``lr * factor`` at iteration 0 and
  decays at the first iteration of a decay epoch). A warmup longer than epoch 0 continues into epoch 1
  (GluonCV stops ramping at the end of epoch 0 and keeps the partial rate).
* Batches are padded to their largest image, not per device shard; validation batches hold one image
  per device (GluonCV's), clipped to the padded input when devices > 1.
* With ``syncbn`` on several devices the training net runs imperatively (threads cannot build a
  cached graph concurrently) and a plain-BN twin is evaluated.
"""
from typing import Any, Callable, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np

from ..data.pipelines import build_faster_rcnn_val_loader
from ..metrics import COCODetectionMetric, VOC07MApMetric
from ..metrics.results import build_results
from ..model import get_model
from .evaluate import Detections, clip_to_input, copy_weights, evaluate, predict_batch
from .evaluate import detection_picture as draw_detection_picture

NETWORKS = ("resnet18_v1b", "resnet50_v1b", "resnet101_v1d", "mobilenet0.25", "mobilenet0.5")
NORM_LAYERS = ("frozen", "bn", "syncbn")


def model_name(network: str, dataset: str) -> str:
    """GluonCV's model name ``faster_rcnn_{network}_{voc|coco}``; ``resnet18_v1b`` is the CPU-sized
    ``faster_rcnn_resnet18_v1b_shapes`` and ``mobilenet0.25``/``0.5`` the CPU-sized
    ``faster_rcnn_mobilenet{width}_shapes`` (any dataset); custom/shapes datasets use the VOC settings."""
    if network not in NETWORKS:
        raise ValueError("--network %r: choose one of %s" % (network, ", ".join(NETWORKS)))
    if network == "resnet18_v1b" or network.startswith("mobilenet"):
        return "faster_rcnn_%s_shapes" % network
    if network == "resnet101_v1d":
        return "faster_rcnn_resnet101_v1d_coco"
    return "faster_rcnn_%s_%s" % (network, "coco" if dataset == "coco" else "voc")


def build_net(network: str, dataset: str, classes: Sequence[str], norm_layer: Optional[str] = None,
              num_devices: int = 1, per_device_batch_size: int = 1, **kwargs) -> Tuple[str, Any]:
    """``(name, net)``: the model with the dataset's classes and the chosen BatchNorm.

    ``norm_layer=None`` keeps the model's default (frozen BN for the GluonCV models, trained BN for
    the Shapes model); ``'syncbn'`` uses SyncBatchNorm over ``num_devices`` devices.
    """
    if norm_layer is not None and norm_layer not in NORM_LAYERS:
        raise ValueError("--norm-layer %r: choose one of %s" % (norm_layer, ", ".join(NORM_LAYERS)))
    name = model_name(network, dataset)
    if norm_layer is not None:
        kwargs["norm"] = norm_layer
        if norm_layer == "syncbn":
            kwargs["num_devices"] = int(num_devices)
    net = get_model(name, classes=list(classes), pretrained_base=False,
                    per_device_batch_size=int(per_device_batch_size), **kwargs)
    return name, net


def build_metric(dataset_name: str, val_dataset: Any):
    """VOC07 11-point mAP at IoU 0.5 (voc, custom, shapes) or COCO mAP (coco), in original coordinates."""
    if dataset_name == "coco":
        return COCODetectionMetric(val_dataset)
    return VOC07MApMetric(iou_thresh=0.5, class_names=list(val_dataset.classes))


def to_original(ids: np.ndarray, scores: np.ndarray, boxes: np.ndarray, images: np.ndarray,
                extras: Sequence[np.ndarray]) -> Detections:
    """GluonCV's Faster R-CNN validation: clip to the input, then scale by ``im_scale`` (B,)."""
    ids, scores, boxes = clip_to_input(ids, scores, boxes, images, extras)
    scale = np.asarray(extras[0], dtype=np.float32).reshape(-1, 1, 1)
    return ids, scores, boxes * scale


class OriginalCoordinateLoader:
    """Validation batches with the ground truth in original image coordinates (rows of class >= 0
    multiplied by ``im_scale``), to pair with :func:`to_original`."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def iter_epoch(self, epoch: int = 0, *args, **kwargs):
        for images, labels, im_scale, *rest in self.loader.iter_epoch(epoch, *args, **kwargs):
            labels = np.array(labels, dtype=np.float32)
            valid = labels[..., 4:5] >= 0
            scaled = labels[..., :4] * np.asarray(im_scale, dtype=np.float32).reshape(-1, 1, 1)
            labels[..., :4] = np.where(valid, scaled, labels[..., :4])
            yield (images, labels, im_scale, *rest)

    def __len__(self) -> int:
        return len(self.loader)


def make_validate_fn(eval_net: mx.gluon.Block, train_net: mx.gluon.Block, val_dataset: Any, dataset_name: str,
                     split: str, name: str, batch_size: int, ctxs: Sequence[mx.Context], num_workers: int = 0,
                     hybridize: bool = True, max_batches: Optional[int] = None) -> Callable:
    """``validate_fn(net, epoch) -> (names, values, results)`` for :func:`gluon_bof.engine.fit`.

    ``eval_net`` may be ``train_net`` itself (frozen or plain BN); with SyncBN it is a plain-BN twin
    that gets the weights copied in before every validation.
    """
    loader = OriginalCoordinateLoader(build_faster_rcnn_val_loader(
        val_dataset, short=_last(eval_net.short), max_size=eval_net.max_size, batch_size=batch_size,
        num_workers=num_workers))
    metric = build_metric(dataset_name, val_dataset)

    def validate(net: mx.gluon.Block, epoch: int):
        if eval_net is not train_net:
            copy_weights(train_net, eval_net, ctxs)
        if hybridize:
            eval_net.hybridize()
        names, values = evaluate(eval_net, loader, metric, ctxs, postprocess=to_original,
                                 max_batches=max_batches)
        results = build_results(metric, dataset=dataset_name, split=split, model=name, epoch=epoch,
                                extra={"short": _last(eval_net.short), "max_size": int(eval_net.max_size)})
        return names, values, results

    return validate


def _last(short: Any) -> int:
    """GluonCV validates at ``net.short[-1]`` when ``short`` is a (min, max) range."""
    return int(short[-1]) if isinstance(short, (tuple, list)) else int(short)


def detection_picture(net: mx.gluon.Block, val_dataset: Any, path: str, ctxs: Sequence[mx.Context],
                      count: int = 6, score_thresh: float = 0.3) -> str:
    """Draw the detections of ``net`` on the first ``count`` validation images into one picture."""
    from ..data.transforms.presets import FasterRCNNValTransform
    transform = FasterRCNNValTransform(_last(net.short), net.max_size)

    def detect(image: np.ndarray, label: np.ndarray):
        x, _, im_scale = transform(image, label)
        ids, scores, boxes = to_original(*predict_batch(net, x[None], ctxs[:1]), x[None],
                                         [np.array([im_scale], dtype=np.float32)])
        return ids[0], scores[0], boxes[0]

    return draw_detection_picture(val_dataset, detect, path, count, score_thresh)
