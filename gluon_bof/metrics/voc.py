"""Pascal VOC detection mAP: ``VOC07MApMetric`` (11-point) and ``VOCMApMetric`` (area).

Same interface and the same numbers as GluonCV's metrics of the same names, computed without a
Python loop per detection or per (image, class):

* ``update`` checks a batch and stores it; ``get`` then handles all images at once (and caches the
  result until the next ``update``).
* Detections are ordered inside each (image, class) by descending score, exactly as GluonCV's
  ``argsort()[::-1]`` orders them, ties included (:func:`_batch_order`,
  :func:`_fix_large_tied_groups`).
* Every detection gets its highest-IoU ground truth of the same class and image (the first one on
  IoU ties), with the devkit's +1 pixel convention (``xmax + 1``, ``ymax + 1``). A detection whose
  IoU reaches ``iou_thresh`` is ignored (-1) if that ground truth is difficult, a true positive if
  it is the first detection to claim it, else a false positive (:func:`match_detections`).
* Each class's detections are sorted by score over the whole data set with the same argsort as
  GluonCV, and the AP comes from :mod:`gluon_bof.metrics.ap`.

What the edge cases yield:

* class with ground truth but no detection: AP 0 (nothing is recalled);
* class with detections but no (non-difficult) ground truth: AP NaN, since recall is undefined; it is
  left out of the mAP (``nanmean``), as in the devkit and GluonCV;
* class never seen: AP NaN, left out of the mAP;
* image without detections or without ground truth: contributes its ground truths to the recall
  denominator, or its detections as false positives;
* nothing at all: every AP and the mAP are NaN.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import ap as ap_lib
from ._inputs import as_batch, check_batch_sizes, check_rows

__all__ = ["VOCMApMetric", "VOC07MApMetric", "match_detections"]

# numpy's default (introsort) argsort sorts runs of at most 16 elements by insertion sort, which is
# stable; longer runs go through quicksort partitions, whose order of ties we reproduce by calling
# argsort itself.
_INSERTION_SORT_MAX = 16


def _batch_order(labels: np.ndarray, scores: np.ndarray, valid: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Valid detections of a batch in GluonCV's order: image, class, descending score.

    GluonCV sorts each (image, class) group with ``score.argsort()[::-1]`` on the group's scores in
    row order. For groups of at most 16 detections that argsort is stable, so ties come out in
    *descending* row order after the reversal, which is what this returns for every group; larger
    groups with ties are corrected by :func:`_fix_large_tied_groups`.

    Parameters
    ----------
    labels, scores : (B, N) arrays
        Padded detections of the batch.
    valid : (B, N) bool array
        Non-padding rows.

    Returns
    -------
    image, row : (D,) int arrays
        Position of each valid detection, in order.
    """
    num = int(labels[valid].max()) + 2 if valid.any() else 1
    key_type = np.int16 if num < 2 ** 15 else np.int64  # 16-bit keys get numpy's radix sort
    # Reversing a stable ascending sort gives descending scores with ties in descending row order;
    # a stable sort by class (padding last) keeps that order inside each class.
    by_score = np.argsort(scores, axis=1, kind="stable")[:, ::-1]
    keys = np.where(valid, labels, num - 1).astype(key_type)
    by_class = np.argsort(np.take_along_axis(keys, by_score, axis=1), axis=1, kind="stable")
    order = np.take_along_axis(by_score, by_class, axis=1)
    count = valid.sum(axis=1)
    keep = np.arange(order.shape[1])[None, :] < count[:, None]
    image = np.nonzero(keep)[0]
    return image, order[keep]


def _fix_large_tied_groups(image: np.ndarray, label: np.ndarray, score: np.ndarray,
                           row: np.ndarray) -> Optional[np.ndarray]:
    """Permutation re-sorting the (image, class) groups of more than 16 detections that hold ties.

    numpy's default argsort sorts more than 16 elements by quicksort partitions, which do not keep
    ties in a simple order; to reproduce GluonCV's order exactly such groups are sorted with that
    same argsort, one call per group (a few per image at most).

    Parameters
    ----------
    image, label, score, row : (D,) arrays
        Detections in :func:`_batch_order` order (groups contiguous).

    Returns
    -------
    (D,) int array or None
        Permutation to apply to all four arrays; None when nothing needs re-sorting.
    """
    if image.size <= _INSERTION_SORT_MAX:
        return None
    new_group = np.ones(image.size, dtype=bool)
    new_group[1:] = (image[1:] != image[:-1]) | (label[1:] != label[:-1])
    starts = np.flatnonzero(new_group)
    sizes = np.diff(np.append(starts, image.size))
    group_of = np.cumsum(new_group) - 1
    tie = np.zeros(image.size, dtype=bool)
    tie[1:] = ~new_group[1:] & (score[1:] == score[:-1])
    flagged = np.zeros(starts.size, dtype=bool)
    flagged[group_of[tie]] = True
    flagged &= sizes > _INSERTION_SORT_MAX
    redo = np.flatnonzero(flagged)
    if redo.size == 0:
        return None
    order = np.arange(image.size)
    # Members of the groups to redo, in row order inside each group (GluonCV's argsort input).
    members = np.flatnonzero(flagged[group_of])
    members = members[np.argsort(group_of[members] * (int(row.max()) + 1) + row[members])]
    member_scores = score[members]
    bounds = np.concatenate(([0], np.cumsum(sizes[redo])))
    for g, lo, hi in zip(redo.tolist(), bounds[:-1].tolist(), bounds[1:].tolist()):
        first = starts[g]
        order[first:first + hi - lo] = members[lo:hi][member_scores[lo:hi].argsort()[::-1]]
    return order


def _corners_plus_one(box: np.ndarray) -> Tuple[np.ndarray, ...]:
    """Columns ``x1, y1, x2 + 1, y2 + 1`` and area of (K, 4) boxes: the devkit's inclusive pixels."""
    x1, y1, x2, y2 = box[:, 0], box[:, 1], box[:, 2] + 1, box[:, 3] + 1
    return x1, y1, x2, y2, (x2 - x1) * (y2 - y1)


def _pair_iou(pred: Tuple[np.ndarray, ...], gt: Tuple[np.ndarray, ...], pred_index: np.ndarray,
              gt_index: np.ndarray) -> np.ndarray:
    """IoU of the pairs ``(pred[pred_index[k]], gt[gt_index[k]])``, boxes from :func:`_corners_plus_one`.

    The arithmetic (and so the rounding) is GluonCV's ``bbox_iou`` on boxes with ``+1`` added to
    xmax and ymax, so comparisons with ``iou_thresh`` agree bit for bit.
    """
    left = np.maximum(pred[0][pred_index], gt[0][gt_index])
    top = np.maximum(pred[1][pred_index], gt[1][gt_index])
    right = np.minimum(pred[2][pred_index], gt[2][gt_index])
    bottom = np.minimum(pred[3][pred_index], gt[3][gt_index])
    inter = ((right - left) * (bottom - top)) * ((left < right) & (top < bottom))
    return inter / (pred[4][pred_index] + gt[4][gt_index] - inter)


def match_detections(
    pred_image: np.ndarray,
    pred_label: np.ndarray,
    pred_box: np.ndarray,
    gt_image: np.ndarray,
    gt_label: np.ndarray,
    gt_difficult: np.ndarray,
    gt_box: np.ndarray,
    iou_thresh: float,
) -> np.ndarray:
    """Mark every detection as true positive, false positive or ignored, all images at once.

    Parameters
    ----------
    pred_image, pred_label : (D,) int arrays
        Image index and class of each valid detection, in GluonCV's processing order (image,
        class, descending score; see :func:`_batch_order`).
    pred_box : (D, 4) array
        ``(xmin, ymin, xmax, ymax)`` in pixels.
    gt_image, gt_label : (G,) int arrays
        Image index and class of each valid ground truth, in image then row order.
    gt_difficult : (G,) bool array
        Difficult flags.
    gt_box : (G, 4) array
        Ground-truth boxes.
    iou_thresh : float
        A detection matches a ground truth when their IoU is >= ``iou_thresh``.

    Returns
    -------
    (D,) int8 array
        1 true positive, 0 false positive, -1 ignored (matched a difficult object).
    """
    matches = np.zeros(pred_image.size, dtype=np.int8)
    if pred_image.size == 0 or gt_image.size == 0:
        return matches
    # Ground truths sorted by (image, class), rows ascending inside: GluonCV's argmax tie order.
    num_classes = int(max(pred_label.max(), gt_label.max())) + 1
    g_order = np.lexsort((gt_label, gt_image))
    g_key = (gt_image * num_classes + gt_label)[g_order]
    gt_difficult, gt_box = gt_difficult[g_order], gt_box[g_order]
    # Detections come grouped by (image, class): look the ground truths up once per group.
    p_key = pred_image * num_classes + pred_label
    run_start = np.flatnonzero(np.concatenate(([True], p_key[1:] != p_key[:-1])))
    run_size = np.diff(np.append(run_start, p_key.size))
    run_first = np.searchsorted(g_key, p_key[run_start], side="left")
    run_count = np.searchsorted(g_key, p_key[run_start], side="right") - run_first
    count = np.repeat(run_count, run_size)
    first = np.repeat(run_first, run_size)

    # Detections bucketed by their number k of candidate ground truths; each bucket is an (n, k)
    # IoU matrix whose argmax (first maximum, like GluonCV's) gives the best ground truth.
    pred_cols, gt_cols = _corners_plus_one(pred_box), _corners_plus_one(gt_box)
    by_count = np.argsort(count.astype(np.int16) if count.max() < 2 ** 15 else count, kind="stable")
    sizes = np.bincount(count)
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    best_gt = np.full(matches.size, -1, dtype=np.int64)
    for k in np.flatnonzero(sizes[1:]) + 1:
        dets = by_count[bounds[k]:bounds[k + 1]]
        candidates = first[dets][:, None] + np.arange(k)
        iou = _pair_iou(pred_cols, gt_cols, dets[:, None], candidates)
        pick = iou.argmax(axis=1)
        rows = np.arange(dets.size)
        hit = ~(iou[rows, pick] < iou_thresh)
        best_gt[dets[hit]] = candidates[rows[hit], pick[hit]]
    det_hit = np.flatnonzero(best_gt >= 0)  # ascending: processing order
    gt_hit = best_gt[det_hit]

    difficult = gt_difficult[gt_hit]
    matches[det_hit[difficult]] = -1
    # Detections are in processing order: the first to claim a ground truth takes it.
    claimants = det_hit[~difficult]
    claimed = gt_hit[~difficult]
    # Stable sort by ground truth (radix sort when the ids fit in 16 bits): the first of each run
    # is the earliest claimant.
    by_gt = np.argsort(claimed.astype(np.int16) if gt_image.size < 2 ** 15 else claimed, kind="stable")
    claimed = claimed[by_gt]
    first_claim = by_gt[np.concatenate(([True], claimed[1:] != claimed[:-1]))[:claimed.size]]
    matches[claimants[first_claim]] = 1
    return matches


def _stack(batches: Sequence[np.ndarray], fill: float) -> np.ndarray:
    """Concatenate ``(B_i, N_i, ...)`` batches along axis 0, padding axis 1 to the largest N."""
    rows = max(b.shape[1] for b in batches)
    if any(b.shape[1] != rows for b in batches):
        batches = [np.pad(b, [(0, 0), (0, rows - b.shape[1])] + [(0, 0)] * (b.ndim - 2),
                          constant_values=fill) for b in batches]
    return np.concatenate(batches, axis=0)


class VOCMApMetric:
    """Pascal VOC mAP with the area (VOC2010+) AP; see the module docstring for the protocol.

    Parameters
    ----------
    iou_thresh : float
        IoU at or above which a detection matches a ground truth (0.5 in the paper).
    class_names : sequence of str, optional
        Class names; when given, labels must lie in ``[0, len(class_names))`` and ``get`` reports
        every class. Without names, classes ``0 .. largest label seen`` are reported as ``'0'``,
        ``'1'``...
    """

    protocol = "voc_area"
    use_07_metric = False

    def __init__(self, iou_thresh: float = 0.5, class_names: Optional[Sequence[str]] = None) -> None:
        iou_thresh = float(iou_thresh)
        if not 0.0 < iou_thresh <= 1.0:
            raise ValueError("iou_thresh must be in (0, 1], got %r" % iou_thresh)
        if class_names is not None:
            if isinstance(class_names, str) or not all(isinstance(n, str) for n in class_names):
                raise ValueError("class_names must be a sequence of str, got %r" % (class_names,))
            class_names = list(class_names)
        self.iou_thresh = iou_thresh
        self.class_names = class_names
        self.num_classes = None if class_names is None else len(class_names)
        self.name = "VOC07MeanAP" if self.use_07_metric else "VOCMeanAP"
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated by ``update``."""
        self._batches: List[Tuple[np.ndarray, ...]] = []
        self._cache: Optional[Tuple[List[Optional[np.ndarray]], List[Optional[np.ndarray]]]] = None
        self.num_images = 0

    def update(
        self,
        pred_bboxes: Any,
        pred_labels: Any,
        pred_scores: Any,
        gt_bboxes: Any,
        gt_labels: Any,
        gt_difficults: Any = None,
    ) -> None:
        """Add a batch of detections and ground truths (checked now, matched at ``get``).

        Parameters
        ----------
        pred_bboxes : (B, N, 4) array-like
            Detected boxes ``(xmin, ymin, xmax, ymax)`` in pixels; ``mx.nd``, numpy, or a list of
            per-device batches.
        pred_labels, pred_scores : (B, N) or (B, N, 1) array-like
            Class ids (negative = padding row) and confidences.
        gt_bboxes : (B, M, 4) array-like
            Ground-truth boxes.
        gt_labels : (B, M) or (B, M, 1) array-like
            Ground-truth class ids (negative = padding row).
        gt_difficults : (B, M) or (B, M, 1) array-like, optional
            Nonzero for difficult objects, which are ignored; None means none is difficult.

        Raises
        ------
        ValueError
            On mismatched batch lengths or row counts, NaN/inf scores or boxes, boxes with
            ``xmin > xmax`` or ``ymin > ymax``, non-integer labels, labels outside the class range.
        """
        pb = as_batch(pred_bboxes, "pred_bboxes", 4)
        pl = as_batch(pred_labels, "pred_labels", None)
        ps = as_batch(pred_scores, "pred_scores", None)
        gb = as_batch(gt_bboxes, "gt_bboxes", 4)
        gl = as_batch(gt_labels, "gt_labels", None)
        gd = np.zeros(gl.shape, dtype=np.float32) if gt_difficults is None else as_batch(
            gt_difficults, "gt_difficults", None, fill=0.0)
        check_batch_sizes(
            [pb, pl, ps, gb, gl, gd],
            ["pred_bboxes", "pred_labels", "pred_scores", "gt_bboxes", "gt_labels", "gt_difficults"],
            ["pred", "pred", "pred", "gt", "gt", "gt"],
        )
        check_rows(pb, pl, ps, self.num_classes, ("pred_bboxes", "pred_labels", "pred_scores"))
        check_rows(gb, gl, gd, self.num_classes, ("gt_bboxes", "gt_labels", "gt_difficults"))
        # Copies: the caller may reuse its buffers.
        self._batches.append(tuple(np.array(a) for a in (pb, pl, ps, gb, gl, gd)))
        self.num_images += pb.shape[0]
        self._cache = None

    def _flat(self) -> Tuple[Tuple[np.ndarray, ...], Tuple[np.ndarray, ...]]:
        """All valid detections (in GluonCV's order) and ground truths (image, row order), flat."""
        pb, pl, ps, gb, gl, gd = [_stack([b[i] for b in self._batches], -1.0 if i != 5 else 0.0)
                                  for i in range(6)]
        p_img, p_row = _batch_order(pl, ps, pl >= 0)
        p_at = p_img * pl.shape[1] + p_row
        label = pl.reshape(-1)[p_at].astype(np.int64)
        score = ps.reshape(-1)[p_at]
        fix = _fix_large_tied_groups(p_img, label, score, p_row)
        if fix is not None:
            p_img, label, score, p_at = p_img[fix], label[fix], score[fix], p_at[fix]
        pred = (p_img, label, score, pb.reshape(-1, 4)[p_at])
        g_at = np.flatnonzero(gl.reshape(-1) >= 0)
        gt = (g_at // gl.shape[1], gl.reshape(-1)[g_at].astype(np.int64),
              gd.reshape(-1)[g_at] != 0, gb.reshape(-1, 4)[g_at])
        return pred, gt

    def _per_class(self) -> Tuple[List[Optional[np.ndarray]], List[Optional[np.ndarray]]]:
        """Recall and precision arrays per class (None when undefined), matching everything once."""
        if self._cache is not None:
            return self._cache
        if not self._batches:
            size = self.num_classes or 0
            return [None] * size, [None] * size
        (image, labels, scores, boxes), gt = self._flat()
        seen = max(int(labels.max()) if labels.size else -1, int(gt[1].max()) if gt[1].size else -1)
        size = self.num_classes if self.num_classes is not None else seen + 1
        recalls: List[Optional[np.ndarray]] = [None] * size
        precisions: List[Optional[np.ndarray]] = [None] * size
        matches = match_detections(image, labels, boxes, *gt, iou_thresh=self.iou_thresh)
        n_pos = np.bincount(gt[1][~gt[2]], minlength=size)
        # Stable, to keep the accumulation order inside a class (radix sort on 16-bit labels).
        by_class = np.argsort(labels.astype(np.int16) if size < 2 ** 15 else labels, kind="stable")
        bounds = np.searchsorted(labels[by_class], np.arange(size + 1))
        scores, matches = scores[by_class], matches[by_class]  # each class now a contiguous slice
        for c in range(size):
            lo, hi = bounds[c], bounds[c + 1]
            if lo == hi and n_pos[c] == 0:
                continue
            ranked = matches[lo:hi][scores[lo:hi].argsort()[::-1]]
            recalls[c], precisions[c] = ap_lib.recall_precision(ranked, int(n_pos[c]))
        self._cache = (recalls, precisions)
        return self._cache

    def pr_curves(self) -> Dict[int, Tuple[np.ndarray, np.ndarray]]:
        """Recall and precision (NaN as 0) per class that has ground truth: ``{class: (rec, prec)}``."""
        recalls, precisions = self._per_class()
        return {
            c: (rec, np.nan_to_num(prec))
            for c, (rec, prec) in enumerate(zip(recalls, precisions))
            if rec is not None
        }

    def class_aps(self) -> np.ndarray:
        """AP per class, shape (C,), NaN for classes without (non-difficult) ground truth."""
        recalls, precisions = self._per_class()
        return np.array(
            [ap_lib.voc_ap(r, p, self.use_07_metric) for r, p in zip(recalls, precisions)],
            dtype=np.float64,
        )

    def get(self) -> Tuple[List[str], List[float]]:
        """``(names, values)``: one AP per class then ``'mAP'``, the mean of the non-NaN APs."""
        aps = self.class_aps()
        names = list(self.class_names) if self.class_names is not None else [str(c) for c in range(aps.size)]
        mean_ap = float(np.nanmean(aps)) if np.isfinite(aps).any() else float("nan")
        return names + ["mAP"], [float(a) for a in aps] + [mean_ap]

    def results_fields(self) -> Dict[str, Any]:
        """Protocol fields of the results file (see :mod:`gluon_bof.metrics.results`)."""
        names, values = self.get()
        return {
            "protocol": self.protocol,
            "iou_thresh": self.iou_thresh,
            "difficult": "ignored",
            "classes": names[:-1],
            "per_class_ap": values[:-1],
            "map": values[-1],
            "num_images": self.num_images,
            "metrics": {},
        }


class VOC07MApMetric(VOCMApMetric):
    """Pascal VOC2007 mAP with the 11-point AP: the protocol of the paper's VOC results."""

    protocol = "voc07"
    use_07_metric = True
