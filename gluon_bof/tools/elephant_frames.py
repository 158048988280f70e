"""Frames of the "elephant in the room" test: an object cut out with its mask, slid across scenes.

The object is an RGB image with a binary mask (a separate image, white = object, or the alpha
channel); it is cropped to the mask's extent, scaled by each factor of ``scales`` (1 = its own
pixels; colours averaged over object pixels only), and pasted at full opacity (mask pixels replace
the scene's, the rest of the scene is untouched) at a ``columns x rows`` grid of positions spanning
the whole scene, so the object is always entirely inside. The pasted box is the mask's extent in
the frame, ``[xmin, ymin, xmax, ymax]`` with inclusive pixel indices (the convention of dataset
labels).

Without files, the object is a circle cut from a Shapes validation image (fully visible: no other
object's box touches it; its mask is the ellipse the Shapes generator fills in its box) and the
scenes are other Shapes validation images.

Bad inputs raise :class:`ElephantInputError` as ``"<file> [<rule>]: <text>"``; unreadable images
raise :class:`gluon_bof.data.validation.DatasetError` in the same form.
"""
import os
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..data.base import read_image
from ..data.shapes import SHAPE_CLASSES, ShapesDetection
from .detect import collect_images

__all__ = ["ElephantInputError", "PastedObject", "Scene", "Frame", "load_object", "load_scenes",
           "default_object", "default_scenes", "scale_object", "grid_positions", "paste", "check_fits",
           "make_frames", "MASK_LEVEL"]

MASK_LEVEL = 128  # mask and alpha values at or above this are object pixels (JPEG-safe)
SHAPES_SEED = 0  # the seed of the training scripts' Shapes validation set
_DEFAULT_CLASS = "circle"
_DEFAULT_MIN_SIDE = 60  # pixels: the default object is the first suitable circle at least this big


class ElephantInputError(ValueError):
    """An object, mask or scene cannot be used; the message names the file and the rule broken."""


def _error(path: str, rule: str, text: str) -> ElephantInputError:
    return ElephantInputError("%s [%s]: %s" % (path, rule, text))


@dataclass
class PastedObject:
    """``image (h, w, 3)`` uint8 RGB and ``mask (h, w)`` bool, cropped to the mask's extent."""

    image: np.ndarray
    mask: np.ndarray
    name: str
    class_name: Optional[str] = None

    @property
    def size(self) -> Tuple[int, int]:
        """``(width, height)`` in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass
class Scene:
    """A clean scene: ``image (H, W, 3)`` uint8 RGB and where it came from."""

    image: np.ndarray
    name: str


@dataclass
class Frame:
    """One pasted frame: the scene index, scale, grid cell and top-left corner of the object."""

    index: int
    scene: int
    scale: float
    column: int
    row: int
    x: int
    y: int
    image: np.ndarray
    mask: np.ndarray
    box: Tuple[int, int, int, int]


def _crop_to_mask(image: np.ndarray, mask: np.ndarray, name: str, class_name: Optional[str],
                  what: str, mask_file: Optional[str] = None) -> PastedObject:
    ys, xs = np.nonzero(mask)
    if not len(xs):
        raise _error(mask_file or name, "mask_empty", "%s has no object pixel (no value >= %d)" % (what, MASK_LEVEL))
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return PastedObject(np.ascontiguousarray(image[y0:y1, x0:x1]), np.ascontiguousarray(mask[y0:y1, x0:x1]),
                        name, class_name)


def load_object(image_path: str, mask_path: Optional[str] = None, class_name: Optional[str] = None) -> PastedObject:
    """The object of ``image_path`` with the mask of ``mask_path`` (any channel >= 128), else its alpha.

    Raises :class:`ElephantInputError` when the mask's size differs from the image's (rule
    ``mask_size``), no pixel is set (``mask_empty``) or, without a mask file, the image has no alpha
    channel (``no_alpha``).
    """
    image = read_image(image_path)
    h, w = image.shape[:2]
    if mask_path is not None:
        mask_rgb = read_image(mask_path)
        if mask_rgb.shape[:2] != (h, w):
            raise _error(mask_path, "mask_size", "the mask is %dx%d pixels but the object image %s is %dx%d; "
                         "they must be the same size" % (mask_rgb.shape[1], mask_rgb.shape[0], image_path, w, h))
        mask = mask_rgb.max(axis=2) >= MASK_LEVEL
        return _crop_to_mask(image, mask, image_path, class_name, "the mask", mask_path)
    raw = cv2.imdecode(np.fromfile(image_path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 3 or raw.shape[2] != 4:
        raise _error(image_path, "no_alpha", "the object image has no alpha channel; pass --mask (a black and "
                     "white image of the same size, white = object)")
    if raw.shape[:2] != (h, w):
        raise _error(image_path, "mask_size", "the alpha channel is %dx%d but the upright image %dx%d (EXIF "
                     "rotation); pass a separate --mask" % (raw.shape[1], raw.shape[0], w, h))
    alpha = raw[:, :, 3]
    if alpha.dtype != np.uint8:  # 16-bit PNG
        alpha = (alpha.astype(np.float64) / np.iinfo(alpha.dtype).max * 255).astype(np.uint8)
    return _crop_to_mask(image, alpha >= MASK_LEVEL, image_path, class_name, "the alpha channel")


def load_scenes(paths: Sequence[str]) -> List[Scene]:
    """Scene images from files and folders (a folder gives its image files, sorted).

    A missing path, a folder without images or an unreadable image is an error: every scene of
    the table must be the one asked for.
    """
    files, missing = collect_images(paths)
    if missing:
        raise _error(missing[0]["image"], "scene_missing", "no such file or folder")
    for path in paths:
        if os.path.isdir(path) and not any(f.startswith(os.path.join(path, "")) for f in files):
            raise _error(path, "scene_missing", "the folder holds no image file")
    return [Scene(read_image(f), f) for f in files]


def _touches_other(label: np.ndarray, k: int) -> bool:
    """Whether any other box of ``label`` touches or overlaps box ``k`` (then it may hide part of it)."""
    box = label[k]
    for j, other in enumerate(label):
        if j != k and min(box[2], other[2]) - max(box[0], other[0]) >= -1 and \
                min(box[3], other[3]) - max(box[1], other[1]) >= -1:
            return True
    return False


def _ellipse_mask(w: int, h: int) -> np.ndarray:
    """The filled ellipse of a ``w x h`` box, drawn as the Shapes generator draws circles."""
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (((w - 1) / 2, (h - 1) / 2), (w, h), 0), 1, -1)
    return mask.astype(bool)


def default_object(seed: int = SHAPES_SEED, search: int = 100) -> Tuple[PastedObject, int]:
    """A circle cut from the first Shapes validation image holding a fully visible one of at least
    60 pixels; returns the object and the index of its image."""
    cls = SHAPE_CLASSES.index(_DEFAULT_CLASS)
    data = ShapesDetection(num_images=search, seed=seed, split="val")
    for idx in range(search):
        image, label = data.generate(idx)
        for k, row in enumerate(label):
            x0, y0, x1, y1 = (int(v) for v in row[:4])
            small = min(x1 - x0, y1 - y0) + 1 < _DEFAULT_MIN_SIDE
            if int(row[4]) != cls or row[5] or small or _touches_other(label, k):
                continue
            mask = _ellipse_mask(x1 - x0 + 1, y1 - y0 + 1)
            name = "<shapes val seed=%d #%d %s>" % (seed, idx, _DEFAULT_CLASS)
            return _crop_to_mask(image[y0:y1 + 1, x0:x1 + 1], mask, name, _DEFAULT_CLASS, "the mask"), idx
    raise RuntimeError("no fully visible %s of %d pixels in the first %d Shapes validation images" % (
        _DEFAULT_CLASS, _DEFAULT_MIN_SIDE, search))


def default_scenes(count: int, skip: int, seed: int = SHAPES_SEED) -> List[Scene]:
    """The first ``count`` Shapes validation images, leaving out image ``skip`` (the object's)."""
    if count < 1:
        raise ValueError("--num-scenes %d: need at least one scene" % count)
    data = ShapesDetection(num_images=count + 1, seed=seed, split="val")
    indices = [i for i in range(count + 1) if i != skip][:count]
    return [Scene(data.generate(i)[0], "<shapes val seed=%d #%d>" % (seed, i)) for i in indices]


def scale_object(obj: PastedObject, scale: float) -> PastedObject:
    """The object resized by ``scale`` (area interpolation shrinking, linear growing), then cropped
    to its new extent.

    The mask is resized as a coverage map and cut at one half; colours are averaged over object
    pixels only (weighted by the coverage), so what lies outside the mask never bleeds into the edge.
    """
    if not scale > 0:
        raise ValueError("scale %r: must be positive" % (scale,))
    if scale == 1:
        return obj
    w, h = obj.size
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    weight = obj.mask.astype(np.float32)
    cover = cv2.resize(weight, size, interpolation=interp)
    colour = cv2.resize(obj.image.astype(np.float32) * weight[:, :, None], size, interpolation=interp)
    image = np.clip(np.round(colour / np.maximum(cover, 1e-6)[:, :, None]), 0, 255).astype(np.uint8)
    return _crop_to_mask(image, cover >= 0.5, obj.name, obj.class_name, "the mask scaled by %g" % scale)


def grid_positions(scene_size: Tuple[int, int], object_size: Tuple[int, int], columns: int,
                   rows: int) -> List[Tuple[int, int, int, int]]:
    """``(column, row, x, y)`` top-left corners, row by row, evenly spread so that the object spans
    the scene from edge to edge (one column or row: centred). Sizes are ``(width, height)``."""
    if columns < 1 or rows < 1:
        raise ValueError("grid %dx%d: need at least one column and one row" % (columns, rows))
    free_x, free_y = scene_size[0] - object_size[0], scene_size[1] - object_size[1]
    if free_x < 0 or free_y < 0:
        raise ValueError("object %dx%d does not fit in scene %dx%d" % (object_size + scene_size))
    xs = np.round(np.linspace(0, free_x, columns)) if columns > 1 else [round(free_x / 2)]
    ys = np.round(np.linspace(0, free_y, rows)) if rows > 1 else [round(free_y / 2)]
    return [(c, r, int(x), int(y)) for r, y in enumerate(ys) for c, x in enumerate(xs)]


def paste(scene: np.ndarray, obj: PastedObject, x: int,
          y: int) -> Tuple[np.ndarray, np.ndarray, Tuple[int, int, int, int]]:
    """``(frame, mask (H, W) bool, box)``: ``obj`` pasted at full opacity with its top-left at ``(x, y)``."""
    w, h = obj.size
    if x < 0 or y < 0 or x + w > scene.shape[1] or y + h > scene.shape[0]:
        raise ValueError("object %dx%d at (%d, %d) leaves scene %dx%d" % (w, h, x, y, scene.shape[1], scene.shape[0]))
    frame = scene.copy()
    mask = np.zeros(scene.shape[:2], bool)
    mask[y:y + h, x:x + w] = obj.mask
    frame[mask] = obj.image[obj.mask]
    return frame, mask, (x, y, x + w - 1, y + h - 1)


def check_fits(scenes: Sequence[Scene], objects: Sequence[Tuple[float, PastedObject]]) -> None:
    """Raise ``object_too_large`` when a scaled object is wider or taller than a scene."""
    for scale, obj in objects:
        for scene in scenes:
            (w, h), (sh, sw) = obj.size, scene.image.shape[:2]
            if w > sw or h > sh:
                raise _error(obj.name, "object_too_large", "the object is %dx%d pixels at scale %g, larger than "
                             "scene %s (%dx%d); use smaller --scales or a smaller object" % (
                                 w, h, scale, scene.name, sw, sh))


def make_frames(scenes: Sequence[Scene], objects: Sequence[Tuple[float, PastedObject]], columns: int,
                rows: int) -> Iterator[Frame]:
    """Every frame: scene by scene, then scale by scale, then the grid row by row."""
    index = 0
    for s, scene in enumerate(scenes):
        sh, sw = scene.image.shape[:2]
        for scale, obj in objects:
            for column, row, x, y in grid_positions((sw, sh), obj.size, columns, rows):
                image, mask, box = paste(scene.image, obj, x, y)
                yield Frame(index, s, scale, column, row, x, y, image, mask, box)
                index += 1
