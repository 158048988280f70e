"""How the training engine drives Faster R-CNN: batch splitting and the four loss components.

The loader (``build_faster_rcnn_train_loader(..., rpn_target_fn=RPNTargetTransform.from_net(net))``)
yields ``(images (B,3,H,W), labels (B,M,7), rpn_cls (B,N), rpn_box (B,N,4), rpn_mask (B,N,4),
rpn_weight (B,N))`` with the RPN targets made in the data workers. Each device gets an even slice and
runs ``net(x, gt_boxes, gt_labels)``; :func:`faster_rcnn_losses` turns the 12 outputs into the four
per-image losses (GluonCV's normalisation, plus label smoothing and per-box mixup weights).
"""
from typing import List, Sequence

import mxnet as mx
from mxnet import gluon

from ...engine.context import split_batch
from ...model.rcnn.losses import MIXUP_MODES, faster_rcnn_losses

LOSS_NAMES = ("rpn_cls", "rpn_box", "rcnn_cls", "rcnn_box")


class FasterRCNNTrainTask:
    """:class:`gluon_bof.engine.TrainTask` of Faster R-CNN.

    Parameters
    ----------
    label_smoothing : float
        Epsilon of the paper's eq. 3 on the R-CNN softmax head (0 = one-hot, GluonCV).
    mixup_mode : {'weighted', 'even'}
        ``'weighted'`` (the paper): each sampled anchor / RoI is weighted by its matched gt's mixup
        weight (the label's last column). ``'even'`` (GluonCV): per-box weights ignored, every loss
        multiplied by ``even_ratio`` while mixup is on (see :meth:`set_mixup`), by 1 otherwise.
    rpn_rho, rcnn_rho : float
        Huber (smooth-L1) thresholds: GluonCV's ``--rpn-smoothl1-rho 1/9``, ``--rcnn-smoothl1-rho 1``.
    even_ratio : float
        GluonCV's ``mix_ratio`` during mixup epochs (0.5).
    """

    loss_names = LOSS_NAMES
    #: The RoI sampler of the R-CNN targets draws from ``mx.random`` inside the training forward.
    draws_random = True

    def __init__(self, label_smoothing: float = 0.0, mixup_mode: str = "weighted", rpn_rho: float = 1.0 / 9,
                 rcnn_rho: float = 1.0, even_ratio: float = 0.5) -> None:
        if mixup_mode not in MIXUP_MODES:
            raise ValueError("FasterRCNNTrainTask: mixup_mode must be one of %s, got %r" % (MIXUP_MODES, mixup_mode))
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError("FasterRCNNTrainTask: label_smoothing must be in [0, 1), got %r" % (label_smoothing,))
        if rpn_rho <= 0 or rcnn_rho <= 0:
            raise ValueError("FasterRCNNTrainTask: rpn_rho and rcnn_rho must be > 0, got %r, %r" % (rpn_rho, rcnn_rho))
        self.label_smoothing = float(label_smoothing)
        self.mixup_mode = mixup_mode
        self.rpn_rho, self.rcnn_rho = float(rpn_rho), float(rcnn_rho)
        self.even_ratio = float(even_ratio)
        self.mix_ratio = 1.0

    def set_mixup(self, enabled: bool) -> None:
        """Called per epoch: in ``'even'`` mode the losses are scaled by ``even_ratio`` while mixup is on."""
        self.mix_ratio = self.even_ratio if (enabled and self.mixup_mode == "even") else 1.0

    def split(self, batch: tuple, ctxs: Sequence[mx.Context]) -> List[tuple]:
        """Per-device ``(x, labels, rpn_cls, rpn_box, rpn_mask, rpn_weight)`` NDArrays."""
        if len(batch) != 6:
            raise ValueError("FasterRCNNTrainTask: a batch must hold 6 arrays (images, labels, 4 RPN targets); "
                             "got %d; build the loader with rpn_target_fn=RPNTargetTransform.from_net(net)"
                             % len(batch))
        if batch[1].ndim != 3 or batch[1].shape[-1] < 7:
            raise ValueError("FasterRCNNTrainTask: labels must be (B, M, 7) with the mixup weight as last "
                             "column, got shape %s" % (tuple(batch[1].shape),))
        return split_batch(batch, ctxs)

    def losses(self, net: gluon.Block, device_batch: tuple) -> Sequence[mx.nd.NDArray]:
        """``(rpn_cls, rpn_box, rcnn_cls, rcnn_box)``, each of shape ``(per-device batch,)``.

        Each is GluonCV's ``B / N_sampled * sum``; the engine sums them and ``trainer.step(B)``
        divides by the batch, as GluonCV does.
        """
        x, labels, rpn_cls, rpn_box, rpn_mask, rpn_weight = device_batch
        gt_boxes = labels.slice_axis(axis=-1, begin=0, end=4)
        gt_labels = labels.slice_axis(axis=-1, begin=4, end=5)
        outputs = net(x, gt_boxes, gt_labels)
        weighted = self.mixup_mode == "weighted"
        return faster_rcnn_losses(
            outputs, (rpn_cls, rpn_box, rpn_mask, rpn_weight),
            box_weights=labels.slice_axis(axis=-1, begin=-1, end=None) if weighted else None,
            label_smoothing=self.label_smoothing, mixup_mode=self.mixup_mode,
            mix_ratio=1.0 if weighted else self.mix_ratio, rpn_rho=self.rpn_rho, rcnn_rho=self.rcnn_rho)
