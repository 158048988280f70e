"""Evaluate a Faster R-CNN ``.params`` file (saved by gluon_bof or by GluonCV) and write its results file.

    python eval_faster_rcnn.py --network resnet50_v1b --dataset voc \\
        --params faster_rcnn_resnet50_v1b_voc-447328d8.params --results results_voc07.json

Protocol as in GluonCV's ``train_faster_rcnn.py`` validation: short side resized to the model's
(``--short``, long side capped at ``--max-size``), one image per device, detections clipped to the
input and mapped back to original coordinates; VOC07 11-point mAP at IoU 0.5 (voc, custom, shapes),
or COCO mAP. ``eval_yolo3.py`` takes the same flags for YOLOv3.
"""
import argparse
import sys
from typing import Optional, Sequence

from gluon_bof.recipes.cli import run_script
from gluon_bof.recipes.evaluate import eval_main, parse_eval_args
from gluon_bof.recipes.faster_rcnn import FasterRCNNRecipe

RECIPE = FasterRCNNRecipe()


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    return parse_eval_args(RECIPE, __doc__.split("\n")[0], argv)


def main(argv: Optional[Sequence[str]] = None) -> float:
    """Evaluate; returns the mAP."""
    return eval_main(RECIPE, parse_args(argv))


if __name__ == "__main__":
    sys.exit(run_script(main, "eval_faster_rcnn.py"))
