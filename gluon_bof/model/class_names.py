"""Default class names of the datasets named in model-zoo names (``*_voc``, ``*_coco``)."""
from ..data.class_names import COCO_CLASSES, VOC_CLASSES

__all__ = ["VOC_CLASSES", "COCO_CLASSES"]
