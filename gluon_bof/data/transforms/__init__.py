"""Detection transforms (numpy/OpenCV) and the paper's presets.

* :mod:`.bbox` - box ops on ``(N, C)`` labels (columns 0:4 are boxes, the rest is carried).
* :mod:`.image` - colour distortion, resize, normalisation.
* :mod:`.geometry` - ops on ``(img, label)`` pairs: expand, crop, flip, resize, random versions.
* :mod:`.presets` - ``YOLO3TrainTransform``, ``YOLO3ValTransform``, ``FasterRCNNTrainTransform``,
  ``FasterRCNNValTransform``.

See ``docs/transforms.md``.
"""
from .bbox import box_iou, clip_boxes, crop_boxes, flip_boxes, resize_boxes, translate_boxes
from .geometry import (DEFAULT_CROP_CONSTRAINTS, crop, draw_expand, expand, flip, random_crop,
                       random_crop_window, random_expand, random_flip, resize, resize_short_within,
                       short_within_size)
from .image import (ColorParams, color_distort, color_matrix, draw_color_params, imresize, normalize,
                    random_color_distort)
from .presets import (FasterRCNNTrainTransform, FasterRCNNValTransform, YOLO3Params, YOLO3TrainTransform,
                      YOLO3ValTransform)

__all__ = [
    "box_iou", "clip_boxes", "crop_boxes", "flip_boxes", "resize_boxes", "translate_boxes",
    "DEFAULT_CROP_CONSTRAINTS", "crop", "draw_expand", "expand", "flip", "random_crop",
    "random_crop_window", "random_expand", "random_flip", "resize", "resize_short_within",
    "short_within_size", "ColorParams", "color_distort", "color_matrix", "draw_color_params",
    "imresize", "normalize", "random_color_distort", "FasterRCNNTrainTransform",
    "FasterRCNNValTransform", "YOLO3Params", "YOLO3TrainTransform", "YOLO3ValTransform",
]
