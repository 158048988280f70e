"""Evaluate a YOLOv3 ``.params`` file (saved by gluon_bof or by GluonCV) and write its results file.

    python eval_yolo3.py --network darknet53 --dataset voc --data-shape 416 \\
        --params yolo3_darknet53_voc-f5ece5ce.params --results results_voc07.json

Protocol as in GluonCV's ``train_yolo3.py`` validation: square resize to ``--data-shape``, NMS 0.45
over the top 400 candidates, 100 detections per image, boxes clipped to the input; VOC07 11-point
mAP at IoU 0.5 in resized coordinates (voc, custom, shapes), or COCO mAP in original coordinates.
``eval_faster_rcnn.py`` takes the same flags for Faster R-CNN.
"""
import argparse
import sys
from typing import Optional, Sequence

from gluon_bof.recipes.cli import run_script
from gluon_bof.recipes.evaluate import eval_main, parse_eval_args
from gluon_bof.recipes.yolo3 import YOLO3Recipe

RECIPE = YOLO3Recipe()


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    return parse_eval_args(RECIPE, __doc__.split("\n")[0], argv)


def main(argv: Optional[Sequence[str]] = None) -> float:
    """Evaluate; returns the mAP."""
    return eval_main(RECIPE, parse_args(argv))


if __name__ == "__main__":
    sys.exit(run_script(main, "eval_yolo3.py"))
