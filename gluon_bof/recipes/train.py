"""The body of every training script: flags -> datasets, nets, loaders, trainer -> :func:`engine.fit`.

``train_yolo3.py`` and ``train_faster_rcnn.py`` are ``main(argv)`` of :func:`train_main` with their
recipe; everything else is the same for both detectors.
"""
import argparse
import logging
import os
import shlex
import sys
from typing import List, Optional, Sequence

import mxnet as mx

from ..engine import build_trainer, dist_info, fit, release_kvstore
from ..metrics.results import save_results_json
from .base import DetectorRecipe, dist_num_workers, final_evaluation
from .cli import (KVSTORES, add_dataset_arguments, add_device_arguments, add_run_arguments, check_common_arguments,
                  contexts_from_args, datasets_from_args, default_save_dir)

_log = logging.getLogger("gluon_bof.recipes")


def build_train_parser(recipe: DetectorRecipe, description: str) -> argparse.ArgumentParser:
    """The training script's parser: the recipe's model/schedule/freebie flags plus the shared ones."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    recipe.add_train_arguments(parser)
    return parser


def parse_train_args(recipe: DetectorRecipe, description: str,
                     argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse and check the flags of ``recipe``'s training script (usage errors exit with code 2)."""
    parser = build_train_parser(recipe, description)
    args = parser.parse_args(argv)
    recipe.fill_defaults(args)
    check_common_arguments(parser, args)
    recipe.check_arguments(parser, args)
    check_amp(parser, args)
    return args


def check_amp(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--amp`` needs GPU contexts: float16 training through ``mxnet.contrib.amp`` is GPU-only."""
    if getattr(args, "amp", False) and not any(c.device_type == "gpu" for c in contexts_from_args(args)):
        parser.error("--amp: mixed precision (mxnet.contrib.amp, float16) runs on GPUs only, and this run uses "
                     "the CPU; drop --amp, or install the GPU build and pass --gpus")


def add_shared_train_arguments(parser: argparse.ArgumentParser, model_group: argparse._ArgumentGroup,
                               kvstore_aliases: Sequence[str], kvstore_help: str, batch_help: str,
                               batch_default: int, save_interval: int, val_batch_help: str) -> None:
    """Dataset, device, kvstore, batch-size and run flags, placed as both training scripts show them."""
    add_dataset_arguments(model_group)
    g = parser.add_argument_group("devices")
    add_device_arguments(g)
    g.add_argument(*kvstore_aliases, dest="kvstore", default="local", choices=KVSTORES, help=kvstore_help)
    g.add_argument("--batch-size", type=int, default=batch_default, help=batch_help)
    g.add_argument("--amp", action="store_true", help="mixed precision (mxnet.contrib.amp, float16); needs a GPU")
    add_run_arguments(parser, save_interval=save_interval, val_batch_help=val_batch_help)


def resume_command(recipe: DetectorRecipe, argv: Sequence[str], save_dir: str) -> str:
    """The command that continues this run exactly: the same flags, ``--resume auto`` in ``save_dir``."""
    kept: List[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--resume", "--save-dir"):
            skip = True
            continue
        if arg.startswith(("--resume=", "--save-dir=")):
            continue
        kept.append(arg)
    words = ["python", recipe.train_script] + kept + ["--save-dir", save_dir, "--resume", "auto"]
    return " ".join(shlex.quote(w) for w in words)


def train(recipe: DetectorRecipe, args: argparse.Namespace, argv: Optional[Sequence[str]] = None) -> float:
    """Train with the checked ``args``; returns the final mAP (VOC07, or COCO for ``--dataset coco``).

    ``argv`` (the script's flags) makes the resume command printed when a signal stops the run.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ctxs = contexts_from_args(args)
    recipe.check_weight_files(args)  # a missing or bad weights file stops the run before any work
    devices = len(ctxs) * dist_num_workers(args)
    if args.batch_size % devices:
        raise SystemExit("--batch-size %d: must be a multiple of the %d devices of all workers (each device gets "
                         "the same number of images; e.g. --batch-size %d)" % (args.batch_size, devices, devices))
    _log.info("global batch %d: %d worker(s) x %d device(s) x %d images per device", args.batch_size,
              dist_num_workers(args), len(ctxs), args.batch_size // devices)
    mx.random.seed(args.seed)
    if getattr(args, "amp", False):
        from mxnet.contrib import amp
        amp.init()
    train_set, val_set = datasets_from_args(args)
    name = recipe.model_name(args)
    net, eval_net = recipe.build_training_nets(args, train_set.classes, ctxs)
    save_dir = default_save_dir(args, name)

    train_loader = recipe.train_loader(args, train_set, net)
    num_samples = args.num_samples if args.num_samples > 0 else len(train_set)
    scheduler = recipe.lr_scheduler(args, max(1, num_samples // args.batch_size))
    trainer = build_trainer(net, "sgd", {"wd": args.wd, "momentum": args.momentum, "lr_scheduler": scheduler},
                            kvstore=args.kvstore, no_wd=getattr(args, "no_wd", False),
                            params=recipe.train_params(net))
    if getattr(args, "amp", False):
        amp.init_trainer(trainer)
    task = recipe.task(args)
    validate = recipe.make_validate_fn(args, eval_net, net, val_set, name, ctxs,
                                       args.val_batch_size or recipe.default_val_batch_size(args, len(ctxs)))
    result = fit(net, task, train_loader, trainer, ctxs, args.epochs, save_dir, resume=args.resume or None,
                 validate_fn=validate, val_interval=args.val_interval, save_interval=args.save_interval,
                 seed=args.seed, args=dict(vars(args), argv=list(sys.argv[1:] if argv is None else argv)),
                 epoch_options=lambda epoch: recipe.epoch_options(args, task, epoch),
                 progress=not args.no_progress, log_interval=args.log_interval, write_results=save_results_json,
                 keep_last=args.keep_last, checkpoint_minutes=args.checkpoint_minutes,
                 resume_command=resume_command(recipe, sys.argv[1:] if argv is None else argv, save_dir),
                 amp_loss_scaling=bool(getattr(args, "amp", False)))
    final_map = final_evaluation(validate, net, trainer, args.epochs, save_dir, args.dataset, name, result.best_map)
    if args.picture > 0 and dist_info(trainer)[0] == 0:
        path = os.path.join(save_dir, "detections.jpg")
        try:
            recipe.detection_picture(eval_net, args, val_set, path, ctxs, count=args.picture)
            print("detections drawn in %s" % path)
        except Exception as err:  # training succeeded and is saved: a picture must not fail the run
            _log.warning("the detection picture %s could not be drawn (%s: %s); training and its checkpoints "
                         "are complete", path, type(err).__name__, err)
    release_kvstore(trainer)
    return final_map
