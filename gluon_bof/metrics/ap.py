"""Pure functions of the Pascal VOC average precision (no state, no MXNet).

Definitions (Pascal VOC devkit, as GluonCV implements them):

* A class's detections, sorted by descending score, each marked 1 (true positive), 0 (false
  positive) or -1 (matched a *difficult* ground truth: ignored, it counts as neither).
* ``precision[i] = tp[i] / (tp[i] + fp[i])`` and ``recall[i] = tp[i] / n_pos`` over the first ``i + 1``
  detections, ``n_pos`` being the number of non-difficult ground truths. A prefix made of ignored
  detections only has precision 0/0; it is taken as 0.
* VOC07 (11-point) AP: the mean, over ``t`` in {0, 0.1, ..., 1}, of the highest precision reached at
  a recall >= t (0 if recall never reaches t).
* VOC2010+ ("area") AP: the area under the precision envelope (precision made non-increasing from the
  right), integrated over recall from 0 to the last recall.
"""
from typing import Optional, Tuple

import numpy as np

__all__ = ["recall_precision", "voc_ap", "voc07_ap", "voc_area_ap", "ELEVEN_POINTS"]

# The devkit's thresholds, produced the way GluonCV produces them (0.30000000000000004, ...): the
# comparisons ``recall >= t`` then agree to the last bit.
ELEVEN_POINTS = np.arange(0.0, 1.1, 0.1)


def recall_precision(matches: np.ndarray, n_pos: int) -> Tuple[Optional[np.ndarray], np.ndarray]:
    """Cumulative recall and precision of score-sorted detections.

    Parameters
    ----------
    matches : numpy.ndarray, shape (D,)
        1 (true positive), 0 (false positive) or -1 (ignored), in descending score order.
    n_pos : int
        Number of non-difficult ground truths of the class.

    Returns
    -------
    recall : numpy.ndarray of shape (D,), or None
        None when ``n_pos == 0``: recall is undefined and so is AP (NaN).
    precision : numpy.ndarray, shape (D,)
        NaN where no detection so far counts (only ignored ones).
    """
    matches = np.asarray(matches)
    tp = np.cumsum(matches == 1)
    fp = np.cumsum(matches == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = tp / (fp + tp)
    recall = tp / n_pos if n_pos > 0 else None
    return recall, precision


def voc07_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """11-point interpolated AP (VOC2007 devkit). ``recall`` must be non-decreasing.

    Parameters
    ----------
    recall, precision : numpy.ndarray, shape (D,)
        Cumulative values from :func:`recall_precision`; NaN precision counts as 0.

    Returns
    -------
    float
        AP in [0, 1].
    """
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.nan_to_num(np.asarray(precision, dtype=np.float64))
    if recall.size == 0:
        return 0.0
    # Highest precision at or after each position = at any recall >= that position's recall.
    best_after = np.maximum.accumulate(precision[::-1])[::-1]
    first = np.searchsorted(recall, ELEVEN_POINTS, side="left")
    ap = 0.0
    for index in first:
        ap += (best_after[index] if index < recall.size else 0.0) / 11.0
    return float(ap)


def voc_area_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the interpolated precision-recall curve (VOC2010+ devkit).

    Parameters
    ----------
    recall, precision : numpy.ndarray, shape (D,)
        Cumulative values from :func:`recall_precision`; NaN precision counts as 0.

    Returns
    -------
    float
        AP in [0, 1].
    """
    rec = np.concatenate(([0.0], np.asarray(recall, dtype=np.float64), [1.0]))
    pre = np.concatenate(([0.0], np.nan_to_num(np.asarray(precision, dtype=np.float64)), [0.0]))
    pre = np.maximum.accumulate(pre[::-1])[::-1]
    steps = np.flatnonzero(rec[1:] != rec[:-1])
    return float(np.sum((rec[steps + 1] - rec[steps]) * pre[steps + 1]))


def voc_ap(recall: Optional[np.ndarray], precision: Optional[np.ndarray], use_07_metric: bool) -> float:
    """VOC average precision; NaN when recall is undefined (class without ground truth).

    Parameters
    ----------
    recall, precision : numpy.ndarray of shape (D,), or None
        Cumulative values, as returned by :func:`recall_precision`.
    use_07_metric : bool
        True for the 11-point VOC2007 AP, False for the area (VOC2010+) AP.
    """
    if recall is None or precision is None:
        return float("nan")
    return voc07_ap(recall, precision) if use_07_metric else voc_area_ap(recall, precision)
