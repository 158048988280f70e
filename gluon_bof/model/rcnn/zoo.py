"""Faster R-CNN constructors under GluonCV's model-zoo names, plus CPU-sized Shapes models (ResNet-18, MobileNet).

``pretrained_base``: False; True loads GluonCV's ImageNet backbone file from the model store (SHA-1
checked, nothing downloaded); a path loads that file (see ``gluon_bof.model.pretrained``). Every
net records its backbone, so the weights can also be loaded after ``initialize`` with
``load_pretrained_base(net, True)``. Whole GluonCV zoo files load with ``net.load_parameters(path)``.

Freezing with ImageNet weights follows GluonCV: BatchNorm frozen (``use_global_stats``, not trained)
and the stride-4 part of the backbone not trained (ResNet ``conv1`` and ``layer1``; MobileNet's stem
and units 1-2). The CPU-sized Shapes models, meant to train from scratch, train everything with
trained BN unless ``freeze_base=True`` (the default when ``pretrained_base`` is given).

BatchNorm: ``norm='frozen'`` (default, GluonCV's choice: ``use_global_stats`` and BN excluded from
``train_patterns``), ``'syncbn'`` (``mxnet.gluon.contrib.nn.SyncBatchNorm`` over ``num_devices``,
statistics updated and BN of the trained stages optimised) or ``'bn'`` (per-device BatchNorm, trained).
Parameter names are identical in all three, so files load across them.
"""
import re
from typing import Any, Callable, Optional, Sequence

from mxnet.gluon import nn

from ..backbones import resnetv1b
from ..backbones.mobilenet import mobilenet_features, mobilenet_store_name
from ...data.class_names import COCO_CLASSES, SHAPES_CLASSES, VOC_CLASSES
from ..pretrained import attach_backbone, load_pretrained_base
from ..zoo import register_model
from .faster_rcnn import FasterRCNN

# GluonCV's: RPN, dense heads, and the convolutions of stages 2-4 (conv1, layer1 and BN frozen).
FROZEN_BN_TRAIN_PATTERNS = "|".join([".*dense", ".*rpn", ".*down(2|3|4)_conv", ".*layers(2|3|4)_conv"])
TRAINED_BN_TRAIN_PATTERNS = "|".join([
    ".*dense", ".*rpn", ".*down(2|3|4)_(conv|batchnorm|syncbatchnorm)",
    ".*layers(2|3|4)_(conv|batchnorm|syncbatchnorm)"])

ALL_TRAIN_PATTERNS = "(?!.*(running_mean|running_var|anchor_))"  # every learnable weight

_VOC = dict(short=600, max_size=1000, nms_thresh=0.3, nms_topk=400, post_nms=100, clip=None,
            rpn_test_post_nms=300, rpn_min_size=16)
_COCO = dict(short=800, max_size=1333, nms_thresh=0.5, nms_topk=-1, post_nms=-1, clip=4.14,
             rpn_test_post_nms=1000, rpn_min_size=1)
_COMMON = dict(roi_size=(14, 14), stride=16, rpn_channel=1024, base_size=16, scales=(2, 4, 8, 16, 32),
               ratios=(0.5, 1, 2), alloc_size=(128, 128), rpn_nms_thresh=0.7,
               rpn_train_pre_nms=12000, rpn_train_post_nms=2000, rpn_test_pre_nms=6000,
               num_sample=128, pos_iou_thresh=0.5, pos_ratio=0.25, max_num_gt=100)


def _norm_settings(norm: str, num_devices: Optional[int]):
    """(backbone kwargs, train_patterns) for a BatchNorm choice."""
    if norm == "frozen":
        return dict(use_global_stats=True), FROZEN_BN_TRAIN_PATTERNS
    if norm == "bn":
        return dict(norm_layer=nn.BatchNorm), TRAINED_BN_TRAIN_PATTERNS
    if norm == "syncbn":
        from mxnet.gluon.contrib.nn import SyncBatchNorm
        if not num_devices or num_devices < 1:
            raise ValueError("norm='syncbn' needs num_devices >= 1 (the number of devices that "
                             "share batch statistics), got %r" % (num_devices,))
        return (dict(norm_layer=SyncBatchNorm, norm_kwargs={"num_devices": int(num_devices)}),
                TRAINED_BN_TRAIN_PATTERNS)
    raise ValueError("norm must be 'frozen', 'bn' or 'syncbn', got %r" % (norm,))


def build_faster_rcnn(backbone: Callable, classes: Sequence[str], norm: str = "frozen",
                      num_devices: Optional[int] = None, pretrained_base: Any = False,
                      **kwargs) -> FasterRCNN:
    """Faster R-CNN on a ResNet v1b/v1d: ``conv1..layer3`` as features, ``layer4`` per RoI.

    ``backbone.__name__`` is the GluonCV model-store name of its ImageNet file (``resnet50_v1b``).
    """
    backbone_kwargs, train_patterns = _norm_settings(norm, num_devices)
    base = backbone(**backbone_kwargs)
    features = nn.HybridSequential()
    for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3"):
        features.add(getattr(base, name))
    top_features = nn.HybridSequential()
    top_features.add(base.layer4)
    kwargs.setdefault("train_patterns", train_patterns)
    net = attach_backbone(FasterRCNN(features, top_features, classes, **kwargs), backbone.__name__, base)
    if pretrained_base:
        load_pretrained_base(net, pretrained_base, "%s: pretrained_base" % backbone.__name__)
    return net


def _settings(dataset: dict, kwargs: dict, common: Optional[dict] = None) -> dict:
    """``common`` (GluonCV's shared settings) < ``dataset`` < caller's ``kwargs``."""
    if kwargs.pop("pretrained", False):
        raise ValueError("pretrained=True: gluon_bof downloads no weights; build the model, then "
                         "net.load_parameters('<gluoncv zoo or own .params file>')")
    kwargs.pop("ctx", None)
    kwargs.pop("root", None)
    merged = dict(_COMMON if common is None else common)
    merged.update(dataset)
    merged.update(kwargs)
    return merged


@register_model("faster_rcnn_resnet50_v1b_voc")
def faster_rcnn_resnet50_v1b_voc(pretrained_base: bool = False, norm: str = "frozen",
                                 num_devices: Optional[int] = None, **kwargs) -> FasterRCNN:
    """GluonCV's ``faster_rcnn_resnet50_v1b_voc`` (20 classes, short 600, max 1000)."""
    return build_faster_rcnn(resnetv1b.resnet50_v1b, kwargs.pop("classes", VOC_CLASSES), norm,
                             num_devices, pretrained_base, **_settings(_VOC, kwargs))


@register_model("faster_rcnn_resnet50_v1b_coco")
def faster_rcnn_resnet50_v1b_coco(pretrained_base: bool = False, norm: str = "frozen",
                                  num_devices: Optional[int] = None, **kwargs) -> FasterRCNN:
    """GluonCV's ``faster_rcnn_resnet50_v1b_coco`` (80 classes, short 800, max 1333, clip 4.14)."""
    return build_faster_rcnn(resnetv1b.resnet50_v1b, kwargs.pop("classes", COCO_CLASSES), norm,
                             num_devices, pretrained_base, **_settings(_COCO, kwargs))


@register_model("faster_rcnn_resnet101_v1d_coco")
def faster_rcnn_resnet101_v1d_coco(pretrained_base: bool = False, norm: str = "frozen",
                                   num_devices: Optional[int] = None, **kwargs) -> FasterRCNN:
    """GluonCV's ``faster_rcnn_resnet101_v1d_coco``."""
    return build_faster_rcnn(resnetv1b.resnet101_v1d, kwargs.pop("classes", COCO_CLASSES), norm,
                             num_devices, pretrained_base, **_settings(_COCO, kwargs))


# Settings shared by the CPU-sized Shapes models (each adds its input size, RPN width, anchor scales
# and test pre-NMS count): stride-16 features, 7x7 RoIs, light proposal counts and 64 RoIs per image.
_SHAPES_SETTINGS = dict(nms_thresh=0.45, nms_topk=200, post_nms=100, clip=4.14, roi_size=(7, 7), stride=16,
                        base_size=16, ratios=(0.5, 1, 2), alloc_size=(64, 64), rpn_nms_thresh=0.7,
                        rpn_train_pre_nms=1000, rpn_train_post_nms=300, rpn_test_post_nms=100,
                        rpn_min_size=4, num_sample=64, pos_iou_thresh=0.5, pos_ratio=0.25, max_num_gt=32)


@register_model("faster_rcnn_resnet18_v1b_shapes")
def faster_rcnn_resnet18_v1b_shapes(pretrained_base: Any = False, norm: Optional[str] = None,
                                    num_devices: Optional[int] = None, freeze_base: Optional[bool] = None,
                                    **kwargs) -> FasterRCNN:
    """CPU-sized model for ShapesDetection: ResNet-18, short side 256, light RPN and sampling.

    Short 256 / max 384 gives a 16 x 24 feature map; 256-channel RPN, 7x7 RoIAlign, 3 anchor scales
    (32-128 px), 1000/300 train and 500/100 test proposals, 64 RoIs per image. Meant to be trained
    from scratch, so by default BN is trained (``norm='bn'``) and so is every layer, the stem and
    layer1 included (GluonCV's patterns would leave them at their random initialisation).
    With ``freeze_base`` (default: whether ``pretrained_base`` is given) GluonCV's rules for ImageNet
    weights apply instead: ``norm='frozen'`` by default and conv1, layer1 and BN not trained.
    """
    classes = kwargs.pop("classes", SHAPES_CLASSES)
    freeze_base = bool(pretrained_base) if freeze_base is None else bool(freeze_base)
    norm = norm or ("frozen" if freeze_base else "bn")
    settings = dict(_SHAPES_SETTINGS, short=256, max_size=384, rpn_channel=256, scales=(2, 4, 8),
                    rpn_test_pre_nms=500)
    settings = _settings(settings, kwargs, common={})
    if not freeze_base:
        # No ImageNet weights to preserve: train every layer, stem and layer1 included.
        settings.setdefault("train_patterns", ALL_TRAIN_PATTERNS)
    return build_faster_rcnn(resnetv1b.resnet18_v1b, classes, norm, num_devices, pretrained_base, **settings)


# MobileNet v1 children: [:69] is the stem and units 1-11 (stride 16), [69:81] units 12-13 (stride 32);
# [:15] (stem, units 1-2) is the stride-4 part frozen with ImageNet weights, like ResNet's conv1 + layer1.
_MOBILENET_STRIDE4, _MOBILENET_STRIDE16, _MOBILENET_END = 15, 69, 81


def mobilenet_train_patterns(frozen_block: nn.Block, frozen_bn: bool) -> str:
    """Regex of the trained parameters of a MobileNet Faster R-CNN with ImageNet weights: every
    learnable weight except those of ``frozen_block`` and, with ``frozen_bn``, BatchNorm's."""
    names = "|".join(re.escape(name) for name in frozen_block.collect_params())
    bn = "(?!.*batchnorm)" if frozen_bn else ""
    return "(?!(?:%s)$)%s%s" % (names, bn, ALL_TRAIN_PATTERNS)


def _mobilenet_norm(norm: str, num_devices: Optional[int]):
    """``(norm_layer, norm_kwargs)`` of :func:`mobilenet_features` for a BatchNorm choice."""
    backbone_kwargs, _ = _norm_settings(norm, num_devices)
    if "use_global_stats" in backbone_kwargs:
        return nn.BatchNorm, {"use_global_stats": True}
    return backbone_kwargs["norm_layer"], backbone_kwargs.get("norm_kwargs", {})


class _DenseRoIHead(nn.HybridBlock):
    """Per-RoI head of two ReLU Dense layers on the flattened crop (Detectron's "2fc" head).

    Input ``(R, C, h, w)`` RoIAlign crops; output ``(R, units, 1, 1)`` so that the detector's global
    average pooling leaves it unchanged.
    """

    def __init__(self, units: int, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.fc1 = nn.Dense(units, activation="relu")
            self.fc2 = nn.Dense(units, activation="relu")

    def hybrid_forward(self, F, x):
        return self.fc2(self.fc1(x)).reshape((0, 0, 1, 1))


def faster_rcnn_mobilenet_shapes(width: float = 0.25, pretrained_base: Any = False, norm: Optional[str] = None,
                                 num_devices: Optional[int] = None, head: str = "fc",
                                 freeze_base: Optional[bool] = None, **kwargs) -> FasterRCNN:
    """CPU-sized Faster R-CNN for ShapesDetection on a MobileNet v1 of width ``width``, from scratch.

    MobileNet units 1-11 (stride 16, ``int(512 * width)`` channels) are the shared features. The
    per-RoI head runs on every 7x7 RoIAlign crop: ``head='fc'`` (default) is two ReLU Dense layers of
    ``int(1024 * width)`` units on the flattened crop; ``head='conv'`` is GluonCV's ResNet layout with
    MobileNet's last stage (units 12-13, one stride-2 unit) and global average pooling. Either costs
    about 1.7 MMAC per RoI at ``width=0.25``, against about 130 MMAC for ResNet-18's ``layer4``; that
    is what lets from-scratch training fit in minutes on a CPU. ``'fc'`` keeps the crop's spatial
    layout and measured the better mAP (docs/faster_rcnn.md).

    Defaults: short side 224 / max 320 (objects of 8-50 % of the short side are 18-112 px), anchors
    of 16-128 px (scales 1, 2, 4, 8 x base 16, ratios 0.5, 1, 2), 128-channel RPN, 1000/300 train and
    300/100 test proposals, 64 sampled RoIs per image, BatchNorm trained and every layer trained.
    Any setting can be overridden by keyword, as for the GluonCV models.

    With ``freeze_base`` (default: whether ``pretrained_base`` is given): ``norm='frozen'`` by default,
    and the stem, MobileNet units 1-2 and frozen BN are not trained (GluonCV's ResNet rule).
    """
    classes = kwargs.pop("classes", SHAPES_CLASSES)
    freeze_base = bool(pretrained_base) if freeze_base is None else bool(freeze_base)
    norm = norm or ("frozen" if freeze_base else "bn")
    settings = dict(_SHAPES_SETTINGS, short=224, max_size=320, rpn_channel=128, scales=(1, 2, 4, 8),
                    rpn_test_pre_nms=300)
    settings = _settings(settings, kwargs, common={})
    norm_layer, norm_kwargs = _mobilenet_norm(norm, num_devices)
    base = mobilenet_features(width, norm_layer, norm_kwargs)
    if freeze_base:
        settings.setdefault("train_patterns", mobilenet_train_patterns(base[:_MOBILENET_STRIDE4], norm == "frozen"))
    settings.setdefault("train_patterns", ALL_TRAIN_PATTERNS)
    features = base[:_MOBILENET_STRIDE16]
    if head == "conv":
        top_features = base[_MOBILENET_STRIDE16:_MOBILENET_END]
    elif head == "fc":
        top_features = _DenseRoIHead(int(1024 * width))
    else:
        raise ValueError("faster_rcnn_mobilenet_shapes: head must be 'conv' (MobileNet units 12-13) or "
                         "'fc' (two Dense layers), got %r" % (head,))
    net = attach_backbone(FasterRCNN(features, top_features, classes, **settings), mobilenet_store_name(width),
                          base, "features")
    if pretrained_base:
        load_pretrained_base(net, pretrained_base, "faster_rcnn_mobilenet%g_shapes: pretrained_base" % width)
    return net


@register_model("faster_rcnn_mobilenet0.25_shapes")
def faster_rcnn_mobilenet0_25_shapes(**kwargs) -> FasterRCNN:
    """:func:`faster_rcnn_mobilenet_shapes` at width 0.25 (128-channel features, 256-channel head)."""
    return faster_rcnn_mobilenet_shapes(0.25, **kwargs)


@register_model("faster_rcnn_mobilenet0.5_shapes")
def faster_rcnn_mobilenet0_5_shapes(**kwargs) -> FasterRCNN:
    """:func:`faster_rcnn_mobilenet_shapes` at width 0.5 (256-channel features, 512-channel head)."""
    return faster_rcnn_mobilenet_shapes(0.5, **kwargs)

