"""The body of every evaluation script: any ``.params`` file (ours or GluonCV's) -> metric -> results JSON.

``eval_yolo3.py`` and ``eval_faster_rcnn.py`` are ``main(argv)`` of :func:`eval_main` with their
recipe: the same flags (besides the recipe's network and input-size flags), the same protocol as the
validation during training, and the same results file.
"""
import argparse
import logging
import os
from typing import Optional, Sequence

import mxnet as mx

from ..engine.evaluate import evaluate
from ..metrics.report import ap_table_markdown
from ..metrics.results import build_results, save_results_json
from .base import DetectorRecipe
from .cli import add_dataset_arguments, add_device_arguments, check_common_arguments, contexts_from_args, datasets_from_args


def build_eval_parser(recipe: DetectorRecipe, description: str) -> argparse.ArgumentParser:
    """``--params`` plus the recipe's network flags and the shared dataset and device flags."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--params", "--pretrained", dest="params", required=True,
                   help=".params file to evaluate (gluon_bof checkpoint weights or a GluonCV model-zoo file)")
    g = p.add_argument_group("model and data")
    recipe.add_model_arguments(g)
    add_dataset_arguments(g, train=False)
    g = p.add_argument_group("devices")
    add_device_arguments(g)
    g.add_argument("--batch-size", type=int, default=None, help="images per batch (default: the recipe's "
                   "validation batch)")
    p.add_argument("--results", default=None, help="results JSON (default: <params>_results.json)")
    return p


def parse_eval_args(recipe: DetectorRecipe, description: str,
                    argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse and check the evaluation flags (usage errors exit with code 2)."""
    parser = build_eval_parser(recipe, description)
    args = parser.parse_args(argv)
    recipe.fill_defaults(args)
    check_common_arguments(parser, args)
    recipe.check_arguments(parser, args)
    if not os.path.isfile(args.params):
        parser.error("--params %s: no such file" % args.params)
    return args


def eval_main(recipe: DetectorRecipe, args: argparse.Namespace) -> float:
    """Evaluate ``args.params`` on the validation split; print the AP table, write the results file.

    Returns the mAP (VOC07 11-point at IoU 0.5, or COCO mAP for ``--dataset coco``).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ctxs = contexts_from_args(args)
    _, val_set = datasets_from_args(args, train=False)
    name = recipe.model_name(args)
    net = recipe.build_net(args, val_set.classes, mx.gluon.nn.BatchNorm, {})
    recipe.load_weights(net, args.params, ctxs)
    recipe.prepare_for_inference(net, args)
    batch_size = args.batch_size or recipe.default_val_batch_size(args, len(ctxs))
    loader = recipe.val_loader(args, val_set, net, batch_size, args.num_workers)
    metric = recipe.build_metric(args.dataset, val_set, recipe.metric_data_shape(args))
    evaluate(net, loader, metric, ctxs, postprocess=recipe.postprocess)
    results = build_results(metric, dataset=args.dataset, split=args.val_splits or "val", model=name,
                            checkpoint=args.params, extra=recipe.results_extra(args, net))
    path = args.results or os.path.splitext(args.params)[0] + "_results.json"
    save_results_json(path, results)
    print(ap_table_markdown(results))
    print("results written to %s" % path)
    return float(results["map"])
