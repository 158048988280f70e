"""Train YOLOv3 with the Bag of Freebies (Zhang et al., 2019), GluonCV's flags and defaults.

Every freebie is its own flag, off by default as in GluonCV's ``train_yolo3.py``:
``--syncbn`` (synchronized BatchNorm), random training shapes (on unless ``--no-random-shape``),
``--lr-mode cosine --warmup-epochs N``, ``--label-smooth``, ``--mixup [--no-mixup-epochs N]``, plus
``--no-wd``. The paper's full recipe on VOC (Table 3)::

    python train_yolo3.py --network darknet53 --dataset voc --gpus 0,1,2,3,4,5,6,7 --batch-size 64 \\
        -j 32 --epochs 200 --lr-mode cosine --warmup-epochs 4 --syncbn --mixup --label-smooth --no-wd

The CPU demo on the embedded synthetic dataset is the README's first command. Resume a run exactly
with ``--resume auto`` (same ``--save-dir``). Evaluate a ``.params`` file with ``eval_yolo3.py``.
"""
import argparse
import logging
import os
import sys
from typing import Optional, Sequence

import mxnet as mx

from gluon_bof.data.pipelines import build_yolo3_train_loader
from gluon_bof.engine import build_trainer, fit
from gluon_bof.engine.cli import (add_dataset_arguments, add_device_arguments, add_run_arguments,
                                  check_run_arguments, contexts_from_args, datasets_from_args, final_evaluation)
from gluon_bof.engine.yolo3 import build_net, detection_picture, make_validate_fn, parse_random_shapes
from gluon_bof.lr_scheduler import build_lr_scheduler
from gluon_bof.metrics.results import save_results_json
from gluon_bof.model.yolo.task import YOLO3TrainTask


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """GluonCV's ``train_yolo3.py`` flags (same names and defaults) plus this package's additions."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("model and data")
    g.add_argument("--network", default="darknet53",
                   help="backbone: darknet53, mobilenet1.0, mobilenet0.25, or tiny (the CPU-sized "
                        "yolo3_tiny_shapes)")
    g.add_argument("--tiny-width", type=float, default=0.25, help="--network tiny: backbone width multiplier")
    g.add_argument("--tiny-head-width", type=float, default=0.125,
                   help="--network tiny: detection-block width, a fraction of GluonCV's 512/256/128")
    g.add_argument("--data-shape", type=int, default=416, help="square input size of validation (and of "
                   "training with --no-random-shape)")
    add_dataset_arguments(g)

    g = p.add_argument_group("devices")
    add_device_arguments(g)
    g.add_argument("--kvstore", default="local", help="local, device, or dist_sync (multi-machine)")
    g.add_argument("--batch-size", type=int, default=64, help="global batch size, split over the devices")

    g = p.add_argument_group("schedule")
    g.add_argument("--epochs", type=int, default=200)
    g.add_argument("--lr", type=float, default=0.001)
    g.add_argument("--lr-mode", default="step", choices=("step", "cosine", "poly", "linear", "constant"))
    g.add_argument("--lr-decay", type=float, default=0.1, help="step factor")
    g.add_argument("--lr-decay-period", type=int, default=0, help="decay every N epochs (0: use --lr-decay-epoch)")
    g.add_argument("--lr-decay-epoch", default="160,180", help="absolute epochs of the step decays")
    g.add_argument("--warmup-lr", type=float, default=0.0, help="LR at the start of warmup (used, unlike GluonCV)")
    g.add_argument("--warmup-epochs", type=int, default=0)
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--wd", type=float, default=0.0005)
    g.add_argument("--no-wd", action="store_true", help="no weight decay on BN gamma/beta and biases")

    g = p.add_argument_group("freebies")
    g.add_argument("--syncbn", action="store_true", help="synchronized BatchNorm over all devices")
    g.add_argument("--no-random-shape", action="store_true", help="train at --data-shape only")
    g.add_argument("--random-shapes", default="320:608", help="sizes of random-shape training, MIN:MAX "
                   "(steps of 32) or a list")
    g.add_argument("--random-shape-interval", type=int, default=10, help="batches per random shape")
    g.add_argument("--mixup", action="store_true", help="visually coherent mixup (paper section 3.1)")
    g.add_argument("--no-mixup-epochs", type=int, default=20, help="mixup off in the last N epochs")
    g.add_argument("--mixup-alpha", type=float, default=1.5)
    g.add_argument("--mixup-beta", type=float, default=1.5)
    g.add_argument("--label-smooth", action="store_true", help="sigmoid class label smoothing")
    for aug in ("color-jitter", "expand", "crop", "flip", "random-interp"):
        g.add_argument("--no-" + aug, action="store_true", help="switch off this augmentation")
    g.add_argument("--no-augment", action="store_true", help="switch off all five (the paper's "
                   "'- data augmentation' row)")

    add_run_arguments(p, save_interval=10, val_batch_help="default: --batch-size")
    args = p.parse_args(argv)
    check_run_arguments(p, args)
    if args.no_augment:
        args.no_color_jitter = args.no_expand = args.no_crop = args.no_flip = args.no_random_interp = True
    return args


def main(argv: Optional[Sequence[str]] = None) -> float:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ctxs = contexts_from_args(args)
    mx.random.seed(args.seed)
    train_set, val_set = datasets_from_args(args)
    widths = {"width": args.tiny_width, "head_width": args.tiny_head_width} if args.network == "tiny" else {}
    name, net = build_net(args.network, args.dataset, train_set.classes, args.syncbn, len(ctxs), **widths)
    _, eval_net = build_net(args.network, args.dataset, train_set.classes, False, 1, **widths)
    for block in (net, eval_net):
        block.initialize(ctx=ctxs)
        block(mx.nd.zeros((1, 3, args.data_shape, args.data_shape), ctx=ctxs[0]))  # resolve deferred shapes
    if not (args.syncbn and len(ctxs) > 1):  # SyncBN's per-device threads must not build graphs concurrently
        net.hybridize(static_alloc=True)
    save_dir = args.save_dir or os.path.join("runs", args.save_prefix + name)

    shapes = parse_random_shapes(args.random_shapes)
    train_loader = build_yolo3_train_loader(
        train_set, net.num_class, net.anchors, net.strides, args.batch_size, args.seed, args.num_workers,
        data_shape=args.data_shape, random_shape=not args.no_random_shape, shapes=shapes,
        shape_interval=args.random_shape_interval, mixup=args.mixup, mixup_alpha=args.mixup_alpha,
        mixup_beta=args.mixup_beta, label_smooth=args.label_smooth, color_jitter=not args.no_color_jitter,
        expand=not args.no_expand, crop=not args.no_crop, flip=not args.no_flip,
        random_interp=not args.no_random_interp)
    num_samples = args.num_samples if args.num_samples > 0 else len(train_set)
    scheduler = build_lr_scheduler(
        args.lr, args.epochs, max(1, num_samples // args.batch_size), args.lr_mode,
        warmup_epochs=args.warmup_epochs, warmup_lr=args.warmup_lr, lr_decay=args.lr_decay,
        lr_decay_epoch=[int(e) for e in args.lr_decay_epoch.split(",") if e.strip()],
        lr_decay_period=args.lr_decay_period)
    trainer = build_trainer(net, "sgd", {"wd": args.wd, "momentum": args.momentum, "lr_scheduler": scheduler},
                            kvstore=args.kvstore, no_wd=args.no_wd)
    validate = make_validate_fn(eval_net, net, val_set, args.dataset, args.val_splits or "val", name,
                                args.data_shape, args.val_batch_size or args.batch_size, ctxs)
    mixup_epochs = args.epochs - args.no_mixup_epochs

    result = fit(net, YOLO3TrainTask(), train_loader, trainer, ctxs, args.epochs, save_dir,
                 resume=args.resume or None, validate_fn=validate, val_interval=args.val_interval,
                 save_interval=args.save_interval, seed=args.seed, args=vars(args),
                 epoch_options=lambda epoch: {"mixup": bool(args.mixup and epoch < mixup_epochs)},
                 progress=not args.no_progress, log_interval=args.log_interval, write_results=save_results_json)
    final_map = final_evaluation(validate, net, trainer, args.epochs, save_dir, args.dataset, name,
                                 result.best_map)
    if args.picture > 0:
        path = detection_picture(eval_net, val_set, args.data_shape, os.path.join(save_dir, "detections.jpg"),
                                 ctxs, count=args.picture)
        print("detections drawn in %s" % path)
    return final_map


if __name__ == "__main__":
    main()
    sys.exit(0)
