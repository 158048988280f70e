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

__all__ = ["recall_precision", "voc_ap", "voc07_ap", "voc_area_ap", "ranked_curves", "class_aps", "ELEVEN_POINTS"]

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
    points = _eleven_points(np.asarray(recall, dtype=np.float64),
                            np.nan_to_num(np.asarray(precision, dtype=np.float64)))
    ap = 0.0
    for value in points:
        ap += value / 11.0
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
    return _area(np.asarray(recall, dtype=np.float64), np.nan_to_num(np.asarray(precision, dtype=np.float64)))


def _eleven_points(recall: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """(11,) highest precision at recall >= 0, 0.1, ..., 1 (0 where never reached); float64 inputs, no NaN."""
    points = np.zeros(ELEVEN_POINTS.size)
    if recall.size == 0:
        return points
    # Highest precision at or after each position = at any recall >= that position's recall.
    best_after = np.maximum.accumulate(precision[::-1])[::-1]
    first = recall.searchsorted(ELEVEN_POINTS, side="left")
    reached = first < recall.size
    points[reached] = best_after[first[reached]]
    return points


def _area(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope; float64 inputs, no NaN."""
    rec = np.concatenate(([0.0], recall, [1.0]))
    pre = np.concatenate(([0.0], precision, [0.0]))
    pre = np.maximum.accumulate(pre[::-1])[::-1]
    steps = np.flatnonzero(rec[1:] != rec[:-1])
    return float(np.sum((rec[steps + 1] - rec[steps]) * pre[steps + 1]))


def ranked_curves(matches: np.ndarray, bounds: np.ndarray, n_pos: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`recall_precision` of every class at once.

    Parameters
    ----------
    matches : (D,) int array
        1 / 0 / -1 per detection, class after class, each class in descending score order: class
        ``c`` is ``matches[bounds[c]:bounds[c + 1]]``.
    bounds : (C + 1,) int array
        Non-decreasing, ``bounds[0] == 0`` and ``bounds[-1] == D``.
    n_pos : (C,) int array
        Non-difficult ground truths per class.

    Returns
    -------
    recall : (D,) float64 array
        Cumulative recall inside each class; NaN for classes with ``n_pos == 0``.
    precision : (D,) float64 array
        Cumulative precision inside each class; 0 where no detection counts yet (only ignored
        ones), which is how the APs treat that 0/0.
    """
    matches = np.asarray(matches)
    edges = np.asarray(bounds).tolist()
    n_pos = np.asarray(n_pos)
    tp = np.cumsum(matches == 1)
    fp = np.cumsum(matches == 0)
    recall = np.full(tp.size, np.nan)
    # Integer cumulative counts inside each class: global sums minus the sum before the class
    # (classes taken last to first, so that sum is still the global one).
    for c in reversed(range(len(edges) - 1)):
        lo, hi = edges[c], edges[c + 1]
        if lo == hi:
            continue
        if lo:
            tp[lo:hi] -= tp[lo - 1]
            fp[lo:hi] -= fp[lo - 1]
        if n_pos[c] > 0:
            np.divide(tp[lo:hi], n_pos[c], out=recall[lo:hi])
    # Where nothing counts yet, tp = seen = 0 and 0 / 1 gives the 0 the APs use; elsewhere this
    # is tp / seen.
    precision = tp / np.maximum(tp + fp, 1)
    return recall, precision


def class_aps(recall: np.ndarray, precision: np.ndarray, bounds: np.ndarray, n_pos: np.ndarray,
              use_07_metric: bool) -> np.ndarray:
    """:func:`voc_ap` of every class from :func:`ranked_curves`' output, with the same numbers.

    Parameters
    ----------
    recall, precision : (D,) float64 arrays
        From :func:`ranked_curves`.
    bounds : (C + 1,) int array
        Class ``c`` is ``[bounds[c], bounds[c + 1])``.
    n_pos : (C,) int array
        Non-difficult ground truths per class; classes with none get NaN.
    use_07_metric : bool
        True for the 11-point VOC2007 AP, False for the area (VOC2010+) AP.

    Returns
    -------
    (C,) float64 array
    """
    size = len(bounds) - 1
    aps = np.full(size, np.nan)
    classes = np.flatnonzero(np.asarray(n_pos) > 0).tolist()
    edges = np.asarray(bounds).tolist()
    if not use_07_metric:
        for c in classes:
            aps[c] = _area(recall[edges[c]:edges[c + 1]], precision[edges[c]:edges[c + 1]])
        return aps
    points = np.zeros((size, ELEVEN_POINTS.size))
    for c in classes:
        points[c] = _eleven_points(recall[edges[c]:edges[c + 1]], precision[edges[c]:edges[c + 1]])
    # Summed point by point from 0, as voc07_ap does, so every class gets the same rounding.
    ap = np.zeros(size)
    for k in range(ELEVEN_POINTS.size):
        ap += points[:, k] / 11.0
    aps[classes] = ap[classes]
    return aps


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
