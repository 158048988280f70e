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
import sys
from typing import Optional, Sequence

from gluon_bof.recipes.cli import run_script
from gluon_bof.recipes.faster_rcnn import FasterRCNNRecipe
from gluon_bof.recipes.train import parse_train_args, train

RECIPE = FasterRCNNRecipe()


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """GluonCV's ``train_faster_rcnn.py`` flags (same names and defaults) plus this package's additions."""
    return parse_train_args(RECIPE, __doc__.split("\n")[0], argv)


def main(argv: Optional[Sequence[str]] = None) -> float:
    """Train; returns the final mAP."""
    return train(RECIPE, parse_args(argv), argv)


if __name__ == "__main__":
    sys.exit(run_script(main, "train_faster_rcnn.py"))
