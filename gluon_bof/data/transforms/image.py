"""Pixel operations: colour distortion, resizing and normalisation (numpy + OpenCV).

Images are ``HxWx3`` arrays (uint8 or float32, RGB). Colour distortion follows GluonCV's
``experimental.image.random_color_distort``: every sub-op is a per-pixel affine map of the RGB
vector with no clipping, so the whole distortion is one ``3x4`` affine matrix applied with
``cv2.transform``.

GluonCV's hue op (reproduced here on purpose) rotates the I/Q plane of YIQ by ``alpha * pi``
radians with ``alpha ~ U(-18, 18)``, i.e. by an essentially uniform random angle, not by up to
18 degrees as the name suggests.
"""
from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np

INTERP_NEAREST, INTERP_LINEAR, INTERP_CUBIC, INTERP_AREA, INTERP_LANCZOS = 0, 1, 2, 3, 4
INTERP_AUTO = 9
"""MXNet/GluonCV's automatic rule: cubic when enlarging both sides, area when shrinking both,
bilinear otherwise. Codes 0-4 equal OpenCV's ``INTER_*`` values."""

_GRAY = np.array([0.299, 0.587, 0.114])
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                        [0.596, -0.274, -0.321],
                        [0.211, -0.523, 0.311]])
_YIQ_TO_RGB = np.array([[1.0, 0.956, 0.621],
                        [1.0, -0.272, -0.647],
                        [1.0, -1.107, 1.705]])


@dataclass(frozen=True)
class ColorParams:
    """Fixed parameters of one colour distortion; ``None`` means that sub-op did not fire.

    Attributes
    ----------
    brightness : float or None
        Delta added to every channel (pixel units, GluonCV draws U(-32, 32)).
    contrast : float or None
        Factor multiplying every channel (U(0.5, 1.5)).
    saturation : float or None
        Blend factor ``alpha``: ``alpha * rgb + (1 - alpha) * gray`` (U(0.5, 1.5)).
    hue : float or None
        GluonCV's ``alpha`` (U(-18, 18)); the YIQ rotation angle is ``alpha * pi`` radians.
    contrast_first : bool
        Order after brightness: contrast, saturation, hue if True, else saturation, hue, contrast.
    """

    brightness: Optional[float] = None
    contrast: Optional[float] = None
    saturation: Optional[float] = None
    hue: Optional[float] = None
    contrast_first: bool = True


def draw_color_params(rng: np.random.Generator, brightness_delta: float = 32,
                      contrast_range: Sequence[float] = (0.5, 1.5),
                      saturation_range: Sequence[float] = (0.5, 1.5),
                      hue_delta: float = 18, p: float = 0.5) -> ColorParams:
    """Draw GluonCV's random colour distortion: each sub-op fires with probability ``p``,
    and the two sub-op orders are equally likely."""
    def gate() -> bool:
        return bool(rng.uniform(0, 1) < p)

    bright = rng.uniform(-brightness_delta, brightness_delta) if gate() else None
    contrast_first = bool(rng.integers(0, 2))
    values = {}
    order = ("contrast", "saturation", "hue") if contrast_first else ("saturation", "hue", "contrast")
    for name in order:
        if not gate():
            values[name] = None
        elif name == "contrast":
            values[name] = rng.uniform(*contrast_range)
        elif name == "saturation":
            values[name] = rng.uniform(*saturation_range)
        else:
            values[name] = rng.uniform(-hue_delta, hue_delta)
    return ColorParams(brightness=bright, contrast_first=contrast_first, **values)


def _hue_matrix(alpha: float) -> np.ndarray:
    """3x3 matrix (column-vector convention) of GluonCV's hue op with parameter ``alpha``."""
    u, w = np.cos(alpha * np.pi), np.sin(alpha * np.pi)
    rotation = np.array([[1.0, 0.0, 0.0], [0.0, u, -w], [0.0, w, u]])
    return _YIQ_TO_RGB @ rotation @ _RGB_TO_YIQ


def color_matrix(params: ColorParams) -> np.ndarray:
    """The ``3x4`` affine map ``[A | b]`` (float64) with ``rgb' = A @ rgb + b`` of a distortion."""
    affine = np.eye(3, 4)

    def then(linear: np.ndarray, offset: float = 0.0) -> None:
        affine[:] = linear @ affine
        affine[:, 3] += offset

    if params.brightness is not None:
        then(np.eye(3), params.brightness)
    steps = ["contrast", "saturation", "hue"] if params.contrast_first else ["saturation", "hue", "contrast"]
    for name in steps:
        value = getattr(params, name)
        if value is None:
            continue
        if name == "contrast":
            then(value * np.eye(3))
        elif name == "saturation":
            then(value * np.eye(3) + (1.0 - value) * np.outer(np.ones(3), _GRAY))
        else:
            then(_hue_matrix(value))
    return affine


def apply_affine(img: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Apply a ``3x4`` per-pixel affine colour map; returns float32 HWC, not clipped."""
    src = img if img.dtype == np.float32 else img.astype(np.float32)
    return cv2.transform(src, np.asarray(affine, dtype=np.float64))


def color_distort(img: np.ndarray, params: ColorParams) -> np.ndarray:
    """Colour distortion with fixed parameters (GluonCV's op math); float32 HWC output, unclipped."""
    check_image(img)
    return apply_affine(img, color_matrix(params))


def random_color_distort(img: np.ndarray, rng: np.random.Generator, **kwargs) -> np.ndarray:
    """GluonCV's random colour distortion; ``kwargs`` go to :func:`draw_color_params`."""
    return color_distort(img, draw_color_params(rng, **kwargs))


def check_image(img: np.ndarray, name: str = "img") -> None:
    """Raise ``ValueError`` unless ``img`` is a non-empty ``HxWx3`` numpy array."""
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{name} must be a numpy array (HxWx3), got {type(img).__name__}")
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"{name} must have shape (H, W, 3) with H, W >= 1, got {img.shape}")


def resolve_interp(interp: int, in_hw: Sequence[int], out_hw: Sequence[int]) -> int:
    """Map an MXNet interpolation code to an OpenCV one (0-4), resolving 9 (automatic)."""
    if interp == INTERP_AUTO:
        (ih, iw), (oh, ow) = in_hw, out_hw
        if oh > ih and ow > iw:
            return INTERP_CUBIC
        if oh < ih and ow < iw:
            return INTERP_AREA
        return INTERP_LINEAR
    if interp not in (0, 1, 2, 3, 4):
        raise ValueError(f"interp must be 0-4 or 9 (auto), got {interp}")
    return int(interp)


def imresize(img: np.ndarray, width: int, height: int, interp: int = INTERP_LINEAR) -> np.ndarray:
    """Resize ``img`` to ``(width, height)`` with MXNet's interpolation codes (OpenCV underneath).

    Keeps the dtype; a 1-pixel-wide result keeps its 3 channels.
    """
    check_image(img)
    if int(width) < 1 or int(height) < 1:
        raise ValueError(f"resize target must be at least 1x1 pixels, got width={width}, height={height}")
    method = resolve_interp(interp, img.shape[:2], (height, width))
    out = cv2.resize(img, (int(width), int(height)), interpolation=method)
    return out.reshape(int(height), int(width), 3)


def normalize_affine(mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``3x4`` affine of ``to_tensor`` + ``normalize``: ``(x / 255 - mean) / std`` per channel."""
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    if mean.shape != (3,) or std.shape != (3,) or (std <= 0).any():
        raise ValueError(f"mean and std must be 3 values with std > 0, got mean={mean}, std={std}")
    return np.concatenate([np.diag(1.0 / (255.0 * std)), (-mean / std)[:, None]], axis=1)


def normalize(img: np.ndarray, mean: Sequence[float] = (0.485, 0.456, 0.406),
              std: Sequence[float] = (0.229, 0.224, 0.225)) -> np.ndarray:
    """``to_tensor`` + ``normalize``: HWC pixel values (0-255 range) -> CHW float32 ``(x/255 - mean)/std``."""
    check_image(img)
    out = apply_affine(img, normalize_affine(mean, std))
    return to_chw(out)


def to_chw(img: np.ndarray) -> np.ndarray:
    """HWC -> contiguous CHW float32."""
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)
