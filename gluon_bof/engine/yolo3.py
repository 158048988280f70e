"""YOLOv3 recipe: the objects ``train_yolo3.py`` and ``eval_yolo3.py`` build from their flags.

Kept out of the scripts so that training and evaluation build the network, the validation data
and the metric the same way (GluonCV's ``train_yolo3.py`` sections 1.2-1.8 of
``docs/architecture.md``'s spec).
"""
import logging
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np

from ..data.pipelines import build_yolo3_val_loader
from ..metrics import COCODetectionMetric, VOC07MApMetric
from ..metrics.results import build_results
from ..model import get_model
from .evaluate import copy_weights, evaluate, predict_batch
from .evaluate import detection_picture as draw_detection_picture

# Square sizes of the paper's random-shape training (section 3.6): 320, 352, ..., 608.
PAPER_RANDOM_SHAPES = tuple(range(320, 609, 32))


def model_name(network: str, dataset: str) -> str:
    """GluonCV's model name, ``yolo3_{network}_{voc|coco|custom}``; ``tiny`` is ``yolo3_tiny_shapes``."""
    if network == "tiny":
        return "yolo3_tiny_shapes"
    return "yolo3_%s_%s" % (network, dataset if dataset in ("voc", "coco") else "custom")


def norm_for(syncbn: bool, num_devices: int) -> Tuple[Any, Dict[str, Any]]:
    """``(norm_layer, norm_kwargs)``: SyncBatchNorm over all devices when ``syncbn``.

    On a single device, batch statistics are already those of the whole batch, so SyncBatchNorm
    and BatchNorm compute the same thing (``tests/engine/test_yolo3_recipe.py`` checks outputs and
    gradients); MXNet's CPU SyncBatchNorm is about 9x slower than its BatchNorm kernel, so one
    device gets BatchNorm, and the log says so (GluonCV falls back silently).
    """
    if syncbn and num_devices > 1:
        return mx.gluon.contrib.nn.SyncBatchNorm, {"num_devices": int(num_devices)}
    if syncbn:
        logging.getLogger("gluon_bof.engine").info(
            "--syncbn on one device: BatchNorm over the whole batch is already synchronized; using "
            "the BatchNorm kernel (identical results, ~9x faster than SyncBatchNorm on CPU)")
    return mx.gluon.nn.BatchNorm, {}


def build_net(network: str, dataset: str, classes: Sequence[str], syncbn: bool = False, num_devices: int = 1,
              **kwargs):
    """The training network (SyncBN if asked) and a plain-BN twin for evaluation with the same names."""
    name = model_name(network, dataset)
    norm_layer, norm_kwargs = norm_for(syncbn, num_devices)
    net = get_model(name, classes=list(classes), pretrained_base=False, norm_layer=norm_layer,
                    norm_kwargs=norm_kwargs, **kwargs)
    return name, net


def parse_random_shapes(text: str) -> Tuple[int, ...]:
    """``'320:608'`` -> (320, 352, ..., 608) (multiples of 32); ``'256,288'`` -> (256, 288)."""
    if ":" in text:
        lo, hi = (int(v) for v in text.split(":"))
        shapes = tuple(range(lo, hi + 1, 32))
    else:
        shapes = tuple(int(v) for v in text.split(",") if v.strip())
    if not shapes or any(s <= 0 or s % 32 for s in shapes):
        raise ValueError("--random-shapes %r: need sizes that are positive multiples of 32 (stride of the "
                         "deepest head), e.g. 320:608 or 256,288,320" % text)
    return shapes


def build_metric(dataset_name: str, val_dataset: Any, data_shape: int):
    """VOC07 11-point mAP at IoU 0.5 (voc, custom, shapes) or COCO mAP (coco), as GluonCV."""
    if dataset_name == "coco":
        return COCODetectionMetric(val_dataset, data_shape=(data_shape, data_shape))
    return VOC07MApMetric(iou_thresh=0.5, class_names=list(val_dataset.classes))


def make_validate_fn(eval_net: mx.gluon.Block, train_net: mx.gluon.Block, val_dataset: Any, dataset_name: str,
                     split: str, name: str, data_shape: int, batch_size: int, ctxs: Sequence[mx.Context],
                     num_workers: int = 0, max_batches: Optional[int] = None) -> Callable:
    """``validate_fn(net, epoch) -> (names, values, results)`` for :func:`gluon_bof.engine.fit`.

    Evaluation runs on ``eval_net``, a plain-BatchNorm twin of the SyncBN training net that gets
    its weights copied in (SyncBN needs every device to take part in each forward pass).
    """
    loader = build_yolo3_val_loader(val_dataset, data_shape, batch_size=batch_size, num_workers=num_workers)
    metric = build_metric(dataset_name, val_dataset, data_shape)

    def validate(net: mx.gluon.Block, epoch: int):
        copy_weights(train_net, eval_net, ctxs)
        eval_net.set_nms(nms_thresh=0.45, nms_topk=400, post_nms=100)
        eval_net.hybridize()
        names, values = evaluate(eval_net, loader, metric, ctxs, max_batches=max_batches)
        results = build_results(metric, dataset=dataset_name, split=split, model=name, epoch=epoch,
                                extra={"data_shape": data_shape})
        return names, values, results

    return validate


def detection_picture(net: mx.gluon.Block, val_dataset: Any, data_shape: int, path: str,
                      ctxs: Sequence[mx.Context], count: int = 6, score_thresh: float = 0.3) -> str:
    """Draw the detections of ``net`` on the first ``count`` validation images into one picture."""
    from ..data.transforms.presets import YOLO3ValTransform
    transform = YOLO3ValTransform(data_shape, data_shape)

    def detect(image: np.ndarray, label: np.ndarray):
        x, _ = transform(image, label)
        ids, scores, boxes = predict_batch(net, x[None], ctxs[:1])
        h, w = image.shape[:2]
        return ids[0], scores[0], boxes[0] * np.array([w / data_shape, h / data_shape] * 2, dtype=np.float32)

    return draw_detection_picture(val_dataset, detect, path, count, score_thresh)
