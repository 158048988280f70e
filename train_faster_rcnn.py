"""Train Faster R-CNN with the Bag of Freebies (Zhang et al., 2019), GluonCV's flags and defaults.

GluonCV's ``train_faster_rcnn.py`` offers only step LR, no label smoothing, and mixup as a fixed
0.5/0.5 blend with every loss halved. Here every freebie of the paper is a flag, off by default:
``--lr-mode cosine --lr-warmup N`` (iterations), ``--label-smooth EPS`` (softmax head, eq. 3),
``--mixup`` with ``lambda ~ Beta(--mixup-alpha, --mixup-beta)`` whose per-box weights reach the RPN
and R-CNN losses of their boxes (``--mixup-mode weighted``), or GluonCV's behaviour
(``--mixup-mode even``). BatchNorm is frozen as in GluonCV unless ``--norm-layer syncbn``.

Every freebie on top of GluonCV's VOC defaults (an example: the paper does not give the Faster R-CNN
mixup length or warmup)::

    python train_faster_rcnn.py --network resnet50_v1b --dataset voc --gpus 0,1,2,3 --batch-size 4 \\
        --lr-mode cosine --lr-warmup 1000 --label-smooth 0.1 --mixup --no-mixup-epochs 2

CPU recipe on the embedded synthetic dataset, from scratch, every freebie on (about 15 minutes on
2 shared CPU cores, VOC07 mAP 0.3+ on 100 val images; see docs/faster_rcnn.md)::

    OMP_NUM_THREADS=1 python train_faster_rcnn.py --network mobilenet0.25 --dataset shapes \\
        --shapes-train-size 1000 --shapes-val-size 100 --shapes-image-size 224:320 --batch-size 1 -j 1 \\
        --epochs 10 --lr 0.02 --lr-mode cosine --lr-warmup 200 --wd 1e-4 --label-smooth 0.1 \\
        --mixup --no-mixup-epochs 2

Resume a run exactly with ``--resume auto`` (same ``--save-dir``).
"""
import argparse
import logging
import os
import sys
from typing import Optional, Sequence

import mxnet as mx

from gluon_bof.data.pipelines import build_faster_rcnn_train_loader
from gluon_bof.engine import build_trainer, fit
from gluon_bof.engine.cli import (add_dataset_arguments, add_device_arguments, add_run_arguments,
                                  check_run_arguments, contexts_from_args, datasets_from_args, final_evaluation)
from gluon_bof.engine.faster_rcnn import NETWORKS, NORM_LAYERS, build_net, detection_picture, make_validate_fn
from gluon_bof.lr_scheduler import build_lr_scheduler
from gluon_bof.metrics.results import save_results_json
from gluon_bof.model.rcnn import RPNTargetTransform
from gluon_bof.model.rcnn.task import FasterRCNNTrainTask

# GluonCV's per-dataset defaults (spec 2.2): (VOC and the VOC-layout datasets, COCO).
DATASET_DEFAULTS = {
    "epochs": (20, 26), "lr": (0.001, 0.00125), "lr_decay_epoch": ("14,20", "17,23"),
    "lr_warmup": (-1, 1000), "wd": (5e-4, 1e-4)}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """GluonCV's ``train_faster_rcnn.py`` flags (same names and defaults) plus this package's additions."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("model and data")
    g.add_argument("--network", default="resnet50_v1b", choices=NETWORKS,
                   help="backbone; resnet18_v1b, mobilenet0.25 and mobilenet0.5 are the CPU-sized "
                        "faster_rcnn_{network}_shapes models (mobilenet0.25: the CPU recipe)")
    add_dataset_arguments(g)
    g.add_argument("--short", type=int, default=None, help="short side of the resized images (default: the model's, "
                   "600 VOC, 800 COCO, 256 resnet18_v1b)")
    g.add_argument("--max-size", type=int, default=None, help="cap of the long side (default: the model's)")
    g.add_argument("--norm-layer", default=None, choices=NORM_LAYERS,
                   help="BatchNorm: default is the model's (frozen for the GluonCV models); syncbn syncs "
                        "statistics over all devices")

    g = p.add_argument_group("devices")
    add_device_arguments(g)
    g.add_argument("--kvstore", "--kv-store", dest="kvstore", default="local",
                   help="local, device, nccl, or dist_sync (multi-machine); GluonCV's default is nccl (GPUs)")
    g.add_argument("--batch-size", type=int, default=1, help="global batch size, split over the devices "
                   "(GluonCV: one image per device, so raise it with several devices)")

    g = p.add_argument_group("schedule (defaults: VOC / COCO)")
    g.add_argument("--epochs", type=int, default=None, help="20 / 26")
    g.add_argument("--lr", type=float, default=None, help="0.001 / 0.00125")
    g.add_argument("--lr-mode", default="step", choices=("step", "cosine", "poly", "linear", "constant"))
    g.add_argument("--lr-decay", type=float, default=0.1, help="step factor")
    g.add_argument("--lr-decay-epoch", default=None, help="absolute epochs of the step decays: 14,20 / 17,23 "
                   "(epochs at or past the end are never reached, as in GluonCV)")
    g.add_argument("--lr-warmup", type=float, default=None, help="warmup length in iterations: -1 (none) / 1000")
    g.add_argument("--lr-warmup-factor", type=float, default=1.0 / 3, help="warmup starts at lr * factor")
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--wd", type=float, default=None, help="5e-4 / 1e-4")

    g = p.add_argument_group("freebies")
    g.add_argument("--mixup", action="store_true", help="visually coherent mixup (paper section 3.1)")
    g.add_argument("--no-mixup-epochs", type=int, default=20, help="mixup off in the last N epochs")
    g.add_argument("--mixup-alpha", type=float, default=1.5, help="Beta(alpha, beta) of the blend ratio (weighted)")
    g.add_argument("--mixup-beta", type=float, default=1.5)
    g.add_argument("--mixup-mode", default="weighted", choices=("weighted", "even"),
                   help="weighted: per-box weights in the losses (paper); even: GluonCV (ratio 0.5, losses x0.5)")
    g.add_argument("--label-smooth", type=float, default=0.0, metavar="EPS",
                   help="label smoothing epsilon of the R-CNN softmax head (0: off)")
    g.add_argument("--rpn-smoothl1-rho", type=float, default=1.0 / 9, help="Huber rho of the RPN box loss")
    g.add_argument("--rcnn-smoothl1-rho", type=float, default=1.0, help="Huber rho of the R-CNN box loss")

    add_run_arguments(p, save_interval=1, val_batch_help="default: one image per device (GluonCV)")
    p.add_argument("--disable-hybridization", action="store_true", help="run the network imperatively")
    args = p.parse_args(argv)
    check_run_arguments(p, args)
    coco = int(args.dataset == "coco")
    for key, values in DATASET_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, values[coco])
    if not 0.0 <= args.label_smooth < 1.0:
        p.error("--label-smooth: epsilon must be in [0, 1), got %r" % args.label_smooth)
    if not 0.0 < args.lr_warmup_factor <= 1.0:
        p.error("--lr-warmup-factor: must be in (0, 1], got %r" % args.lr_warmup_factor)
    return args


def decay_epochs(text: str, epochs: int) -> list:
    """Decay epochs before the end of training (GluonCV's default 14,20 with 20 epochs decays once)."""
    return [e for e in (int(v) for v in text.split(",") if v.strip()) if e < epochs]


def main(argv: Optional[Sequence[str]] = None) -> float:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ctxs = contexts_from_args(args)
    if args.batch_size < len(ctxs) or args.batch_size % len(ctxs):
        raise SystemExit("--batch-size %d: must be a positive multiple of the %d devices (GluonCV trains one "
                         "image per device; e.g. --batch-size %d)" % (args.batch_size, len(ctxs), len(ctxs)))
    mx.random.seed(args.seed)
    train_set, val_set = datasets_from_args(args)
    sizes = {k: v for k, v in (("short", args.short), ("max_size", args.max_size)) if v is not None}
    name, net = build_net(args.network, args.dataset, train_set.classes, args.norm_layer, len(ctxs),
                          args.batch_size // len(ctxs), **sizes)
    eval_net = net
    if args.norm_layer == "syncbn":  # SyncBN needs every device in each forward: evaluate a plain-BN twin
        _, eval_net = build_net(args.network, args.dataset, train_set.classes, "bn", 1, 1, **sizes)
    for block in (net, eval_net) if eval_net is not net else (net,):
        block.initialize(ctx=ctxs)
        side = int(block.short[-1] if isinstance(block.short, (tuple, list)) else block.short)
        block(mx.nd.zeros((1, 3, side, side), ctx=ctxs[0]))  # resolve deferred shapes
    train_params = net.collect_train_params()
    for param in net.collect_params().values():  # GluonCV: only train_patterns get gradients
        if param.name not in train_params:
            param.grad_req = "null"
    # With SyncBN on several devices the engine runs one thread per device, and two threads cannot
    # build a block's cached graph at once (MXNet's name scopes are not thread-safe): stay imperative.
    if not args.disable_hybridization and not (args.norm_layer == "syncbn" and len(ctxs) > 1):
        net.hybridize()
    save_dir = args.save_dir or os.path.join("runs", args.save_prefix + name)

    even = args.mixup_mode == "even"
    train_loader = build_faster_rcnn_train_loader(
        train_set, args.batch_size, args.seed, args.num_workers, short=net.short, max_size=net.max_size,
        mixup=args.mixup, mixup_alpha=args.mixup_alpha, mixup_beta=args.mixup_beta,
        rpn_target_fn=RPNTargetTransform.from_net(net), mixup_ratio=0.5 if even else None)
    num_samples = args.num_samples if args.num_samples > 0 else len(train_set)
    lr_warmup = max(int(args.lr_warmup), 0)
    scheduler = build_lr_scheduler(
        args.lr, args.epochs, max(1, num_samples // args.batch_size), args.lr_mode, warmup_iters=lr_warmup,
        warmup_lr=args.lr * args.lr_warmup_factor, lr_decay=args.lr_decay,
        lr_decay_epoch=decay_epochs(args.lr_decay_epoch, args.epochs))
    trainer = build_trainer(net, "sgd", {"wd": args.wd, "momentum": args.momentum, "lr_scheduler": scheduler},
                            kvstore=args.kvstore, params=train_params)
    task = FasterRCNNTrainTask(label_smoothing=args.label_smooth, mixup_mode=args.mixup_mode,
                               rpn_rho=args.rpn_smoothl1_rho, rcnn_rho=args.rcnn_smoothl1_rho)
    validate = make_validate_fn(eval_net, net, val_set, args.dataset, args.val_splits or "val", name,
                                args.val_batch_size or len(ctxs), ctxs,
                                hybridize=not args.disable_hybridization)
    mixup_epochs = args.epochs - args.no_mixup_epochs

    def epoch_options(epoch: int) -> dict:
        enabled = bool(args.mixup and epoch < mixup_epochs)
        task.set_mixup(enabled)  # 'even' mode: losses x0.5 while mixup is on
        return {"mixup": enabled}

    result = fit(net, task, train_loader, trainer, ctxs, args.epochs, save_dir, resume=args.resume or None,
                 validate_fn=validate, val_interval=args.val_interval, save_interval=args.save_interval,
                 seed=args.seed, args=vars(args), epoch_options=epoch_options, progress=not args.no_progress,
                 log_interval=args.log_interval, write_results=save_results_json)
    final_map = final_evaluation(validate, net, trainer, args.epochs, save_dir, args.dataset, name,
                                 result.best_map)
    if args.picture > 0:
        path = detection_picture(eval_net, val_set, os.path.join(save_dir, "detections.jpg"), ctxs,
                                 count=args.picture)
        print("detections drawn in %s" % path)
    return final_map


if __name__ == "__main__":
    main()
    sys.exit(0)
