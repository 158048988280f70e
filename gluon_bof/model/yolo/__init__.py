"""YOLOv3: network (:mod:`.yolo3`), numpy targets (:mod:`.targets`), loss (:mod:`.loss`), presets."""
from .targets import YOLOv3TargetGenerator, pad_gt_boxes, smoothing_epsilon
from .yolo3 import YOLOV3

__all__ = ["YOLOV3", "YOLOv3TargetGenerator", "pad_gt_boxes", "smoothing_epsilon"]
