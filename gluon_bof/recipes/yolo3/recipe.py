"""YOLOv3 recipe: GluonCV's ``train_yolo3.py`` flags, network, loaders, schedule and validation protocol.

Validation follows GluonCV: square resize to ``--data-shape``, NMS 0.45 over the top 400 candidates,
100 detections per image, boxes clipped to the input; VOC07 11-point mAP at IoU 0.5 in resized
coordinates (voc, custom, shapes), or COCO mAP rescaled to original coordinates.
"""
import argparse
from typing import Any, Dict, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np
from mxnet import gluon

from ...data.transforms.presets import YOLO3ValTransform
from ...engine.evaluate import predict_batch
from ...lr_scheduler import build_lr_scheduler
from ...model import get_model
from ..base import DetectorRecipe, ImageDetector
from ..cli import add_mixup_arguments, parse_decay_epochs
from ..train import add_shared_train_arguments
from ..weights import add_weight_arguments, check_weight_arguments
from ...model.yolo.zoo import TINY_BACKBONES, tiny_backbone_name
from .data import STRIDE, build_yolo3_train_loader, build_yolo3_val_loader, parse_random_shapes
from .task import YOLO3TrainTask

NETWORKS = ("darknet53", "mobilenet1.0", "mobilenet0.25", "tiny")
AUGMENTATIONS = ("color-jitter", "expand", "crop", "flip", "random-interp")


def model_name(network: str, dataset: str) -> str:
    """GluonCV's model name, ``yolo3_{network}_{voc|coco|custom}``; ``tiny`` is ``yolo3_tiny_shapes``."""
    if network == "tiny":
        return "yolo3_tiny_shapes"
    return "yolo3_%s_%s" % (network, dataset if dataset in ("voc", "coco") else "custom")


class YOLO3Recipe(DetectorRecipe):
    """YOLOv3 (darknet53, mobilenet1.0, mobilenet0.25, and the CPU-sized ``tiny``)."""

    name = "yolo3"
    train_script = "train_yolo3.py"
    eval_script = "eval_yolo3.py"
    static_alloc = True
    separate_eval_net = True

    def add_model_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--network", default="darknet53", choices=NETWORKS,
                           help="backbone: darknet53, mobilenet1.0, mobilenet0.25, or tiny (the CPU-sized "
                                "yolo3_tiny_shapes)")
        group.add_argument("--tiny-backbone", default="mobilenet", choices=TINY_BACKBONES,
                           help="--network tiny: mobilenet (GluonCV's MobileNet v1, has ImageNet weights) or plain "
                                "(a stack of 3x3 conv cells, faster on a CPU, trained from scratch)")
        group.add_argument("--tiny-width", type=float, default=0.25,
                           help="--network tiny: backbone width multiplier")
        group.add_argument("--tiny-head-width", type=float, default=0.125,
                           help="--network tiny: detection-block width, a fraction of GluonCV's 512/256/128")
        group.add_argument("--data-shape", type=int, default=416, help="square input size of validation (and "
                           "of training with --no-random-shape); a multiple of 32")

    def add_train_arguments(self, parser: argparse.ArgumentParser) -> None:
        g = parser.add_argument_group("model and data")
        self.add_model_arguments(g)
        add_shared_train_arguments(
            parser, g, ("--kvstore",), "local, device, or dist_sync (multi-machine)",
            "global batch size, split over the devices", 64, save_interval=10,
            val_batch_help="default: --batch-size")
        g = parser.add_argument_group("schedule")
        g.add_argument("--epochs", type=int, default=200)
        g.add_argument("--lr", type=float, default=0.001)
        g.add_argument("--lr-mode", default="step", choices=("step", "cosine", "poly", "linear", "constant"))
        g.add_argument("--lr-decay", type=float, default=0.1, help="step factor")
        g.add_argument("--lr-decay-period", type=int, default=0,
                       help="decay every N epochs (0: use --lr-decay-epoch)")
        g.add_argument("--lr-decay-epoch", default="160,180", help="absolute epochs of the step decays (epochs "
                       "at or past the end are never reached and are dropped, as in GluonCV)")
        g.add_argument("--warmup-lr", type=float, default=0.0, help="LR at the start of warmup (used, unlike "
                       "GluonCV)")
        g.add_argument("--warmup-epochs", type=int, default=0)
        g.add_argument("--momentum", type=float, default=0.9)
        g.add_argument("--wd", type=float, default=0.0005)
        g.add_argument("--no-wd", action="store_true", help="no weight decay on BN gamma/beta and biases")
        g = parser.add_argument_group("freebies")
        g.add_argument("--syncbn", action="store_true", help="synchronized BatchNorm over all devices")
        g.add_argument("--no-random-shape", action="store_true", help="train at --data-shape only")
        g.add_argument("--random-shapes", default="320:608", help="sizes of random-shape training, MIN:MAX "
                       "(steps of 32) or a list")
        g.add_argument("--random-shape-interval", type=int, default=10, help="batches per random shape")
        add_mixup_arguments(g)
        g.add_argument("--mixup-mode", default="weighted", choices=("weighted", "even"),
                       help="weighted: ratio from Beta(--mixup-alpha, --mixup-beta) and per-box loss weights "
                            "(the paper's B(a,b) rows); even: ratio 0.5, no per-box weights (0.5:0.5 evenly)")
        g.add_argument("--label-smooth", action="store_true", help="sigmoid class label smoothing")
        for aug in AUGMENTATIONS:
            g.add_argument("--no-" + aug, action="store_true", help="switch off this augmentation")
        g.add_argument("--no-augment", action="store_true", help="switch off all five (the paper's "
                       "'- data augmentation' row)")
        add_weight_arguments(parser.add_argument_group("initial weights"))

    def backbone_store_name(self, args: argparse.Namespace) -> Optional[str]:
        if args.network == "tiny":
            return tiny_backbone_name(args.tiny_backbone, args.tiny_width)
        return args.network

    def check_arguments(self, parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
        check_weight_arguments(parser, args, self.backbone_store_name(args))
        if args.data_shape % STRIDE:
            parser.error("--data-shape %d: must be a multiple of 32 (the stride of YOLOv3's deepest head), "
                         "e.g. %d" % (args.data_shape, max(STRIDE, round(args.data_shape / STRIDE) * STRIDE)))
        if args.network == "tiny" and not (args.tiny_width > 0 and args.tiny_head_width > 0):
            parser.error("--tiny-width/--tiny-head-width: must be > 0")
        if hasattr(args, "random_shapes"):
            try:
                parse_random_shapes(args.random_shapes)
                if args.warmup_epochs < 0 or args.lr_decay_period < 0:
                    raise ValueError("--warmup-epochs and --lr-decay-period must be >= 0")
                if args.lr_decay_period == 0 and args.lr_mode == "step":
                    parse_decay_epochs(args.lr_decay_epoch, args.epochs)
            except ValueError as err:
                parser.error(str(err))
        if getattr(args, "no_augment", False):
            for aug in AUGMENTATIONS:
                setattr(args, "no_" + aug.replace("-", "_"), True)

    def model_name(self, args: argparse.Namespace) -> str:
        return model_name(args.network, args.dataset)

    def _tiny_kwargs(self, args: argparse.Namespace) -> Dict[str, Any]:
        if args.network != "tiny":
            return {}
        return {"width": args.tiny_width, "head_width": args.tiny_head_width, "backbone": args.tiny_backbone}

    def build_net(self, args: argparse.Namespace, classes: Sequence[str], norm_layer: Any,
                  norm_kwargs: Dict[str, Any], per_device_batch: int = 1) -> gluon.HybridBlock:
        return get_model(self.model_name(args), classes=list(classes), pretrained_base=False,
                         norm_layer=norm_layer, norm_kwargs=norm_kwargs, **self._tiny_kwargs(args))

    def wants_syncbn(self, args: argparse.Namespace) -> bool:
        return bool(args.syncbn)

    def init_size(self, net: gluon.HybridBlock, args: argparse.Namespace) -> Tuple[int, int]:
        return args.data_shape, args.data_shape

    def train_loader(self, args: argparse.Namespace, dataset: Any, net: gluon.HybridBlock) -> Any:
        return build_yolo3_train_loader(
            dataset, net.num_class, net.anchors, net.strides, args.batch_size, args.seed, args.num_workers,
            data_shape=args.data_shape, random_shape=not args.no_random_shape,
            shapes=parse_random_shapes(args.random_shapes), shape_interval=args.random_shape_interval,
            mixup=args.mixup, mixup_alpha=args.mixup_alpha, mixup_beta=args.mixup_beta,
            label_smooth=args.label_smooth, color_jitter=not args.no_color_jitter, expand=not args.no_expand,
            crop=not args.no_crop, flip=not args.no_flip, random_interp=not args.no_random_interp,
            mixup_mode=getattr(args, "mixup_mode", "weighted"))

    def lr_scheduler(self, args: argparse.Namespace, iters_per_epoch: int) -> Any:
        return build_lr_scheduler(
            args.lr, args.epochs, iters_per_epoch, args.lr_mode, warmup_epochs=args.warmup_epochs,
            warmup_lr=args.warmup_lr, lr_decay=args.lr_decay,
            lr_decay_epoch=parse_decay_epochs(args.lr_decay_epoch, args.epochs),
            lr_decay_period=args.lr_decay_period)

    def task(self, args: argparse.Namespace) -> YOLO3TrainTask:
        return YOLO3TrainTask()

    def val_loader(self, args: argparse.Namespace, dataset: Any, net: gluon.HybridBlock, batch_size: int,
                   num_workers: int) -> Any:
        return build_yolo3_val_loader(dataset, args.data_shape, batch_size=batch_size, num_workers=num_workers)

    def metric_data_shape(self, args: argparse.Namespace) -> Optional[Tuple[int, int]]:
        return args.data_shape, args.data_shape

    def results_extra(self, args: argparse.Namespace, net: gluon.HybridBlock) -> Dict[str, Any]:
        return {"data_shape": args.data_shape}

    def default_val_batch_size(self, args: argparse.Namespace, num_devices: int) -> int:
        return args.batch_size or 8

    def prepare_for_inference(self, net: gluon.HybridBlock, args: argparse.Namespace) -> None:
        net.set_nms(nms_thresh=0.45, nms_topk=400, post_nms=100)
        net.hybridize()

    def image_detector(self, net: gluon.HybridBlock, args: argparse.Namespace,
                       ctxs: Sequence[mx.Context]) -> ImageDetector:
        transform = YOLO3ValTransform(args.data_shape, args.data_shape)
        size = args.data_shape

        def detect(image: np.ndarray):
            x, _ = transform(image, np.zeros((0, 6), np.float32))
            ids, scores, boxes = predict_batch(net, x[None], ctxs[:1])
            h, w = image.shape[:2]
            return ids[0], scores[0], boxes[0] * np.array([w / size, h / size] * 2, dtype=np.float32)

        return detect
