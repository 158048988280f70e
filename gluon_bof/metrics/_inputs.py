"""Turn the batches given to ``metric.update`` into checked numpy arrays.

Detectors emit padded batches: ``(B, N, 4)`` boxes with ``(B, N)`` or ``(B, N, 1)`` labels and scores,
padding rows having a label of -1 (any negative label counts as padding, as in GluonCV). Every
argument may be an ``mx.nd.NDArray``, a numpy array, or a list/tuple of batches (one per device);
the parts of a list are stacked along the batch axis, padding the shorter ones with -1 rows.

The checks run on valid (non-padding) rows only and raise ``ValueError`` naming the argument, the
image index (in the batch, or counted over all batches when the VOC metrics check stored batches
in ``get``) and the broken rule, so a wrong input never turns into a wrong number.
"""
import math
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
from numpy.core import _multiarray_umath

__all__ = ["as_batch", "check_boxes", "check_labels", "check_finite", "check_batch_sizes", "check_rows",
           "rows_look_valid", "quick_check", "bad_images"]


def _to_numpy(value: Any, name: str) -> np.ndarray:
    """One array-like (``NDArray``, numpy array, nested list) as a numpy array."""
    if hasattr(value, "asnumpy"):
        return value.asnumpy()
    array = np.asarray(value)
    if array.dtype == object:
        raise ValueError("%s: could not be read as a numeric array (ragged or non-numeric)" % name)
    return array


def _pad_rows(array: np.ndarray, rows: int, fill: float) -> np.ndarray:
    """Pad axis 1 of ``array`` with ``fill`` up to ``rows`` rows."""
    if array.shape[1] == rows:
        return array
    pad = [(0, 0), (0, rows - array.shape[1])] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pad, mode="constant", constant_values=fill)


def as_batch(value: Any, name: str, last_dim: Optional[int], fill: float = -1.0) -> np.ndarray:
    """Convert one ``update`` argument to a numpy array of shape ``(B, N, last_dim)`` or ``(B, N)``.

    Parameters
    ----------
    value : mx.nd.NDArray, numpy.ndarray, or list/tuple of them
        A batch, or one batch per device (stacked along axis 0, padded with ``fill`` rows).
    name : str
        Argument name used in error messages.
    last_dim : int or None
        4 for boxes; None for per-row scalars (labels, scores, difficult flags), where a trailing
        axis of size 1 is squeezed.
    fill : float
        Value of padding rows added when list parts have different row counts.

    Returns
    -------
    numpy.ndarray
        ``(B, N, 4)`` for boxes, ``(B, N)`` otherwise; dtype kept.
    """
    if type(value) is np.ndarray:  # the common case, kept short: update may run once per image
        if last_dim is None:
            if value.ndim == 2:
                return value
        elif value.ndim == 3 and value.shape[2] == last_dim:
            return value
    if type(value) is np.ndarray or hasattr(value, "asnumpy"):
        array = value if type(value) is np.ndarray else value.asnumpy()
        if last_dim is None and array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        if array.ndim == (3 if last_dim is not None else 2) and (last_dim is None or array.shape[2] == last_dim):
            return array
    parts = list(value) if isinstance(value, (list, tuple)) else [value]
    arrays = []
    for i, part in enumerate(parts):
        part_name = name if len(parts) == 1 else "%s[%d]" % (name, i)
        array = _to_numpy(part, part_name)
        if last_dim is None and array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        want = 3 if last_dim is not None else 2
        if array.ndim != want or (last_dim is not None and array.shape[2] != last_dim):
            shape = "(B, N, %d)" % last_dim if last_dim is not None else "(B, N) or (B, N, 1)"
            raise ValueError("%s: expected shape %s, got %s" % (part_name, shape, array.shape))
        arrays.append(array)
    if len(arrays) == 1:
        return arrays[0]
    if not arrays:
        raise ValueError("%s: empty list, expected at least one batch" % name)
    rows = max(a.shape[1] for a in arrays)
    return np.concatenate([_pad_rows(a, rows, fill) for a in arrays], axis=0)


def check_batch_sizes(arrays: Sequence[np.ndarray], names: Sequence[str], rows_of: Sequence[str]) -> None:
    """Require the same batch size everywhere, and the same row count inside each group.

    ``rows_of[i]`` names the group ("pred" or "gt") of ``arrays[i]``: arrays of one group describe
    the same rows, so they must agree on ``N`` as well.
    """
    if all(a.shape[0] == arrays[0].shape[0] for a in arrays) and all(
            a.shape[1] == b.shape[1] for a, b, ga, gb in zip(arrays, arrays[1:], rows_of, rows_of[1:]) if ga == gb):
        return
    sizes = {n: a.shape[0] for a, n in zip(arrays, names)}
    if len(set(sizes.values())) > 1:
        raise ValueError(
            "update: mismatched batch lengths %s; every argument must describe the same images"
            % ", ".join("%s=%d" % kv for kv in sizes.items())
        )
    for group in set(rows_of):
        rows = {n: a.shape[1] for a, n, g in zip(arrays, names, rows_of) if g == group}
        if len(set(rows.values())) > 1:
            raise ValueError(
                "update: mismatched numbers of %s rows per image %s"
                % (group, ", ".join("%s=%d" % kv for kv in rows.items()))
            )


def _first_bad(mask: np.ndarray) -> tuple:
    """(image, row) of the first True entry of a ``(B, N)`` mask."""
    image, row = np.argwhere(mask)[0]
    return int(image), int(row)


def check_finite(values: np.ndarray, valid: np.ndarray, name: str, offset: int = 0) -> None:
    """Reject NaN/inf in the valid rows of a ``(B, N)`` or ``(B, N, k)`` array.

    ``offset`` is added to the image index in the message: the number of images before this batch,
    when the check runs on stored batches.
    """
    bad = ~np.isfinite(values)
    if bad.ndim == 3:
        bad = bad.any(axis=2)
    bad &= valid
    if bad.any():
        image, row = _first_bad(bad)
        raise ValueError(
            "%s: image %d, row %d is %r; values of valid rows must be finite (no NaN/inf)"
            % (name, image + offset, row, values[image, row].tolist())
        )


def check_boxes(boxes: np.ndarray, valid: np.ndarray, name: str, offset: int = 0) -> None:
    """Valid rows of ``(B, N, 4)`` corner boxes must be finite with xmin <= xmax and ymin <= ymax.

    ``offset``: added to the image index in the message (see :func:`check_finite`).
    """
    check_finite(boxes, valid, name, offset)
    bad = ((boxes[:, :, 0] > boxes[:, :, 2]) | (boxes[:, :, 1] > boxes[:, :, 3])) & valid
    if bad.any():
        image, row = _first_bad(bad)
        raise ValueError(
            "%s: image %d, row %d is %s; boxes are (xmin, ymin, xmax, ymax) with xmin <= xmax "
            "and ymin <= ymax" % (name, image + offset, row, boxes[image, row].tolist())
        )


def check_labels(labels: np.ndarray, name: str, num_classes: Optional[int], offset: int = 0) -> np.ndarray:
    """Check class labels and return the valid-row mask (label >= 0; negative = padding).

    Labels must not be NaN, must be whole numbers and, if ``num_classes`` is known, lie below it.
    ``offset``: added to the image index in the message (see :func:`check_finite`).
    """
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        image, row = _first_bad(np.isnan(labels))
        raise ValueError("%s: image %d, row %d is NaN; use -1 for padding rows" % (name, image + offset, row))
    valid = labels >= 0
    bad = valid & ((labels != np.floor(labels)) | ~np.isfinite(labels))
    if bad.any():
        image, row = _first_bad(bad)
        raise ValueError(
            "%s: image %d, row %d is %r; class labels must be whole numbers"
            % (name, image + offset, row, labels[image, row].item())
        )
    if num_classes is not None:
        bad = valid & (labels >= num_classes)
        if bad.any():
            image, row = _first_bad(bad)
            raise ValueError(
                "%s: image %d, row %d has class %d outside [0, %d); labels are 0-based contiguous "
                "class ids, -1 for padding" % (name, image + offset, row, int(labels[image, row]), num_classes)
            )
    return valid


# Bound once: the COCO metric runs these checks on every batch, often of a single image, where the
# attribute lookups and dispatch layers would cost as much as the checks.
_dot = _multiarray_umath.dot
_count_nonzero = _multiarray_umath.count_nonzero
_isfinite = math.isfinite


def rows_look_valid(
    boxes: np.ndarray,
    labels: np.ndarray,
    values: Optional[np.ndarray],
    num_classes: Optional[int],
    more_values: Optional[np.ndarray] = None,
) -> bool:
    """Cheap test that all rows, padding included, pass every check of :func:`check_rows`.

    A handful of whole-array operations: :func:`check_rows` calls it first and runs the precise
    checks only when it says False. False does not
    mean the input is bad: padding rows may hold anything, and a huge box may overflow the sums.

    Parameters
    ----------
    boxes : (B, N, 4) array
    labels : (B, N) array
        Negative = padding row.
    values, more_values : arrays or None
        Scores or difficult flags, any shape: must be finite. None when there are none to check.
    num_classes : int or None
        Upper bound of the labels, if known.
    """
    return quick_check(boxes, labels, num_classes, (boxes, values, more_values))


_FLOAT_BOUNDS: Dict[Tuple[Optional[int], np.dtype], np.ndarray] = {}


def _float_bound(num_classes: Optional[int], dtype: np.dtype) -> np.ndarray:
    """``num_classes - 0.5`` (2**31 - 0.5 without a bound) as a 0-d array of float ``dtype``.

    A Python float would make numpy resolve the comparison's type from its value on every call.
    """
    key = (num_classes, dtype)
    bound = _FLOAT_BOUNDS.get(key)
    if bound is None:
        bound = _FLOAT_BOUNDS[key] = np.array((2.0 ** 31 if num_classes is None else num_classes) - 0.5, dtype)
    return bound


def quick_check(boxes: np.ndarray, labels: np.ndarray, num_classes: Optional[int],
                finite: Sequence[Optional[np.ndarray]]) -> bool:
    """:func:`rows_look_valid` on arrays that may be views into one stored table.

    Parameters
    ----------
    boxes : (B, K, 4) array
        Boxes (detections and ground truths may sit side by side); may be a strided view.
    labels : (B, K) array
        Their labels, negative = padding.
    num_classes : int or None
        Upper bound of the labels, if known.
    finite : sequence of arrays or None
        Arrays whose every value must be finite (best contiguous: they are read flat).
    """
    if boxes.size == 0:
        return labels.size == 0 and all(v is None or v.size == 0 for v in finite)
    # Counting is cheaper than a reduction on small arrays; comparisons with NaN are False, and
    # infinite values make the sums of squares infinite.
    if _count_nonzero(np.less_equal(boxes[:, :, :2], boxes[:, :, 2:], order="F")) * 2 != boxes.size:
        return False
    # Whole labels below the bound: min(label, bound - 0.5) equals its floor (NaN never does).
    if labels.dtype.kind == "f":
        bound = _float_bound(num_classes, labels.dtype)
    else:
        bound = (2.0 ** 31 if num_classes is None else num_classes) - 0.5
        if labels.dtype.kind == "b":
            labels = labels.view(np.uint8)
    if _count_nonzero(np.floor(labels) != np.minimum(labels, bound)):
        return False
    for array in finite:
        if array is not None:
            flat = array.reshape(-1)
            if not _isfinite(_dot(flat, flat)):
                return False
    return True


def check_rows(
    boxes: np.ndarray,
    labels: np.ndarray,
    values: np.ndarray,
    num_classes: Optional[int],
    names: Sequence[str],
    offset: int = 0,
) -> None:
    """All checks of one group of rows (detections or ground truths), cheap when the input is good.

    Parameters
    ----------
    boxes : (B, N, 4) array
    labels : (B, N) array
        Negative = padding row.
    values : (B, N) array
        Scores or difficult flags: must be finite on valid rows.
    num_classes : int or None
        Upper bound of the labels, if known.
    names : (str, str, str)
        Argument names of ``boxes``, ``labels`` and ``values`` for the messages.
    offset : int
        Images before this batch: added to the image index in the messages.
    """
    if rows_look_valid(boxes, labels, values, num_classes):
        return
    # Slow path, only to name the first problem precisely (or find none: e.g. bad padding rows).
    valid = check_labels(labels, names[1], num_classes, offset)
    check_finite(values, valid, names[2], offset)
    check_boxes(boxes, valid, names[0], offset)


def bad_images(boxes: np.ndarray, labels: np.ndarray, values: Optional[np.ndarray],
               num_classes: Optional[int]) -> np.ndarray:
    """(B,) bool: images with a row that :func:`check_rows` rejects, all rules at once.

    Used to find which of many stored batches holds the first problem, so that only that batch is
    checked again, by :func:`check_rows`, for the message.

    Parameters
    ----------
    boxes : (B, N, 4) array
    labels : (B, N) array
        Negative = padding row (not checked, except that NaN labels are rejected anywhere).
    values : (B, N) array or None
        Scores or difficult flags: must be finite on valid rows.
    num_classes : int or None
        Upper bound of the labels, if known.
    """
    with np.errstate(invalid="ignore"):
        valid = labels >= 0
        bad = np.isnan(labels) if labels.dtype.kind == "f" else np.zeros(labels.shape, bool)
        whole = labels == np.floor(labels) if labels.dtype.kind == "f" else np.ones(labels.shape, bool)
        wrong = ~whole | ~np.isfinite(labels)
        if num_classes is not None:
            wrong |= labels >= num_classes
        if values is not None:
            wrong |= ~np.isfinite(values)
        wrong |= ~np.isfinite(boxes).all(axis=2)
        wrong |= (boxes[:, :, 0] > boxes[:, :, 2]) | (boxes[:, :, 1] > boxes[:, :, 3])
        bad |= valid & wrong
    return bad.any(axis=1)
