"""Box operations on detection labels (pure numpy).

A label is a ``float32`` array of shape ``(N, C)`` with ``C >= 4``: columns ``0:4`` are
``[xmin, ymin, xmax, ymax]`` in pixels, every other column (class id, difficult, mixup weight, ...)
is carried unchanged. Operations that remove boxes remove the whole row.
"""
from typing import Sequence, Tuple

import numpy as np

Window = Tuple[int, int, int, int]
"""A crop window ``(x, y, width, height)`` in integer pixels."""


def check_label(label: np.ndarray, name: str = "label") -> np.ndarray:
    """Validate a label array and return it as float32.

    Parameters
    ----------
    label : numpy.ndarray
        Array of shape ``(N, C)``, ``C >= 4``, finite values.
    name : str
        Name used in the error message.

    Returns
    -------
    numpy.ndarray
        ``label`` as a float32 array (no copy when it already is one).

    Raises
    ------
    ValueError
        If ``label`` is not 2-D, has fewer than 4 columns or holds NaN/inf.
    """
    arr = np.asarray(label)
    if arr.ndim != 2 or arr.shape[1] < 4:
        raise ValueError(f"{name} must have shape (N, C) with C >= 4 box columns, got shape {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of every pair of boxes (continuous coordinates, no +1).

    Parameters
    ----------
    boxes_a : numpy.ndarray
        ``(N, 4+)`` boxes; only columns ``0:4`` are used.
    boxes_b : numpy.ndarray
        ``(M, 4+)`` boxes.

    Returns
    -------
    numpy.ndarray
        ``(N, M)`` float64 IoU. A pair whose union is empty gets 0.
    """
    a = np.asarray(boxes_a, dtype=np.float64)[:, :4]
    b = np.asarray(boxes_b, dtype=np.float64)[:, :4]
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def translate_boxes(label: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Shift boxes by ``(dx, dy)`` pixels (e.g. after pasting the image into a larger canvas)."""
    out = np.array(label, dtype=np.float32, copy=True)
    out[:, 0:4:2] += dx
    out[:, 1:4:2] += dy
    return out


def resize_boxes(label: np.ndarray, in_size: Sequence[int], out_size: Sequence[int]) -> np.ndarray:
    """Scale boxes for an image resized from ``in_size`` to ``out_size``, both ``(width, height)``.

    Boxes are scaled per axis by ``out / in`` without clipping, like GluonCV's ``bbox.resize``.
    """
    if len(in_size) != 2 or len(out_size) != 2:
        raise ValueError(f"in_size and out_size must be (width, height), got {in_size} and {out_size}")
    if min(in_size) <= 0:
        raise ValueError(f"in_size must be positive, got {tuple(in_size)}")
    out = np.array(label, dtype=np.float64, copy=True)
    out[:, 0:4:2] *= out_size[0] / in_size[0]
    out[:, 1:4:2] *= out_size[1] / in_size[1]
    return out.astype(np.float32)


def flip_boxes(label: np.ndarray, width: float) -> np.ndarray:
    """Mirror boxes horizontally in an image ``width`` pixels wide: ``x' = width - x``, min/max swapped."""
    out = np.array(label, dtype=np.float32, copy=True)
    out[:, 0] = width - label[:, 2]
    out[:, 2] = width - label[:, 0]
    return out


def crop_boxes(label: np.ndarray, window: Sequence[int]) -> np.ndarray:
    """Boxes seen through a crop window, with GluonCV's ``bbox.crop(allow_outside_center=False)`` rules.

    A box is kept only if its center lies in ``[x, x + w) x [y, y + h)``; kept boxes are clipped
    to the window, shifted into window coordinates, and dropped if left with zero width or height.

    Parameters
    ----------
    label : numpy.ndarray
        ``(N, C)`` label.
    window : sequence of int
        ``(x, y, w, h)`` crop window in pixels.

    Returns
    -------
    numpy.ndarray
        ``(M, C)`` float32 label, ``M <= N``, rows in the input order.
    """
    if len(window) != 4:
        raise ValueError(f"window must be (x, y, width, height), got {window}")
    x, y, w, h = window
    lo = np.array([x, y], dtype=np.float64)
    hi = np.array([x + w, y + h], dtype=np.float64)
    boxes = np.asarray(label, dtype=np.float64)[:, :4]
    centers = (boxes[:, :2] + boxes[:, 2:4]) / 2
    keep = ((lo <= centers) & (centers < hi)).all(axis=1)
    new_lo = np.maximum(boxes[:, :2], lo) - lo
    new_hi = np.minimum(boxes[:, 2:4], hi) - lo
    keep &= (new_lo < new_hi).all(axis=1)
    out = np.array(label[keep], dtype=np.float32, copy=True)
    out[:, :2] = new_lo[keep]
    out[:, 2:4] = new_hi[keep]
    return out


def clip_boxes(label: np.ndarray, width: float, height: float) -> np.ndarray:
    """Clip boxes to ``[0, width] x [0, height]`` and drop rows left with zero width or height."""
    out = np.array(label, dtype=np.float32, copy=True)
    out[:, 0:4:2] = np.clip(out[:, 0:4:2], 0, width)
    out[:, 1:4:2] = np.clip(out[:, 1:4:2], 0, height)
    keep = (out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])
    return out[keep]
