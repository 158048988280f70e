"""Registered YOLOv3 models: GluonCV's names plus a CPU-sized ``yolo3_tiny_shapes``.

Every constructor accepts ``classes`` (sets ``K``; default: the dataset of the name),
``pretrained_base`` (False; True: GluonCV's ImageNet backbone file from the model store, SHA-1
checked, nothing downloaded; or the path of such a file), ``pretrained`` (False, or the path of a
``.params`` file, ours or GluonCV's, loaded strictly), ``norm_layer`` (class, ``'bn'`` or
``'syncbn'``), ``norm_kwargs`` (e.g. ``{'num_devices': n}``, n >= 1, no fallback to BatchNorm) and
the :class:`~gluon_bof.model.yolo.yolo3.YOLOV3` keywords (``nms_thresh``, ``nms_topk``,
``post_nms``, ``ignore_iou_thresh``, ``alloc_size``, ``anchors``).
"""
import os
from typing import Any, Dict, Optional, Sequence

from ..backbones.darknet import DARKNET53_CHANNELS, DARKNET53_LAYERS, darknet_features
from ..backbones.mobilenet import mobilenet_features, mobilenet_store_name
from ..backbones.plain import PLAIN_CUTS, plain_features
from ..backbones.norm import resolve_norm
from ...data.class_names import COCO_CLASSES, SHAPES_CLASSES, VOC_CLASSES
from ..pretrained import attach_backbone, load_pretrained_base
from ..zoo import register_model
from .anchors import DEFAULT_ANCHORS, DEFAULT_STRIDES
from .yolo3 import YOLOV3

# Detection-block widths (deepest head first) of GluonCV's models.
_HEADS = {"darknet53": (512, 256, 128), "mobilenet1.0": (512, 256, 128), "mobilenet0.25": (256, 128, 128)}
_DATASETS = {"voc": VOC_CLASSES, "coco": COCO_CLASSES, "custom": None}


# GluonCV's cuts of the backbone's ``features`` into the stride-8, -16 and -32 stages.
_CUTS = {"darknet": (15, 24, None), "mobilenet": (33, 69, -2)}


def _backbone(backbone: str, norm_layer, norm_kwargs):
    """``(features, store name, cuts)`` of ``'darknet53'``, ``'mobilenet<width>'`` or ``'plain<width>'``."""
    if backbone == "darknet53":
        return (darknet_features(DARKNET53_LAYERS, DARKNET53_CHANNELS, norm_layer, norm_kwargs), "darknet53",
                _CUTS["darknet"])
    if backbone.startswith("plain"):
        width = float(backbone[len("plain"):])
        return plain_features(width, norm_layer, norm_kwargs), backbone, PLAIN_CUTS
    width = float(backbone[len("mobilenet"):])
    return mobilenet_features(width, norm_layer, norm_kwargs), mobilenet_store_name(width), _CUTS["mobilenet"]


def build_yolo3(backbone: str, head_channels: Sequence[int], classes: Optional[Sequence[str]],
                name: str, pretrained_base: Any = False, pretrained: Any = False, norm_layer: Any = None,
                norm_kwargs: Optional[Dict[str, Any]] = None, anchors=DEFAULT_ANCHORS,
                strides=DEFAULT_STRIDES, **kwargs) -> YOLOV3:
    """Common body of the constructors: checks the arguments, builds stages and net, loads weights.

    ``backbone`` is ``'darknet53'``, ``'mobilenet<width>'`` or ``'plain<width>'``; the net records its backbone
    (:func:`gluon_bof.model.pretrained.attach_backbone`) so ImageNet weights load into it later.
    """
    if classes is None:
        raise ValueError("%s: classes=... (list of class names) is required" % name)
    if isinstance(classes, str) or len(classes) < 1:
        raise ValueError("%s: classes must be a non-empty list of names, got %r" % (name, classes))
    norm, nkw = resolve_norm(norm_layer, norm_kwargs)
    features, store_name, (a, b, c) = _backbone(backbone, norm, nkw)
    net = YOLOV3([features[:a], features[a:b], features[b:c]], head_channels, anchors, strides, list(classes),
                 norm_layer=norm, norm_kwargs=nkw, **kwargs)
    attach_backbone(net, store_name, features, "features")
    if pretrained_base and not pretrained:
        load_pretrained_base(net, pretrained_base, "%s: pretrained_base" % name)
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
        return build_yolo3(backbone, _HEADS[backbone],
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


#: Backbones of ``yolo3_tiny_shapes``.
TINY_BACKBONES = ("mobilenet", "plain")


def tiny_head_channels(head_width: float) -> list:
    """Detection-block widths of ``yolo3_tiny_shapes``: ``head_width * (512, 256, 128)``, even, >= 2."""
    return [max(2, 2 * int(round(c * head_width / 2))) for c in (512, 256, 128)]


def _check_tiny_backbone(backbone: str) -> None:
    if backbone not in TINY_BACKBONES:
        raise ValueError("yolo3_tiny_shapes: backbone=%r is not one of %s" % (backbone, ", ".join(TINY_BACKBONES)))


def tiny_backbone_name(backbone: str, width: float) -> str:
    """Name of the backbone of ``yolo3_tiny_shapes(backbone=..., width=...)``: GluonCV's model-store name
    for MobileNet (``'mobilenet0.25'``), ``'plain<width>'`` for the plain stack (no store file)."""
    _check_tiny_backbone(backbone)
    return mobilenet_store_name(width) if backbone == "mobilenet" else "plain%r" % float(width)


@register_model("yolo3_tiny_shapes")
def yolo3_tiny_shapes(classes: Optional[Sequence[str]] = None, width: float = 0.25,
                      head_width: float = 0.125, backbone: str = "mobilenet", pretrained_base: bool = False,
                      pretrained: Any = False, norm_layer: Any = None, norm_kwargs: Optional[Dict[str, Any]] = None,
                      **kwargs) -> YOLOV3:
    """CPU-sized YOLOv3: a backbone of width ``width``, detection blocks ``head_width`` wide.

    Same heads, anchors, targets and losses as GluonCV's YOLOv3; only the widths shrink. The block
    widths are ``head_width * (512, 256, 128)`` rounded to even numbers (default 64, 32, 16). The
    backbone is ``mobilenet{width}`` (``backbone='mobilenet'``, GluonCV's MobileNet v1, which has
    ImageNet weights) or ``plain{width}`` (``backbone='plain'``,
    :mod:`gluon_bof.model.backbones.plain`, a stack of 3x3 conv cells that trains faster on a CPU,
    from scratch). Meant for small synthetic datasets at 160-320 pixels (the README demo trains
    the plain one at 160-224 and validates at 256). ``classes`` defaults to the six Shapes classes.
    """
    if classes is None:
        classes = SHAPES_CLASSES
    _check_tiny_backbone(backbone)
    return build_yolo3("%s%r" % (backbone, float(width)), tiny_head_channels(head_width), classes,
                       "yolo3_tiny_shapes", pretrained_base, pretrained, norm_layer, norm_kwargs, **kwargs)
