"""Command-line pieces shared by ``train_yolo3.py``, ``train_faster_rcnn.py`` and ``eval_yolo3.py``.

The flags keep GluonCV's names; each script adds its own model, schedule and freebie flags.
"""
import argparse
import os
from typing import Any, Callable, List, Tuple

import mxnet as mx

from ..data.factory import DATASETS, build_datasets
from ..metrics.results import save_results_json
from .context import parse_contexts
from .loop import dist_info


def add_dataset_arguments(group: argparse._ArgumentGroup) -> None:
    """``--dataset`` and where its data live, ``--num-samples`` and ``-j``."""
    group.add_argument("--dataset", default="voc", choices=DATASETS,
                       help="voc (07+12 trainval / 07 test), coco, shapes (embedded synthetic), custom (VOC layout)")
    group.add_argument("--dataset-root", default=None,
                       help="dataset folder (default GluonCV's ~/.mxnet/datasets/...)")
    group.add_argument("--classes", default=None, help="comma-separated class names (--dataset custom)")
    group.add_argument("--train-splits", default=None,
                       help="e.g. 2007_trainval,2012_trainval or instances_train2017")
    group.add_argument("--val-splits", default=None, help="e.g. 2007_test or instances_val2017")
    group.add_argument("--shapes-train-size", type=int, default=2000, help="images of the shapes train split")
    group.add_argument("--shapes-val-size", type=int, default=300, help="images of the shapes val split")
    group.add_argument("--shapes-image-size", default="320:500", metavar="MIN:MAX",
                       help="side lengths of shapes images in pixels (objects scale with the image, so "
                            "small images only save drawing time for small network inputs)")
    group.add_argument("--num-samples", type=int, default=-1,
                       help="images per epoch for the LR schedule (-1: the training set size)")
    group.add_argument("--num-workers", "-j", dest="num_workers", type=int, default=4,
                       help="data worker processes")


def add_device_arguments(group: argparse._ArgumentGroup) -> None:
    """``--gpus`` (GluonCV) and ``--ctx`` (explicit contexts, e.g. several CPU contexts)."""
    group.add_argument("--gpus", default=None,
                       help="GPU ids, e.g. 0,1 (default: GPU 0 if there is one, else the CPU)")
    group.add_argument("--ctx", default=None, help="explicit contexts, e.g. cpu:0,cpu:1 (overrides --gpus)")


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
    g.add_argument("--val-interval", type=int, default=1, help="epochs between validations")
    g.add_argument("--val-batch-size", type=int, default=None, help=val_batch_help)
    g.add_argument("--log-interval", type=int, default=100,
                   help="batches between log lines (0: only per-epoch lines)")
    g.add_argument("--seed", type=int, default=233)
    g.add_argument("--picture", type=int, default=6, help="validation images drawn with detections at the end")
    g.add_argument("--no-progress", action="store_true", help="no tqdm bar")


def check_run_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse GluonCV's weights-only ``--start-epoch`` resume, pointing to the exact one."""
    if args.start_epoch:
        parser.error("--start-epoch: resume with --resume <checkpoint>.manifest.json or --resume auto; the "
                     "epoch, LR schedule position and optimizer state come from the checkpoint")


def contexts_from_args(args: argparse.Namespace) -> List[mx.Context]:
    """``--ctx`` if given, else ``--gpus``, else GPU 0 when there is one, else the CPU."""
    if args.ctx:
        return parse_contexts(args.ctx)
    if args.gpus is not None:
        return parse_contexts(args.gpus)
    return parse_contexts("0" if mx.context.num_gpus() else "")


def datasets_from_args(args: argparse.Namespace):
    """``(train, val)`` datasets named by the dataset flags."""
    classes = args.classes.split(",") if args.classes else None
    return build_datasets(args.dataset, args.dataset_root, classes, getattr(args, "train_splits", None),
                          args.val_splits, getattr(args, "shapes_train_size", 2000), args.shapes_val_size,
                          shapes_image_size=parse_size_range(getattr(args, "shapes_image_size", "320:500"),
                                                             "--shapes-image-size"))


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


def final_evaluation(validate: Callable, net: Any, trainer: Any, epochs: int, save_dir: str, dataset: str,
                     model_name: str, best_map: float) -> float:
    """Evaluate the trained weights once more, write ``results_final.json`` (rank 0) and print the mAP.

    ``validate`` is the ``validate_fn`` given to :func:`gluon_bof.engine.fit`; its results dict is
    written so the final weights have a results file even when the last epoch was not a validation
    epoch. Returns the final mAP (VOC07 or COCO, as ``validate`` computes it).
    """
    _, values, results = validate(net, epochs - 1)
    if dist_info(trainer)[0] == 0:
        save_results_json(os.path.join(save_dir, "results_final.json"), results)
    final_map = float(values[-1])
    print("final %s %s on %s: %.4f (best during training %.4f)" % (
        "COCO mAP" if dataset == "coco" else "VOC07 mAP", model_name, dataset, final_map, best_map))
    return final_map
