"""Command-line flags shared by every training and evaluation script, and the one place that checks them.

The flags keep GluonCV's names. Each recipe adds its own model, schedule and freebie flags; this
module owns the dataset, device and run flags, and :func:`check_common_arguments` turns every bad
value into an argparse usage error (exit code 2, one line naming the flag) before anything is built.
"""
import argparse
import logging
import os
import sys
import traceback
from typing import Any, Callable, List, Tuple

import mxnet as mx

from ..data.factory import DATASETS, build_datasets
from ..engine.checkpoint import CheckpointError, resolve_resume
from ..engine.context import parse_contexts

_log = logging.getLogger("gluon_bof.recipes")


def add_dataset_arguments(group: argparse._ArgumentGroup, train: bool = True) -> None:
    """``--dataset`` and where its data live; with ``train``, also the train split, ``--num-samples``."""
    group.add_argument("--dataset", default="voc", choices=DATASETS,
                       help="voc (07+12 trainval / 07 test), coco, shapes (embedded synthetic), custom (VOC layout)")
    group.add_argument("--dataset-root", default=None,
                       help="dataset folder (default GluonCV's ~/.mxnet/datasets/...)")
    group.add_argument("--classes", default=None,
                       help="comma-separated class names, matched to the annotations ignoring case and reported "
                            "as spelled here (--dataset custom: default all names in the annotations, sorted)")
    group.add_argument("--image-ext", default=None,
                       help="extension of the images in JPEGImages/ (e.g. .png), or auto: find each image by its "
                            "id among .jpg .jpeg .png .bmp .tif .tiff (default: .jpg for voc, auto for custom)")
    if train:
        group.add_argument("--train-splits", default=None,
                           help="e.g. 2007_trainval,2012_trainval or instances_train2017")
    group.add_argument("--val-splits", default=None, help="e.g. 2007_test or instances_val2017")
    if train:
        group.add_argument("--shapes-train-size", type=int, default=2000, help="images of the shapes train split")
    group.add_argument("--shapes-val-size", type=int, default=300, help="images of the shapes val split")
    group.add_argument("--shapes-image-size", default="320:500", metavar="MIN:MAX",
                       help="side lengths of shapes images in pixels (objects scale with the image, so "
                            "small images only save drawing time for small network inputs)")
    if train:
        group.add_argument("--num-samples", type=int, default=-1,
                           help="images per epoch for the LR schedule (-1: the training set size)")
    group.add_argument("--num-workers", "-j", dest="num_workers", type=int, default=4,
                       help="data worker processes")


def add_device_arguments(group: argparse._ArgumentGroup) -> None:
    """``--gpus`` (GluonCV) and ``--ctx`` (explicit contexts, e.g. several CPU contexts)."""
    group.add_argument("--gpus", default=None,
                       help="GPU ids, e.g. 0,1 (default: GPU 0 if there is one, else the CPU)")
    group.add_argument("--ctx", default=None, help="explicit contexts, e.g. cpu:0,cpu:1 (overrides --gpus)")


KVSTORES = ("local", "device", "nccl", "dist_sync", "dist_device_sync")


def add_run_arguments(parser: argparse.ArgumentParser, save_interval: int, val_batch_help: str) -> None:
    """Resume, outputs, validation cadence, logging, seed, picture and progress flags."""
    g = parser.add_argument_group("run")
    g.add_argument("--resume", default="", help="checkpoint manifest to continue exactly, or 'auto' "
                   "(latest complete checkpoint in --save-dir)")
    g.add_argument("--start-epoch", type=int, default=0, help="GluonCV compatibility: only 0 is accepted; "
                   "exact resume takes the epoch from the checkpoint")
    g.add_argument("--save-prefix", default="", help="prefix of saved files (model name appended)")
    g.add_argument("--save-dir", default=None, help="output folder (default: runs/<save-prefix><model>)")
    g.add_argument("--save-interval", type=int, default=save_interval, help="epochs between checkpoints")
    g.add_argument("--checkpoint-minutes", type=float, default=10.0,
                   help="also write a rolling 'last' checkpoint at batch granularity every M minutes, so a "
                        "crash or preemption loses at most M minutes (0: off); SIGINT/SIGTERM always write one")
    g.add_argument("--keep-last", type=int, default=0,
                   help="keep only the newest N periodic epoch checkpoints (0: keep all; 'best' is always kept)")
    g.add_argument("--val-interval", type=int, default=1, help="epochs between validations")
    g.add_argument("--val-batch-size", type=int, default=None, help=val_batch_help)
    g.add_argument("--log-interval", type=int, default=100,
                   help="batches between log lines (0: only per-epoch lines)")
    g.add_argument("--seed", type=int, default=233)
    g.add_argument("--picture", type=int, default=6, help="validation images drawn with detections at the end")
    g.add_argument("--no-progress", action="store_true", help="no tqdm bar")


def add_mixup_arguments(group: argparse._ArgumentGroup) -> None:
    """``--mixup`` and its schedule and Beta parameters (the same for both detectors)."""
    group.add_argument("--mixup", action="store_true", help="visually coherent mixup (paper section 3.1)")
    group.add_argument("--no-mixup-epochs", type=int, default=20, help="mixup off in the last N epochs")
    group.add_argument("--mixup-alpha", type=float, default=1.5, help="Beta(alpha, beta) of the blend ratio")
    group.add_argument("--mixup-beta", type=float, default=1.5)


def check_common_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors (exit 2, the flag named) for every shared flag a user can get wrong.

    Checks only what is present on ``args``, so training and evaluation scripts share it.
    """
    positive = ("batch_size", "epochs", "val_interval", "shapes_train_size", "shapes_val_size",
                "random_shape_interval", "val_batch_size", "data_shape")
    for name in positive:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            parser.error("--%s: must be a positive integer, got %r" % (name.replace("_", "-"), value))
    non_negative = ("num_workers", "save_interval", "log_interval", "picture", "no_mixup_epochs", "keep_last",
                    "checkpoint_minutes")
    for name in non_negative:
        value = getattr(args, name, None)
        if value is not None and value < 0:
            flag = "-j/--num-workers" if name == "num_workers" else "--" + name.replace("_", "-")
            parser.error("%s: must be >= 0, got %r" % (flag, value))
    for name in ("lr", "mixup_alpha", "mixup_beta"):
        value = getattr(args, name, None)
        if value is not None and not value > 0:
            parser.error("--%s: must be > 0, got %r" % (name.replace("_", "-"), value))
    if getattr(args, "momentum", None) is not None and not 0 <= args.momentum < 1:
        parser.error("--momentum: must be in [0, 1), got %r" % args.momentum)
    if getattr(args, "wd", None) is not None and args.wd < 0:
        parser.error("--wd: must be >= 0, got %r" % args.wd)
    if getattr(args, "start_epoch", 0):
        parser.error("--start-epoch: resume with --resume <checkpoint>.manifest.json or --resume auto; the "
                     "epoch, LR schedule position and optimizer state come from the checkpoint")
    resume = getattr(args, "resume", "")
    if resume and resume != "auto":
        try:
            resolve_resume(resume, ".")
        except CheckpointError as err:
            parser.error(str(err))
    if getattr(args, "mixup", False) and getattr(args, "epochs", None) is not None \
            and args.no_mixup_epochs >= args.epochs:
        parser.error("--no-mixup-epochs %d: leaves no mixup epoch in a run of --epochs %d, so --mixup would do "
                     "nothing; lower --no-mixup-epochs (mixup runs in the first epochs - no-mixup-epochs "
                     "epochs)" % (args.no_mixup_epochs, args.epochs))
    try:
        if getattr(args, "shapes_image_size", None) is not None:
            parse_size_range(args.shapes_image_size, "--shapes-image-size")
        contexts_from_args(args)
    except ValueError as err:
        parser.error(str(err))


def contexts_from_args(args: argparse.Namespace) -> List[mx.Context]:
    """``--ctx`` if given, else ``--gpus``, else GPU 0 when there is one, else the CPU.

    Raises ``ValueError`` when GPUs are named and this MXNet build has none (the CPU build, or no
    device visible), saying how to install the GPU build.
    """
    spec = args.ctx if args.ctx else args.gpus
    if spec is None:
        spec = "0" if mx.context.num_gpus() else ""
    ctxs = parse_contexts(spec)
    wanted = [c for c in ctxs if c.device_type == "gpu"]
    if wanted:
        available = mx.context.num_gpus()
        flag = "--ctx" if args.ctx else "--gpus"
        if not available:
            raise ValueError("%s %s: this MXNet build (%s) has no GPU support or sees no GPU; install the GPU "
                             "build instead: pip uninstall mxnet && pip install -e \".[gpu]\" (mxnet-cu112), "
                             "or train on the CPU (omit %s)" % (flag, spec, mx.__version__, flag))
        missing = [c.device_id for c in wanted if c.device_id >= available]
        if missing:
            raise ValueError("%s %s: GPU %s does not exist (%d visible)" % (flag, spec, missing, available))
    return ctxs


def datasets_from_args(args: argparse.Namespace, train: bool = True):
    """``(train, val)`` datasets named by the dataset flags (``train=False``: ``(None, val)``).

    ``--dataset custom`` without ``--classes`` prints the class list collected from the annotations,
    so a run can be repeated (and evaluated) with the same ``--classes``. With ``train``, sets
    ``args.max_objects`` (most objects in one training image), for detectors whose ground-truth
    capacity must hold every box of an image (Faster R-CNN's ``max_num_gt``).
    """
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    train_set, val_set = build_datasets(
        args.dataset, args.dataset_root, classes, getattr(args, "train_splits", None), args.val_splits,
        getattr(args, "shapes_train_size", 2000), args.shapes_val_size,
        shapes_image_size=parse_size_range(args.shapes_image_size, "--shapes-image-size"), train=train,
        image_ext=getattr(args, "image_ext", None))
    if args.dataset == "custom" and not classes:
        print("--classes not given: %d classes collected from the annotations: --classes %s"
              % (len(val_set.classes), ",".join(val_set.classes)))
    if train_set is not None:
        args.max_objects = train_set.max_objects
    return train_set, val_set


def parse_size_range(text: str, flag: str) -> Tuple[int, int]:
    """``'320:500'`` -> ``(320, 500)``; a single number ``'256'`` -> ``(256, 256)``."""
    parts = str(text).split(":")
    try:
        lo, hi = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (None, None)
    except ValueError:
        lo = hi = None
    if lo is None or not 64 <= lo <= hi:
        raise ValueError("%s: expected MIN:MAX pixels with 64 <= MIN <= MAX (e.g. 320:500), got %r" % (flag, text))
    return lo, hi


def parse_decay_epochs(text: str, epochs: int, flag: str = "--lr-decay-epoch") -> List[int]:
    """Absolute decay epochs before the end of training.

    GluonCV's scripts never apply a decay at or past the last epoch, so such epochs are dropped with
    one log line; any ``--epochs`` therefore works with GluonCV's default flags (YOLOv3's 160,180).
    """
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ValueError("%s %r: expected comma-separated epochs, e.g. 160,180" % (flag, text)) from None
    if any(v < 0 for v in values) or values != sorted(values):
        raise ValueError("%s %r: epochs must be non-negative and increasing" % (flag, text))
    kept = [v for v in values if v < epochs]
    if len(kept) < len(values):
        _log.info("%s: decay epochs %s are at or past the end of training (--epochs %d) and never reached; "
                  "dropped", flag, [v for v in values if v >= epochs], epochs)
    return kept


def default_save_dir(args: argparse.Namespace, model_name: str) -> str:
    """``--save-dir``, or ``runs/<save-prefix><model name>``."""
    return args.save_dir or os.path.join("runs", getattr(args, "save_prefix", "") + model_name)


def run_script(main: Callable[[], Any], prog: str) -> int:
    """Run a script's ``main`` and turn the errors a user can cause and fix into one clear line.

    A broken, mismatched or unwritable checkpoint, a bad dataset file, a non-finite loss or blocked
    devices end the script with ``<prog>: error: <message>`` on stderr and exit code 1, not a
    traceback; a run stopped by SIGINT/SIGTERM (checkpoint written) exits with 130/143; any other
    exception is a bug and keeps its traceback. A worker of a dist job that fails in any of these
    ways exits at once (:func:`gluon_bof.engine.distributed.exit_failed_worker`), so that the
    launcher sees the failure and stops the job instead of every worker waiting for it.
    """
    from ..data.validation import DatasetError
    from ..engine import CheckpointError, DevicesBlockedError, NonFiniteLossError, TrainingInterrupted
    from ..engine.distributed import exit_failed_worker, is_dist_worker
    try:
        main()
        code = 0
    except TrainingInterrupted as stop:  # the checkpoint is written and the resume command logged
        code = stop.exit_code
    except (CheckpointError, DatasetError, NonFiniteLossError, DevicesBlockedError) as err:
        print("%s: error: %s" % (prog, err), file=sys.stderr)
        code = 1
    except SystemExit as stop:
        if not is_dist_worker():
            raise
        if isinstance(stop.code, int):
            code = stop.code
        else:  # None means success; any other object is printed and means failure, as at exit
            code = 0 if stop.code is None else 1
            if stop.code is not None:
                print(stop.code, file=sys.stderr)
    except BaseException:
        if not is_dist_worker():
            raise
        traceback.print_exc()
        code = 1
    exit_failed_worker(code)
    return code
