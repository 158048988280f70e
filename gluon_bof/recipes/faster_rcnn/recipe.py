"""Faster R-CNN recipe: GluonCV's ``train_faster_rcnn.py`` flags and per-dataset defaults, the network
(frozen BN by default as GluonCV, trained or synchronized BN by flag), loaders with RPN targets made in
the workers, and validation in original image coordinates.

Validation follows GluonCV's ``validate``: detections clipped to the input, then detections and
ground truth multiplied by ``im_scale = original height / resized height``; VOC07 11-point mAP at
IoU 0.5 (voc, custom, shapes) or COCO mAP (coco).

Differences from GluonCV's script (kept on purpose):

* LR: :class:`gluon_bof.lr_scheduler.RCNNScheduler` gives every update GluonCV's per-iteration rate
  (warmup in epoch 0 only, decays at the first iteration of a decay epoch); ``--lr-mode cosine`` (the
  paper's row, absent from GluonCV's script) uses the same warmup over a cosine decay.
* Batches are padded to their largest image, not per device shard; validation batches hold one image
  per device (GluonCV's), clipped to the padded input when devices > 1.
"""
import argparse
from typing import Any, Dict, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np
from mxnet import gluon

from ...data.transforms.presets import FasterRCNNValTransform
from ...engine.evaluate import Detections, clip_to_input, predict_batch
from ...lr_scheduler import RCNNScheduler
from ...model import get_model
from ...model.store import MODEL_SHA1
from ...model.rcnn import RPNTargetTransform
from ..base import DetectorRecipe, ImageDetector
from ..cli import add_mixup_arguments, parse_decay_epochs
from ..train import add_shared_train_arguments
from ..weights import add_weight_arguments, check_weight_arguments, fill_pretrained_default
from .data import OriginalCoordinateLoader, build_faster_rcnn_train_loader, build_faster_rcnn_val_loader
from .task import FasterRCNNTrainTask

NETWORKS = ("resnet18_v1b", "resnet50_v1b", "resnet101_v1d", "mobilenet0.25", "mobilenet0.5")
NORM_LAYERS = ("frozen", "bn", "syncbn")

# GluonCV's per-dataset defaults: (VOC and the VOC-layout datasets, COCO).
DATASET_DEFAULTS = {
    "epochs": (20, 26), "lr": (0.001, 0.00125), "lr_decay_epoch": ("14,20", "17,23"),
    "lr_warmup": (-1, 1000), "wd": (5e-4, 1e-4)}


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


def to_original(ids: np.ndarray, scores: np.ndarray, boxes: np.ndarray, images: np.ndarray,
                extras: Sequence[np.ndarray]) -> Detections:
    """GluonCV's Faster R-CNN validation: clip to the input, then scale by ``im_scale`` (B,)."""
    ids, scores, boxes = clip_to_input(ids, scores, boxes, images, extras)
    scale = np.asarray(extras[0], dtype=np.float32).reshape(-1, 1, 1)
    return ids, scores, boxes * scale


def _last(short: Any) -> int:
    """GluonCV validates at ``net.short[-1]`` when ``short`` is a (min, max) range."""
    return int(short[-1]) if isinstance(short, (tuple, list)) else int(short)


class FasterRCNNRecipe(DetectorRecipe):
    """Faster R-CNN (GluonCV's ResNet models and the CPU-sized Shapes models)."""

    name = "faster_rcnn"
    train_script = "train_faster_rcnn.py"
    eval_script = "eval_faster_rcnn.py"

    def add_model_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--network", default="resnet50_v1b", choices=NETWORKS,
                           help="backbone; resnet18_v1b, mobilenet0.25 and mobilenet0.5 are the CPU-sized "
                                "faster_rcnn_{network}_shapes models (mobilenet0.25: the CPU recipe)")
        group.add_argument("--short", type=int, default=None, help="short side of the resized images "
                           "(default: the model's, 600 VOC, 800 COCO, 224 mobilenet, 256 resnet18_v1b)")
        group.add_argument("--max-size", type=int, default=None, help="cap of the long side (default: the model's)")

    def add_train_arguments(self, parser: argparse.ArgumentParser) -> None:
        g = parser.add_argument_group("model and data")
        self.add_model_arguments(g)
        g.add_argument("--norm-layer", default=None, choices=NORM_LAYERS,
                       help="BatchNorm: default is the model's (frozen for the GluonCV models); syncbn syncs "
                            "statistics over all devices")
        add_shared_train_arguments(
            parser, g, ("--kvstore", "--kv-store"),
            "local, device, nccl, or dist_sync (multi-machine); GluonCV's default is nccl (GPUs)",
            "global batch size, split over the devices (GluonCV: one image per device, so raise it with "
            "several devices)", 1, save_interval=1, val_batch_help="default: one image per device (GluonCV)")
        g = parser.add_argument_group("schedule (defaults: VOC / COCO)")
        g.add_argument("--epochs", type=int, default=None, help="20 / 26")
        g.add_argument("--lr", type=float, default=None, help="0.001 / 0.00125")
        g.add_argument("--lr-mode", default="step", choices=("step", "cosine", "poly", "linear", "constant"))
        g.add_argument("--lr-decay", type=float, default=0.1, help="step factor")
        g.add_argument("--lr-decay-epoch", default=None, help="absolute epochs of the step decays: 14,20 / 17,23 "
                       "(epochs at or past the end are never reached and are dropped, as in GluonCV)")
        g.add_argument("--lr-warmup", type=float, default=None,
                       help="warmup length in iterations: -1 (none) / 1000")
        g.add_argument("--lr-warmup-factor", type=float, default=1.0 / 3, help="warmup starts at lr * factor")
        g.add_argument("--momentum", type=float, default=0.9)
        g.add_argument("--wd", type=float, default=None, help="5e-4 / 1e-4")
        g = parser.add_argument_group("freebies")
        add_mixup_arguments(g)
        g.add_argument("--mixup-mode", default="weighted", choices=("weighted", "even"),
                       help="weighted: per-box weights in the losses (paper); even: GluonCV (ratio 0.5, losses x0.5)")
        g.add_argument("--label-smooth", type=float, default=0.0, metavar="EPS",
                       help="label smoothing epsilon of the R-CNN softmax head (0: off)")
        g.add_argument("--rpn-smoothl1-rho", type=float, default=1.0 / 9, help="Huber rho of the RPN box loss")
        g.add_argument("--rcnn-smoothl1-rho", type=float, default=1.0, help="Huber rho of the R-CNN box loss")
        g.add_argument("--no-flip", action="store_true", help="no random horizontal flip")
        g.add_argument("--no-augment", action="store_true", help="no data augmentation at all (flip is Faster "
                       "R-CNN's only one; the paper's Table 4 '- data augmentation' row)")
        add_weight_arguments(parser.add_argument_group("initial weights"))
        parser.add_argument("--disable-hybridization", action="store_true", help="run the network imperatively")

    def fill_defaults(self, args: argparse.Namespace) -> None:
        """GluonCV's per-dataset defaults for the schedule flags left unset (VOC layout / COCO)."""
        coco = int(args.dataset == "coco")
        for key, values in DATASET_DEFAULTS.items():
            if getattr(args, key, 0) is None:
                setattr(args, key, values[coco])
        fill_pretrained_default(args, self.backbone_store_name(args))

    def backbone_store_name(self, args: argparse.Namespace) -> Optional[str]:
        return args.network if args.network in MODEL_SHA1 else None

    def check_arguments(self, parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
        check_weight_arguments(parser, args, self.backbone_store_name(args))
        if getattr(args, "no_augment", False):
            args.no_flip = True
        for name in ("short", "max_size"):
            value = getattr(args, name, None)
            if value is not None and value < 1:
                parser.error("--%s: must be a positive integer, got %r" % (name.replace("_", "-"), value))
        if not hasattr(args, "lr_warmup"):
            return
        if not 0.0 <= args.label_smooth < 1.0:
            parser.error("--label-smooth: epsilon must be in [0, 1), got %r" % args.label_smooth)
        if not 0.0 < args.lr_warmup_factor <= 1.0:
            parser.error("--lr-warmup-factor: must be in (0, 1], got %r" % args.lr_warmup_factor)
        try:
            parse_decay_epochs(args.lr_decay_epoch, args.epochs)
        except ValueError as err:
            parser.error(str(err))

    def model_name(self, args: argparse.Namespace) -> str:
        return model_name(args.network, args.dataset)

    def _sizes(self, args: argparse.Namespace) -> Dict[str, int]:
        return {k: v for k, v in (("short", args.short), ("max_size", args.max_size)) if v is not None}

    def build_net(self, args: argparse.Namespace, classes: Sequence[str], norm_layer: Any,
                  norm_kwargs: Dict[str, Any], per_device_batch: int = 1) -> gluon.HybridBlock:
        kwargs: Dict[str, Any] = dict(self._sizes(args))
        if getattr(args, "norm_layer", None) in ("bn", "syncbn"):
            synced = norm_layer is gluon.contrib.nn.SyncBatchNorm
            kwargs["norm"] = "syncbn" if synced else "bn"
            if synced:
                kwargs["num_devices"] = int(norm_kwargs["num_devices"])
        elif getattr(args, "norm_layer", None) == "frozen":
            kwargs["norm"] = "frozen"
        if model_name(args.network, args.dataset).endswith("_shapes"):
            # ImageNet or fine-tuned weights: GluonCV's freezing (frozen BN, stem and first stage).
            kwargs["freeze_base"] = bool(getattr(args, "pretrained_base", False) or getattr(args, "finetune_from", None))
        net = get_model(self.model_name(args), classes=list(classes), pretrained_base=False,
                        per_device_batch_size=int(per_device_batch), **kwargs)
        # An image may hold more boxes than the RoI sampler's ground-truth capacity (aerial, medical
        # data), and mixup joins the boxes of two images; max_num_gt changes no parameter.
        most = int(getattr(args, "max_objects", 0) or 0) * (2 if getattr(args, "mixup", False) else 1)
        if most > net._max_num_gt:
            net = get_model(self.model_name(args), classes=list(classes), pretrained_base=False,
                            per_device_batch_size=int(per_device_batch), max_num_gt=most, **kwargs)
        return net

    def wants_syncbn(self, args: argparse.Namespace) -> bool:
        return getattr(args, "norm_layer", None) == "syncbn"

    def init_size(self, net: gluon.HybridBlock, args: argparse.Namespace) -> Tuple[int, int]:
        side = _last(net.short)
        return side, side

    def train_params(self, net: gluon.HybridBlock) -> Optional[gluon.ParameterDict]:
        """GluonCV's ``train_patterns``: only those parameters get gradients."""
        return net.collect_train_params()

    def train_loader(self, args: argparse.Namespace, dataset: Any, net: gluon.HybridBlock) -> Any:
        return build_faster_rcnn_train_loader(
            dataset, args.batch_size, args.seed, args.num_workers, short=net.short, max_size=net.max_size,
            mixup=args.mixup, mixup_alpha=args.mixup_alpha, mixup_beta=args.mixup_beta,
            rpn_target_fn=RPNTargetTransform.from_net(net), flip=not getattr(args, "no_flip", False),
            mixup_ratio=0.5 if args.mixup_mode == "even" else None)

    def lr_scheduler(self, args: argparse.Namespace, iters_per_epoch: int) -> Any:
        return RCNNScheduler(
            args.lr, args.epochs, iters_per_epoch, args.lr_mode, lr_decay=args.lr_decay,
            lr_decay_epoch=parse_decay_epochs(args.lr_decay_epoch, args.epochs),
            warmup_iters=float(args.lr_warmup), warmup_factor=args.lr_warmup_factor)

    def task(self, args: argparse.Namespace) -> FasterRCNNTrainTask:
        return FasterRCNNTrainTask(label_smoothing=args.label_smooth, mixup_mode=args.mixup_mode,
                                   rpn_rho=args.rpn_smoothl1_rho, rcnn_rho=args.rcnn_smoothl1_rho)

    def epoch_options(self, args: argparse.Namespace, task: Any, epoch: int) -> Dict[str, Any]:
        options = super().epoch_options(args, task, epoch)
        task.set_mixup(options["mixup"])  # 'even' mode: losses x0.5 while mixup is on
        return options

    def val_loader(self, args: argparse.Namespace, dataset: Any, net: gluon.HybridBlock, batch_size: int,
                   num_workers: int) -> Any:
        return OriginalCoordinateLoader(build_faster_rcnn_val_loader(
            dataset, short=_last(net.short), max_size=net.max_size, batch_size=batch_size,
            num_workers=num_workers))

    def postprocess(self, ids: np.ndarray, scores: np.ndarray, boxes: np.ndarray, images: np.ndarray,
                    extras: Sequence[np.ndarray]) -> Detections:
        return to_original(ids, scores, boxes, images, extras)

    def results_extra(self, args: argparse.Namespace, net: gluon.HybridBlock) -> Dict[str, Any]:
        return {"short": _last(net.short), "max_size": int(net.max_size)}

    def default_val_batch_size(self, args: argparse.Namespace, num_devices: int) -> int:
        return num_devices

    def image_detector(self, net: gluon.HybridBlock, args: argparse.Namespace,
                       ctxs: Sequence[mx.Context]) -> ImageDetector:
        transform = FasterRCNNValTransform(_last(net.short), net.max_size)

        def detect(image: np.ndarray):
            x, _, im_scale = transform(image, np.zeros((0, 6), np.float32))
            ids, scores, boxes = to_original(*predict_batch(net, x[None], ctxs[:1]), x[None],
                                             [np.array([im_scale], dtype=np.float32)])
            return ids[0], scores[0], boxes[0]

        return detect
