"""Per-detector recipes: what joins datasets, models, metrics and the training engine.

``base`` (:class:`DetectorRecipe`: the interface, plus what both detectors share), ``cli`` (the shared
flags and the one place that checks them), ``train`` / ``evaluate`` (the bodies of the training and
evaluation scripts), ``yolo3`` and ``faster_rcnn`` (each detector's flags, network, data paths and
loss task). See docs/architecture.md.
"""
from typing import Dict

from .base import DetectorRecipe
from .faster_rcnn import FasterRCNNRecipe
from .yolo3 import YOLO3Recipe

RECIPES: Dict[str, DetectorRecipe] = {"yolo3": YOLO3Recipe(), "faster_rcnn": FasterRCNNRecipe()}


def get_recipe(name: str) -> DetectorRecipe:
    """The recipe of a detector: ``'yolo3'`` or ``'faster_rcnn'``."""
    if name not in RECIPES:
        raise ValueError("unknown detector %r; choose one of %s" % (name, ", ".join(RECIPES)))
    return RECIPES[name]


__all__ = ["DetectorRecipe", "YOLO3Recipe", "FasterRCNNRecipe", "RECIPES", "get_recipe"]
