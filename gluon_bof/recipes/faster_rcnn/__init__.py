"""Faster R-CNN recipe: ``recipe`` (flags, network, schedule, validation), ``data`` (loaders with RPN
targets), ``task`` (losses)."""
from .recipe import FasterRCNNRecipe, model_name

__all__ = ["FasterRCNNRecipe", "model_name"]
