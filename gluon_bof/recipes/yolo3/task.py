"""How the training engine drives YOLOv3: batch splitting and the four loss components.

The loader yields ``(images, objectness, center, scale, weights, class, gt_boxes)`` (numpy, targets
made in the data workers, see ``gluon_bof.data.pipelines``); each device gets an even slice and
runs ``net(x, gt_boxes, obj_t, center_t, scale_t, weight_t, class_t)``, which returns four per-image
loss vectors like GluonCV's ``YOLOV3`` in training mode.
"""
from typing import List, Sequence

import mxnet as mx
from mxnet import gluon

from ...engine.context import split_batch

LOSS_NAMES = ("obj", "center", "scale", "cls")


class YOLO3TrainTask:
    """:class:`gluon_bof.engine.TrainTask` of YOLOv3."""

    loss_names = LOSS_NAMES
    #: The network draws no random numbers in training (the augmentations run in the data workers).
    draws_random = False

    def split(self, batch: tuple, ctxs: Sequence[mx.Context]) -> List[tuple]:
        """Per-device ``(x, obj, center, scale, weight, class, gt_boxes)`` NDArrays."""
        if len(batch) != 7:
            raise ValueError("YOLO3TrainTask: a batch must hold 7 arrays (images, 5 targets, gt_boxes), "
                             "got %d" % len(batch))
        return split_batch(batch, ctxs)

    def losses(self, net: gluon.Block, device_batch: tuple) -> Sequence[mx.nd.NDArray]:
        """``(obj, center, scale, cls)`` losses, each of shape ``(per-device batch,)``."""
        x, obj_t, center_t, scale_t, weight_t, class_t, gt_boxes = device_batch
        return net(x, gt_boxes, obj_t, center_t, scale_t, weight_t, class_t)
