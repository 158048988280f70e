"""Geometric ops: each takes and returns ``(img, label)`` together.

The fixed-parameter ops (``expand``, ``crop``, ``flip``, ``resize``, ``resize_short_within``)
match GluonCV's functions on the same input; the ``random_*`` versions draw their parameters from
an explicit ``numpy.random.Generator`` (same distributions as GluonCV) and call the fixed ones.
"""
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .bbox import Window, box_iou, check_label, crop_boxes, flip_boxes, resize_boxes, translate_boxes
from .image import INTERP_LINEAR, check_image, imresize

DEFAULT_CROP_CONSTRAINTS = ((0.1, None), (0.3, None), (0.5, None), (0.7, None), (0.9, None), (None, 1))
"""SSD's crop constraints as ``(min IoU, max IoU)`` with every ground-truth box; None = unbounded."""


def expand(img: np.ndarray, label: np.ndarray, ratio: float, offset: Tuple[int, int],
           fill: Union[float, Sequence[float]] = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Paste ``img`` into a canvas ``ratio`` times larger filled with ``fill``.

    Parameters
    ----------
    img : numpy.ndarray
        ``HxWx3`` image.
    label : numpy.ndarray
        ``(N, C)`` label; boxes are shifted by ``offset``.
    ratio : float
        ``>= 1``; the canvas is ``int(H * ratio) x int(W * ratio)`` (GluonCV's truncation).
    offset : (int, int)
        ``(off_x, off_y)`` position of the image's top-left corner in the canvas.
    fill : float or 3 floats
        Canvas value, cast to the image dtype like GluonCV (123.675 becomes 123 for uint8).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Canvas with the dtype of ``img``, translated label (float32).
    """
    check_image(img)
    label = check_label(label)
    h, w = img.shape[:2]
    if ratio < 1:
        raise ValueError(f"expand ratio must be >= 1, got {ratio}")
    oh, ow = int(h * ratio), int(w * ratio)
    off_x, off_y = int(offset[0]), int(offset[1])
    if not (0 <= off_x <= ow - w and 0 <= off_y <= oh - h):
        raise ValueError(f"expand offset {tuple(offset)} puts a {w}x{h} image outside the {ow}x{oh} canvas")
    canvas = np.empty((oh, ow, 3), dtype=img.dtype)
    canvas[:] = np.asarray(fill, dtype=np.float64).astype(img.dtype)
    canvas[off_y:off_y + h, off_x:off_x + w] = img
    return canvas, translate_boxes(label, off_x, off_y)


def draw_expand(size: Tuple[int, int], rng: np.random.Generator,
                max_ratio: float = 4) -> Tuple[float, Tuple[int, int]]:
    """Draw GluonCV's ``random_expand`` parameters for an image of ``size = (width, height)``.

    Returns ``(ratio, (off_x, off_y))`` with ``ratio ~ U(1, max_ratio)`` and offsets uniform over
    the integer positions (both ends included). ``max_ratio <= 1`` gives ``(1.0, (0, 0))``.
    """
    w, h = size
    if max_ratio <= 1:
        return 1.0, (0, 0)
    ratio = rng.uniform(1, max_ratio)
    oh, ow = int(h * ratio), int(w * ratio)
    off_y = int(rng.integers(0, oh - h + 1))
    off_x = int(rng.integers(0, ow - w + 1))
    return ratio, (off_x, off_y)


def random_expand(img: np.ndarray, label: np.ndarray, rng: np.random.Generator, max_ratio: float = 4,
                  fill: Union[float, Sequence[float]] = 0) -> Tuple[np.ndarray, np.ndarray]:
    """GluonCV's ``random_expand`` (keep_ratio=True) applied unconditionally."""
    check_image(img)
    ratio, offset = draw_expand((img.shape[1], img.shape[0]), rng, max_ratio)
    return expand(img, label, ratio, offset, fill)


def crop(img: np.ndarray, label: np.ndarray, window: Window) -> Tuple[np.ndarray, np.ndarray]:
    """Cut ``window = (x, y, w, h)`` out of ``img``; boxes follow GluonCV's
    ``bbox_crop(allow_outside_center=False)`` (see :func:`crop_boxes`)."""
    check_image(img)
    label = check_label(label)
    x, y, w, h = (int(v) for v in window)
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > img.shape[1] or y + h > img.shape[0]:
        raise ValueError(f"crop window {tuple(window)} is empty or outside the {img.shape[1]}x{img.shape[0]} image")
    return img[y:y + h, x:x + w], crop_boxes(label, (x, y, w, h))


def random_crop_window(label: np.ndarray, size: Tuple[int, int], rng: np.random.Generator,
                       min_scale: float = 0.3, max_scale: float = 1.0, max_aspect_ratio: float = 2.0,
                       constraints: Optional[Sequence[Tuple[Optional[float], Optional[float]]]] = None,
                       max_trial: int = 50) -> Tuple[np.ndarray, Window]:
    """SSD-style constrained crop, GluonCV's ``random_crop_with_constraints`` on an explicit rng.

    For every ``(min_iou, max_iou)`` constraint up to ``max_trial`` windows are drawn
    (scale ~ U(min_scale, max_scale), aspect ratio ~ U(max(1/r, s^2), min(r, 1/s^2))); the first
    whose IoU with every box lies in the range becomes a candidate. With no boxes the first drawn
    window is returned at once. All ``len(constraints) * max_trial`` trials are drawn in one batch
    (independent draws, so the distribution equals GluonCV's sequential loop). A candidate is then
    chosen uniformly among them and the full image; if no box survives it, another is tried; if
    none works the full image is kept.

    Deviations from GluonCV, both for inputs on which GluonCV crashes: a trial window with a zero
    side counts as failed, and a window as large as the image gets offset 0.

    Parameters
    ----------
    label : numpy.ndarray
        ``(N, C)`` label in the coordinates of an image of ``size``.
    size : (int, int)
        ``(width, height)`` of the image.
    rng : numpy.random.Generator
        Source of all random draws.

    Returns
    -------
    (numpy.ndarray, Window)
        The cropped label (float32) and the window ``(x, y, w, h)``.
    """
    label = check_label(label)
    w, h = int(size[0]), int(size[1])
    if constraints is None:
        constraints = DEFAULT_CROP_CONSTRAINTS
    windows, valid = _draw_windows((w, h), len(constraints) * max_trial, rng, min_scale, max_scale,
                                   max_aspect_ratio)
    if len(label) == 0:
        first = int(np.argmax(valid[:max_trial]))
        if valid[first]:
            return label.copy(), tuple(int(v) for v in windows[first])
    candidates = [(0, 0, w, h)]
    if len(label):
        corners = windows.astype(np.float64)
        corners[:, 2:] += corners[:, :2]
        iou = box_iou(label, corners)
        iou_min, iou_max = iou.min(axis=0), iou.max(axis=0)
        for k, (min_iou, max_iou) in enumerate(constraints):
            lo = -np.inf if min_iou is None else min_iou
            hi = np.inf if max_iou is None else max_iou
            block = slice(k * max_trial, (k + 1) * max_trial)
            ok = valid[block] & (lo <= iou_min[block]) & (iou_max[block] <= hi)
            if ok.any():
                candidates.append(tuple(int(v) for v in windows[block][int(np.argmax(ok))]))
    while candidates:
        window = candidates.pop(int(rng.integers(0, len(candidates))))
        cropped = crop_boxes(label, window)
        if len(cropped):
            return cropped, window
    return label.copy(), (0, 0, w, h)


def _draw_windows(size: Tuple[int, int], count: int, rng: np.random.Generator, min_scale: float,
                  max_scale: float, max_aspect_ratio: float) -> Tuple[np.ndarray, np.ndarray]:
    """Draw ``count`` independent crop trials at once: ``(count, 4)`` int64 windows ``(x, y, w, h)``
    and a bool mask of the usable ones (both sides >= 1 pixel)."""
    w, h = size
    scale = rng.uniform(min_scale, max_scale, count)
    aspect = rng.uniform(np.maximum(1 / max_aspect_ratio, scale * scale),
                         np.minimum(max_aspect_ratio, 1 / (scale * scale)))
    crop_h = (h * scale / np.sqrt(aspect)).astype(np.int64)
    crop_w = (w * scale * np.sqrt(aspect)).astype(np.int64)
    # randrange(n): uniform integer in [0, n); a window as large as the image sits at 0
    top = np.floor(rng.uniform(0, 1, count) * np.maximum(h - crop_h, 0)).astype(np.int64)
    left = np.floor(rng.uniform(0, 1, count) * np.maximum(w - crop_w, 0)).astype(np.int64)
    valid = (crop_h >= 1) & (crop_w >= 1)
    return np.stack([left, top, crop_w, crop_h], axis=1), valid


def random_crop(img: np.ndarray, label: np.ndarray, rng: np.random.Generator,
                **kwargs) -> Tuple[np.ndarray, np.ndarray]:
    """Constrained random crop of image and boxes; ``kwargs`` go to :func:`random_crop_window`."""
    check_image(img)
    label, window = random_crop_window(label, (img.shape[1], img.shape[0]), rng, **kwargs)
    x, y, w, h = window
    return img[y:y + h, x:x + w], label


def flip(img: np.ndarray, label: np.ndarray, flip_x: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """Horizontal mirror of image and boxes (``x' = W - x``); ``flip_x=False`` returns the inputs."""
    check_image(img)
    label = check_label(label)
    if not flip_x:
        return img, label
    return cv2.flip(img, 1).reshape(img.shape), flip_boxes(label, img.shape[1])


def random_flip(img: np.ndarray, label: np.ndarray, rng: np.random.Generator,
                p: float = 0.5) -> Tuple[np.ndarray, np.ndarray]:
    """Horizontal flip with probability ``p``."""
    return flip(img, label, bool(rng.uniform(0, 1) < p))


def resize(img: np.ndarray, label: np.ndarray, size: Tuple[int, int],
           interp: int = INTERP_LINEAR) -> Tuple[np.ndarray, np.ndarray]:
    """Resize image and boxes to ``size = (width, height)``; ``interp`` is an MXNet code (0-4, 9)."""
    label = check_label(label)
    out = imresize(img, size[0], size[1], interp)
    return out, resize_boxes(label, (img.shape[1], img.shape[0]), size)


def short_within_size(height: int, width: int, short: int, max_size: int) -> Tuple[int, int]:
    """GluonCV's ``resize_short_within`` target ``(new_w, new_h)`` (mult_base 1).

    The short side becomes ``short`` unless the long side would then exceed ``max_size``, in which
    case the long side becomes ``max_size``; sides are rounded half to even (``np.round``).
    """
    if short < 1 or max_size < 1:
        raise ValueError(f"short and max_size must be >= 1, got short={short}, max_size={max_size}")
    size_min, size_max = (height, width) if width > height else (width, height)
    scale = float(short) / float(size_min)
    if np.round(scale * size_max) > max_size:
        scale = float(np.floor(max_size)) / float(size_max)
    return int(np.round(width * scale)), int(np.round(height * scale))


def resize_short_within(img: np.ndarray, label: np.ndarray, short: int, max_size: int,
                        interp: int = INTERP_LINEAR) -> Tuple[np.ndarray, np.ndarray]:
    """Resize so the short side is ``short`` and the long side at most ``max_size`` (see
    :func:`short_within_size`); boxes are scaled with the image."""
    check_image(img)
    new_w, new_h = short_within_size(img.shape[0], img.shape[1], short, max_size)
    return resize(img, label, (max(new_w, 1), max(new_h, 1)), interp)
