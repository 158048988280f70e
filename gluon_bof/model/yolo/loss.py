"""YOLOv3 losses: merge of the prefetched targets with the ignore mask, and the four loss sums.

Same numbers as GluonCV's ``YOLOV3TargetMerger`` + ``YOLOV3Loss`` except that
label smoothing is already in the numpy targets (:mod:`gluon_bof.model.yolo.targets`), so it is not
applied here. All functions take ``F`` (``mx.nd`` or ``mx.sym``) so they run hybridized.
"""
from mxnet import gluon


def bce_with_logits(F, x, z):
    """Elementwise sigmoid binary cross-entropy of logits ``x`` against targets ``z`` (any real)."""
    return F.relu(x) - x * z + F.Activation(-F.abs(x), act_type="softrelu")


def batch_iou(F, boxes, gt_boxes):
    """IoU of every predicted box with every gt of the same image.

    boxes (B, N, 4) and gt_boxes (B, M, 4) are corner boxes in pixels; padded gts (``-1`` rows) have
    zero area and get IoU 0. Returns (B, N, M).
    """
    l1, t1, r1, b1 = F.split(boxes, axis=-1, num_outputs=4)                  # (B, N, 1) each
    gt_t = F.transpose(gt_boxes, axes=(0, 2, 1))                              # (B, 4, M)
    l2, t2, r2, b2 = F.split(gt_t, axis=1, num_outputs=4)                     # (B, 1, M) each
    iw = F.clip(F.broadcast_minimum(r1, r2) - F.broadcast_maximum(l1, l2), 0, 65504.0)
    ih = F.clip(F.broadcast_minimum(b1, b2) - F.broadcast_maximum(t1, t2), 0, 65504.0)
    inter = iw * ih
    union = F.broadcast_add((r1 - l1) * (b1 - t1), (r2 - l2) * (b2 - t2)) - inter
    return inter / (union + 1e-15)


class YOLOv3Loss(gluon.HybridBlock):
    """Per-image YOLOv3 loss sums ``(obj, center, scale, cls)``, each of shape (B,).

    Parameters
    ----------
    ignore_iou_thresh : float
        Negatives whose predicted box overlaps some gt by more than this IoU are ignored in the
        objectness loss (GluonCV: 0.7).

    Notes
    -----
    With ``lam`` the objectness target of a positive (its box's mixup weight), the objectness loss
    keeps target 1 and weight ``lam``; center (sigmoid BCE) and scale (L1) use weight
    ``lam * (2 - wh/WH)``; class BCE uses weight ``lam``. Negatives have weight 1 in the objectness
    loss only. No normalization by the number of positives (GluonCV).
    """

    def __init__(self, ignore_iou_thresh: float = 0.7, **kwargs):
        super().__init__(**kwargs)
        self._ignore_iou_thresh = float(ignore_iou_thresh)

    def hybrid_forward(self, F, objness, centers, scales, cls_logits, box_preds, gt_boxes,
                       obj_t, center_t, scale_t, weight_t, class_t):
        """Losses from raw head outputs and prefetched targets.

        Parameters
        ----------
        objness (B, A, 1), centers (B, A, 2), scales (B, A, 2), cls_logits (B, A, K)
            Raw outputs of all heads, concatenated deepest head first.
        box_preds (B, A, 4)
            Decoded corner boxes of the same rows, pixels (for the ignore mask).
        gt_boxes (B, M, 4)
            Ground-truth boxes padded with -1.
        obj_t, center_t, scale_t, weight_t, class_t
            Targets of :class:`~gluon_bof.model.yolo.targets.YOLOv3TargetGenerator`, batched.
        """
        obj_t, center_t, scale_t, weight_t, class_t, gt_boxes, box_preds = [
            F.stop_gradient(v) for v in (obj_t, center_t, scale_t, weight_t, class_t, gt_boxes, box_preds)]
        pos = obj_t > 0                                                         # (B, A, 1)
        max_iou = F.max(batch_iou(F, box_preds, gt_boxes), axis=-1, keepdims=True)
        # Positives: their weight lam; negatives 0, or -1 (ignored) when overlapping a gt.
        obj_m = F.where(pos, obj_t, -1 * (max_iou > self._ignore_iou_thresh))
        lam_pos = F.where(pos, obj_t, F.zeros_like(obj_t))                      # lam at positives
        box_w = F.broadcast_mul(F.where(F.broadcast_like(pos, weight_t), weight_t,
                                        F.zeros_like(weight_t)), lam_pos)
        obj_target = F.where(pos, F.ones_like(obj_m), obj_m)
        obj_w = F.where(pos, obj_m, obj_m >= 0)
        obj_loss = F.sum(obj_w * bce_with_logits(F, objness, obj_target), axis=(1, 2))
        pos_c = F.broadcast_like(pos, center_t)
        center_loss = F.sum(box_w * bce_with_logits(F, centers, F.where(pos_c, center_t, F.zeros_like(center_t))),
                            axis=(1, 2))
        scale_loss = F.sum(box_w * F.abs(scales - F.where(pos_c, scale_t, F.zeros_like(scale_t))), axis=(1, 2))
        pos_k = F.broadcast_like(pos, class_t)
        cls_target = F.where(pos_k, class_t, -F.ones_like(class_t))
        cls_w = F.broadcast_mul(pos_k * (cls_target >= 0), lam_pos)
        cls_loss = F.sum(cls_w * bce_with_logits(F, cls_logits, cls_target), axis=(1, 2))
        return obj_loss, center_loss, scale_loss, cls_loss
