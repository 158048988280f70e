"""Detection models: the ``get_model`` registry, backbones, YOLOv3 (``yolo``), Faster R-CNN (``rcnn``).

>>> from gluon_bof.model import get_model
>>> net = get_model('yolo3_mobilenet1.0_voc', pretrained_base=False)
"""
from .zoo import add_provider, get_model, list_models, register_model

__all__ = ["get_model", "register_model", "list_models", "add_provider"]
