"""Registered YOLOv3 models: GluonCV's names plus a CPU-sized ``yolo3_tiny_shapes``.

Every constructor accepts ``classes`` (sets ``K``; default: the dataset of the name),
``pretrained_base`` (must be False: no weights are downloaded), ``pretrained`` (False, or the path
of a ``.params`` file, ours or GluonCV's, loaded strictly), ``norm_layer`` (class, ``'bn'`` or
``'syncbn'``), ``norm_kwargs`` (e.g. ``{'num_devices': n}``, n >= 1, no fallback to BatchNorm) and
the :class:`~gluon_bof.model.yolo.yolo3.YOLOV3` keywords (``nms_thresh``, ``nms_topk``,
``post_nms``, ``ignore_iou_thresh``, ``alloc_size``, ``anchors``).
"""
import os
from typing import Any, Callable, Dict, Optional, Sequence

from ..backbones.darknet import darknet53_stages
from ..backbones.mobilenet import mobilenet_stages
from ..backbones.norm import resolve_norm
from ...data.class_names import COCO_CLASSES, SHAPES_CLASSES, VOC_CLASSES
from ..zoo import register_model
from .anchors import DEFAULT_ANCHORS, DEFAULT_STRIDES
from .yolo3 import YOLOV3

# Detection-block widths (deepest head first) of GluonCV's models.
_HEADS = {"darknet53": (512, 256, 128), "mobilenet1.0": (512, 256, 128), "mobilenet0.25": (256, 128, 128)}
_DATASETS = {"voc": VOC_CLASSES, "coco": COCO_CLASSES, "custom": None}


def _stages(backbone: str, norm_layer, norm_kwargs):
    if backbone == "darknet53":
        return darknet53_stages(norm_layer, norm_kwargs)
    return mobilenet_stages(float(backbone[len("mobilenet"):]), norm_layer, norm_kwargs)


def build_yolo3(stages_fn: Callable, head_channels: Sequence[int], classes: Optional[Sequence[str]],
                name: str, pretrained_base: bool = False, pretrained: Any = False, norm_layer: Any = None,
                norm_kwargs: Optional[Dict[str, Any]] = None, anchors=DEFAULT_ANCHORS,
                strides=DEFAULT_STRIDES, **kwargs) -> YOLOV3:
    """Common body of the constructors: checks the arguments, builds stages and net, loads weights."""
    if pretrained_base and not pretrained:
        raise ValueError("%s: pretrained_base=True needs ImageNet backbone weights, which gluon_bof does not "
                         "download; pass pretrained_base=False (and pretrained='<file.params>' to load a "
                         "whole model)" % name)
    if classes is None:
        raise ValueError("%s: classes=... (list of class names) is required" % name)
    if isinstance(classes, str) or len(classes) < 1:
        raise ValueError("%s: classes must be a non-empty list of names, got %r" % (name, classes))
    norm, nkw = resolve_norm(norm_layer, norm_kwargs)
    net = YOLOV3(stages_fn(norm, nkw), head_channels, anchors, strides, list(classes),
                 norm_layer=norm, norm_kwargs=nkw, **kwargs)
    if pretrained:
        if not isinstance(pretrained, str) or not os.path.isfile(pretrained):
            raise ValueError("%s: pretrained must be False or the path of an existing .params file, got %r"
                             % (name, pretrained))
        net.load_parameters(pretrained)
    return net


def _make(backbone: str, dataset: str):
    name = "yolo3_%s_%s" % (backbone, dataset)

    def constructor(classes: Optional[Sequence[str]] = None, pretrained_base: bool = False,
                    pretrained: Any = False, norm_layer: Any = None,
                    norm_kwargs: Optional[Dict[str, Any]] = None, **kwargs) -> YOLOV3:
        return build_yolo3(lambda n, k: _stages(backbone, n, k), _HEADS[backbone],
                           _DATASETS[dataset] if classes is None else classes, name,
                           pretrained_base, pretrained, norm_layer, norm_kwargs, **kwargs)

    constructor.__name__ = name.replace(".", "_")
    constructor.__doc__ = ("YOLOv3 with a %s backbone, GluonCV's ``%s`` (default classes: %s)."
                           % (backbone, name, dataset.upper() if dataset != "custom" else "required"))
    register_model(name, constructor)
    return constructor


for _bb in _HEADS:
    for _ds in _DATASETS:
        _make(_bb, _ds)


@register_model("yolo3_tiny_shapes")
def yolo3_tiny_shapes(classes: Optional[Sequence[str]] = None, width: float = 0.25,
                      head_width: float = 0.125, pretrained_base: bool = False, pretrained: Any = False,
                      norm_layer: Any = None, norm_kwargs: Optional[Dict[str, Any]] = None,
                      **kwargs) -> YOLOV3:
    """CPU-sized YOLOv3: MobileNet backbone of width ``width``, detection blocks ``head_width`` wide.

    Same heads, anchors, targets and losses as GluonCV's YOLOv3; only the widths shrink. The block
    widths are ``head_width * (512, 256, 128)`` rounded to even numbers (default 64, 32, 16), the
    backbone is ``mobilenet{width}``. Meant for small synthetic datasets at 160-320 pixels (the README
    demo trains at 160-224 and validates at 256).
    ``classes`` defaults to the six Shapes classes.
    """
    if classes is None:
        classes = SHAPES_CLASSES
    heads = [max(2, 2 * int(round(c * head_width / 2))) for c in (512, 256, 128)]
    return build_yolo3(lambda n, k: mobilenet_stages(width, n, k), heads, classes, "yolo3_tiny_shapes",
                       pretrained_base, pretrained, norm_layer, norm_kwargs, **kwargs)
