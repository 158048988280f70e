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
import sys
from typing import Optional, Sequence

from gluon_bof.recipes.cli import run_script
from gluon_bof.recipes.train import parse_train_args, train
from gluon_bof.recipes.yolo3 import YOLO3Recipe

RECIPE = YOLO3Recipe()


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """GluonCV's ``train_yolo3.py`` flags (same names and defaults) plus this package's additions."""
    return parse_train_args(RECIPE, __doc__.split("\n")[0], argv)


def main(argv: Optional[Sequence[str]] = None) -> float:
    """Train; returns the final mAP."""
    return train(RECIPE, parse_args(argv), argv)


if __name__ == "__main__":
    sys.exit(run_script(main, "train_yolo3.py"))
