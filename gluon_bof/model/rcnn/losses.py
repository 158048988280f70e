"""Faster R-CNN losses: GluonCV's normalisation, plus softmax label smoothing and per-box mixup weights.

Normalisation (GluonCV ``train_faster_rcnn.py``): with ``B`` images, ``N_rpn`` = number of sampled
anchors in the batch (target >= 0) and ``N_rcnn`` = number of sampled RoIs (target >= 0), the value for
image ``b`` is ``B / N_rpn * sum(loss of its anchors)`` (RPN) and ``B / N_rcnn * sum(loss of its RoIs)``
(R-CNN); the training objective is the sum of the four vectors, and the trainer divides by ``B``.

* RPN objectness: sigmoid binary cross-entropy on logits; RPN box: Huber (smooth-L1) with
  ``rho = 1/9`` over masked offsets; R-CNN class: softmax cross-entropy over ``K = C + 1`` classes;
  R-CNN box: Huber with ``rho = 1`` on the class-specific offsets of the positive RoIs.
* ``label_smoothing = eps``: the R-CNN class target becomes ``1 - eps`` on the true class and
  ``eps / (K - 1)`` on each other class (paper eq. 3, background included in ``K``).
* ``mixup_mode='weighted'`` (the paper): each sampled anchor / RoI is weighted by the mixup weight of
  the gt box it is matched to; negatives (background) weigh 1. RPN anchor weights come from the data
  workers (4th RPN target), RoI weights from ``box_weights`` (per gt) through the sampler's matches.
  Normalisers stay counts (not weight sums), so with all weights 1 the losses equal GluonCV's.
* ``mixup_mode='even'`` (GluonCV): per-box weights are ignored and every loss is multiplied by
  ``mix_ratio`` (GluonCV passes 0.5 during mixup epochs, 1 otherwise).
"""
from typing import Optional, Sequence, Tuple

from mxnet import nd

MIXUP_MODES = ("weighted", "even")


def smooth_softmax_targets(labels: nd.NDArray, num_classes: int, epsilon: float) -> nd.NDArray:
    """Soft targets ``(..., K)`` for integer ``labels (...)``: ``1 - eps`` on the label, ``eps/(K-1)`` off it.

    Labels outside ``[0, K)`` (ignored RoIs, -1) get ``eps / (K - 1)`` everywhere; mask them out.
    """
    if num_classes < 2:
        raise ValueError("smooth_softmax_targets: need at least 2 classes, got %d" % num_classes)
    if not 0.0 <= epsilon < 1.0:
        raise ValueError("label_smoothing must be in [0, 1), got %r" % (epsilon,))
    one_hot = nd.one_hot(labels, num_classes)
    return one_hot * (1.0 - epsilon) + (1.0 - one_hot) * (epsilon / (num_classes - 1))


def _huber(pred, target, rho):
    diff = nd.abs(pred - target)
    return nd.where(diff > rho, diff - 0.5 * rho, (0.5 / rho) * nd.square(diff))


def _sigmoid_bce(logits, target):
    return nd.relu(logits) - logits * target + nd.Activation(-nd.abs(logits), act_type="softrelu")


def _per_image(loss, batch, count):
    """``B / count * sum over all non-batch axes`` -> ``(B,)``; ``count`` is a 1-element NDArray."""
    return nd.broadcast_div(loss.reshape((batch, -1)).sum(axis=1) * batch, count)


def roi_weights(samples: nd.NDArray, matches: nd.NDArray, box_weights: nd.NDArray) -> nd.NDArray:
    """Mixup weight ``(B, S)`` of each sampled RoI: its matched gt's weight if positive, else 1."""
    gt_w = box_weights.reshape((0, -1))                                   # (B, M)
    matched = nd.pick(nd.broadcast_like(gt_w.expand_dims(1), matches, lhs_axes=1, rhs_axes=1),
                      matches, axis=2)
    return nd.where(samples > 0.5, matched, nd.ones_like(matched))


def faster_rcnn_losses(outputs: Sequence[nd.NDArray], rpn_targets: Sequence[nd.NDArray],
                       box_weights: Optional[nd.NDArray] = None, label_smoothing: float = 0.0,
                       mixup_mode: str = "weighted", mix_ratio: float = 1.0,
                       rpn_rho: float = 1.0 / 9, rcnn_rho: float = 1.0
                       ) -> Tuple[nd.NDArray, nd.NDArray, nd.NDArray, nd.NDArray]:
    """The four Faster R-CNN losses, each ``(B,)``; train on the sum of all four.

    Parameters
    ----------
    outputs : the 12-tuple of ``FasterRCNN`` in training (see its module docstring).
    rpn_targets : ``(cls (B, N), box (B, N, 4), mask (B, N, 4)[, weight (B, N)])`` from
        :class:`RPNTargetGenerator` batched by :func:`pad_rpn_targets`.
    box_weights : ``(B, M)`` or ``(B, M, 1)`` per-gt mixup weights (the label's last column), or None.
    label_smoothing : epsilon of eq. 3 for the R-CNN softmax head (0 = one-hot).
    mixup_mode : ``'weighted'`` (per-box weights) or ``'even'`` (GluonCV: global ``mix_ratio``).
    mix_ratio : global factor, only in ``'even'`` mode.
    """
    if mixup_mode not in MIXUP_MODES:
        raise ValueError("mixup_mode must be one of %s, got %r" % (MIXUP_MODES, mixup_mode))
    if mixup_mode == "weighted" and mix_ratio != 1.0:
        raise ValueError("mix_ratio=%r only applies to mixup_mode='even'; 'weighted' mode takes "
                         "per-box weights (box_weights / the RPN weight target)" % (mix_ratio,))
    if len(outputs) != 12:
        raise ValueError("faster_rcnn_losses: expected the 12 training outputs of FasterRCNN, got %d"
                         % len(outputs))
    (cls_pred, box_pred, _, samples, matches, rpn_score, rpn_box, _,
     cls_t, box_t, box_m, indices) = outputs
    if len(rpn_targets) not in (3, 4):
        raise ValueError("rpn_targets must be (cls, box, mask) or (cls, box, mask, weight)")
    rpn_cls_t, rpn_box_t, rpn_box_m = rpn_targets[:3]
    batch = cls_pred.shape[0]
    if rpn_cls_t.shape != rpn_score.shape[:2]:
        raise ValueError("RPN targets cover %s anchors but the network produced %s; targets must be "
                         "made for the padded input size" % (rpn_cls_t.shape, rpn_score.shape[:2]))

    weighted = mixup_mode == "weighted"
    rpn_w = rpn_targets[3] if (weighted and len(rpn_targets) == 4) else None
    roi_w = None
    if weighted and box_weights is not None:
        roi_w = roi_weights(samples, matches, box_weights)                            # (B, S)

    # RPN
    rpn_valid = rpn_cls_t >= 0
    n_rpn = nd.maximum(rpn_valid.sum(), 1.0)            # stays on the device: no sync
    rpn_cls = _sigmoid_bce(rpn_score.reshape((0, -1)), rpn_cls_t) * rpn_valid
    rpn_reg = _huber(rpn_box, rpn_box_t, rpn_rho) * rpn_box_m
    if rpn_w is not None:
        rpn_cls = rpn_cls * rpn_w
        rpn_reg = nd.broadcast_mul(rpn_reg, rpn_w.expand_dims(-1))
    # R-CNN
    rcnn_valid = cls_t >= 0
    n_rcnn = nd.maximum(rcnn_valid.sum(), 1.0)
    log_p = nd.log_softmax(cls_pred, axis=-1)
    if label_smoothing > 0:
        soft = smooth_softmax_targets(cls_t, cls_pred.shape[-1], label_smoothing)
        rcnn_cls = -(soft * log_p).sum(axis=-1)
    else:
        rcnn_cls = -nd.pick(log_p, cls_t, axis=-1)
    rcnn_cls = rcnn_cls * rcnn_valid
    rcnn_reg = _huber(box_pred, box_t, rcnn_rho) * box_m                              # (B, P, C, 4)
    if roi_w is not None:
        rcnn_cls = rcnn_cls * roi_w
        pos_w = nd.stack(*[nd.take(roi_w[i], indices[i]) for i in range(batch)], axis=0)
        rcnn_reg = nd.broadcast_mul(rcnn_reg, pos_w.reshape((0, 0, 1, 1)))

    scale = mix_ratio if mixup_mode == "even" else 1.0
    return (_per_image(rpn_cls, batch, n_rpn) * scale, _per_image(rpn_reg, batch, n_rpn) * scale,
            _per_image(rcnn_cls, batch, n_rcnn) * scale, _per_image(rcnn_reg, batch, n_rcnn) * scale)
