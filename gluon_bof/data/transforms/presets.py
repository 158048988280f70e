"""The paper's training and validation pipelines for YOLOv3 and Faster R-CNN.

``YOLO3TrainTransform`` draws every random parameter first (same order, distributions and
probabilities as GluonCV's ``YOLO3DefaultTrainTransform``) and then builds only the pixels that
survive the crop: colour distortion and normalisation are per-pixel affine maps without clipping,
so they are folded into one ``3x4`` matrix applied to the visible part of the source image, and the
expand fill is written directly in normalised units. The result equals the straightforward order
(distort, expand, crop, resize, flip, normalise) to float tolerance, which the tests check.
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .bbox import Window, check_label, clip_boxes, flip_boxes, resize_boxes, translate_boxes
from .geometry import draw_expand, flip, random_crop_window, resize, short_within_size
from .image import (INTERP_AUTO, INTERP_LINEAR, ColorParams, normalize_affine, apply_affine, check_image,
                    color_matrix, draw_color_params, to_chw)

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class YOLO3Params:
    """Every random choice of one YOLOv3 training sample (``None`` / False = step skipped).

    Attributes
    ----------
    color : ColorParams or None
        Colour distortion parameters.
    expand : (ratio, (off_x, off_y)) or None
        Canvas ratio and paste offset.
    window : (x, y, w, h)
        Crop window in the (expanded) canvas.
    interp : int
        MXNet/OpenCV interpolation code 0-4 of the resize.
    flip : bool
        Horizontal flip after the resize.
    """

    color: Optional[ColorParams]
    expand: Optional[Tuple[float, Tuple[int, int]]]
    window: Window
    interp: int
    flip: bool


def _check_shape(shape: Sequence[int], name: str) -> Tuple[int, int]:
    if len(shape) != 2 or int(shape[0]) < 1 or int(shape[1]) < 1:
        raise ValueError(f"{name} must be (height, width) with positive sides, got {shape}")
    return int(shape[0]), int(shape[1])


def _check_input(img: np.ndarray, label: np.ndarray) -> np.ndarray:
    check_image(img)
    if img.dtype not in (np.uint8, np.float32):
        raise ValueError(f"img must be uint8 or float32 (HxWx3), got dtype {img.dtype}")
    return check_label(label)


class YOLO3TrainTransform:
    """YOLOv3 training augmentation (GluonCV's ``YOLO3DefaultTrainTransform`` without targets).

    Steps: colour distortion (each sub-op p=0.5), expand (p=0.5, up to 4x, filled with the mean
    pixel), SSD constrained crop, resize with a random interpolation 0-4, horizontal flip (p=0.5),
    ``to_tensor`` + normalisation. Each augmentation can be switched off alone: every step draws
    from its own sub-stream of ``rng``, so for a given ``rng`` the other steps make the same choices
    (the crop window still depends on the expand canvas).

    Parameters
    ----------
    width, height : int
        Default output size (overridden per call by ``shape``).
    mean, std : 3 floats
        Normalisation in [0, 1] pixel units; the expand fill is ``mean * 255``.
    color_jitter, expand, crop, flip : bool
        Enable the corresponding augmentation.
    random_interp : bool
        Random interpolation 0-4 for the resize; bilinear when False.

    Notes
    -----
    Unlike GluonCV, output boxes are clipped to the image and boxes left with no area are dropped
    (a no-op for valid input boxes), so the label always suits target generation.
    """

    def __init__(self, width: int, height: int, mean: Sequence[float] = MEAN, std: Sequence[float] = STD,
                 color_jitter: bool = True, expand: bool = True, crop: bool = True, flip: bool = True,
                 random_interp: bool = True):
        self._size = _check_shape((height, width), "(height, width)")
        self._norm = normalize_affine(mean, std)
        self._fill = [m * 255 for m in mean]
        self._fill_norm = (self._norm @ np.append(np.asarray(self._fill, dtype=np.float32), 1.0)).astype(np.float32)
        self._zero_fill = bool(np.abs(self._fill_norm).max() < 1e-6)  # the fill is the mean pixel
        self.color_jitter, self.expand, self.crop = bool(color_jitter), bool(expand), bool(crop)
        self.flip, self.random_interp = bool(flip), bool(random_interp)
        self.mean, self.std = tuple(mean), tuple(std)

    def draw(self, img_size: Tuple[int, int], label: np.ndarray,
             rng: np.random.Generator) -> Tuple[YOLO3Params, np.ndarray]:
        """Draw the sample's parameters for an image of ``img_size = (width, height)``.

        Returns the parameters and the label after expand and crop (canvas-window coordinates).
        """
        w, h = img_size
        # one independent stream per step: switching a step off leaves the others' draws unchanged
        color_rng, expand_rng, crop_rng, interp_rng, flip_rng = (
            np.random.default_rng(int(s)) for s in rng.integers(0, 2 ** 63, size=5))
        color = draw_color_params(color_rng) if self.color_jitter else None
        expansion = None
        if self.expand and expand_rng.uniform(0, 1) > 0.5:
            expansion = draw_expand((w, h), expand_rng, 4)
            ratio, (off_x, off_y) = expansion
            label = translate_boxes(label, off_x, off_y)
            w, h = int(w * ratio), int(h * ratio)
        if self.crop:
            label, window = random_crop_window(label, (w, h), crop_rng)
        else:
            window = (0, 0, w, h)
        interp = int(interp_rng.integers(0, 5)) if self.random_interp else INTERP_LINEAR
        flipped = bool(flip_rng.uniform(0, 1) < 0.5) if self.flip else False
        return YOLO3Params(color, expansion, window, interp, flipped), label

    def __call__(self, img: np.ndarray, label: np.ndarray, rng: np.random.Generator,
                 shape: Optional[Tuple[int, int]] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Augment one sample.

        Parameters
        ----------
        img : numpy.ndarray
            ``HxWx3`` uint8 (or float32) RGB image.
        label : numpy.ndarray
            ``(N, C)`` float32 label, boxes in columns 0:4.
        rng : numpy.random.Generator
            Source of every random choice.
        shape : (int, int), optional
            Output ``(height, width)``; defaults to the constructor's size.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            ``(3, height, width)`` float32 normalised image and the ``(M, C)`` float32 label.
        """
        label = _check_input(img, label)
        out_h, out_w = self._size if shape is None else _check_shape(shape, "shape")
        params, label = self.draw((img.shape[1], img.shape[0]), label, rng)
        return self.apply(img, label, params, (out_h, out_w))

    def apply(self, img: np.ndarray, label: np.ndarray, params: YOLO3Params,
              shape: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
        """Render fixed parameters; ``label`` is already in crop-window coordinates (see :meth:`draw`)."""
        out_h, out_w = shape
        x, y, cw, ch = params.window
        affine = self._norm if params.color is None else self._norm @ np.vstack([color_matrix(params.color),
                                                                               [0, 0, 0, 1]])
        off_x, off_y = (0, 0) if params.expand is None else params.expand[1]
        h, w = img.shape[:2]
        # visible part of the source, in window coordinates
        x0, y0 = max(off_x, x) - x, max(off_y, y) - y
        x1, y1 = min(off_x + w, x + cw) - x, min(off_y + h, y + ch) - y
        if x0 == 0 and y0 == 0 and x1 == cw and y1 == ch:
            patch = img[y - off_y:y - off_y + ch, x - off_x:x - off_x + cw]
            patch = cv2.transform(patch.astype(np.float32), affine)
        else:
            if self._zero_fill:  # calloc'd pages: no pass over the (up to 16x) canvas
                patch = np.zeros((ch, cw, 3), dtype=np.float32)
            else:
                patch = np.empty((ch, cw, 3), dtype=np.float32)
                patch[:] = self._fill_norm
            if x1 > x0 and y1 > y0:
                visible = img[y0 + y - off_y:y1 + y - off_y, x0 + x - off_x:x1 + x - off_x]
                patch[y0:y1, x0:x1] = cv2.transform(visible.astype(np.float32), affine).reshape(visible.shape)
        patch = cv2.resize(patch.reshape(ch, cw, 3), (out_w, out_h), interpolation=params.interp)
        label = resize_boxes(label, (cw, ch), (out_w, out_h))
        if params.flip:
            patch = cv2.flip(patch.reshape(out_h, out_w, 3), 1)
            label = flip_boxes(label, out_w)
        return to_chw(patch.reshape(out_h, out_w, 3)), clip_boxes(label, out_w, out_h)


class YOLO3ValTransform:
    """YOLOv3 validation: plain resize to ``(width, height)`` with GluonCV's automatic
    interpolation (9), then normalisation. Aspect ratio is not kept (no letterbox), like GluonCV."""

    def __init__(self, width: int, height: int, mean: Sequence[float] = MEAN, std: Sequence[float] = STD):
        self._h, self._w = _check_shape((height, width), "(height, width)")
        self._norm = normalize_affine(mean, std)

    def __call__(self, img: np.ndarray, label: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``HxWx3`` image and ``(N, C)`` label -> ``(3, height, width)`` float32, resized label."""
        label = _check_input(img, label)
        out, label = resize(img, label, (self._w, self._h), INTERP_AUTO)
        return to_chw(apply_affine(out, self._norm)), label


def _draw_short(short: Union[int, Tuple[int, int]], rng: Optional[np.random.Generator]) -> int:
    if isinstance(short, (tuple, list)):
        if len(short) != 2 or short[0] > short[1]:
            raise ValueError(f"short must be an int or a (low, high) range, got {short}")
        if rng is None:
            raise ValueError("a random short side (tuple) needs an rng")
        return int(rng.integers(short[0], short[1] + 1))
    return int(short)


class FasterRCNNTrainTransform:
    """Faster R-CNN training: ``resize_short_within`` (bilinear) and a horizontal flip (p=0.5) only,
    as in GluonCV's ``FasterRCNNDefaultTrainTransform`` without RPN targets (paper section 3.3).

    Parameters
    ----------
    short : int or (int, int)
        Short side, or an inclusive range to draw it from per sample.
    max_size : int
        Cap on the long side.
    flip : bool
        Enable the random flip.
    """

    def __init__(self, short: Union[int, Tuple[int, int]] = 600, max_size: int = 1000,
                 mean: Sequence[float] = MEAN, std: Sequence[float] = STD, flip: bool = True):
        _draw_short(short, np.random.default_rng(0))  # validates
        self.short, self.max_size, self.flip = short, int(max_size), bool(flip)
        self._norm = normalize_affine(mean, std)

    def __call__(self, img: np.ndarray, label: np.ndarray,
                 rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        """``HxWx3`` image, ``(N, C)`` label -> ``(3, H', W')`` float32 image and float32 label."""
        label = _check_input(img, label)
        short = _draw_short(self.short, rng)
        new_w, new_h = short_within_size(img.shape[0], img.shape[1], short, self.max_size)
        out, label = resize(img, label, (max(new_w, 1), max(new_h, 1)), INTERP_LINEAR)
        if self.flip and rng.uniform(0, 1) < 0.5:
            out, label = flip(out, label)
        return to_chw(apply_affine(out, self._norm)), label


class FasterRCNNValTransform:
    """Faster R-CNN validation: ``resize_short_within`` (bilinear) and normalisation; also returns
    ``im_scale = original height / resized height`` to map detections back, as GluonCV does."""

    def __init__(self, short: int = 600, max_size: int = 1000, mean: Sequence[float] = MEAN,
                 std: Sequence[float] = STD):
        self.short, self.max_size = _draw_short(short, None), int(max_size)
        self._norm = normalize_affine(mean, std)

    def __call__(self, img: np.ndarray, label: np.ndarray) -> Tuple[np.ndarray, np.ndarray, float]:
        """``HxWx3`` image, ``(N, C)`` label -> ``(3, H', W')`` float32, resized label, ``im_scale``."""
        label = _check_input(img, label)
        new_w, new_h = short_within_size(img.shape[0], img.shape[1], self.short, self.max_size)
        out, label = resize(img, label, (max(new_w, 1), max(new_h, 1)), INTERP_LINEAR)
        return to_chw(apply_affine(out, self._norm)), label, img.shape[0] / float(out.shape[0])
