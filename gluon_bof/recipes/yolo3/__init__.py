"""YOLOv3 recipe: ``recipe`` (flags, network, schedule, validation), ``data`` (loaders), ``task`` (losses)."""
from .recipe import YOLO3Recipe, model_name

__all__ = ["YOLO3Recipe", "model_name"]
