"""Shared dataset helpers: image reading, image-header sizes, box checks, and the dataset base class.

Images are read with OpenCV into ``HxWx3 uint8`` RGB arrays whatever the file holds (grayscale,
palette, RGBA, 16 bit, CMYK), upright according to EXIF orientation, and a missing, unreadable or
truncated file raises :class:`~gluon_bof.data.validation.DatasetError` naming the file and the rule
instead of failing later inside MXNet. Box checks implement the clip/drop rules of
:mod:`gluon_bof.data.validation`.
"""
import os
from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .validation import ProblemLog, file_error

LABEL_WIDTH = 6  # xmin, ymin, xmax, ymax, class_id, difficult

_JPEG_SOI = b"\xff\xd8"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# EXIF orientations 5-8 swap width and height (rotations by 90 degrees, with or without a mirror).
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)


def empty_label() -> np.ndarray:
    """The label of an image without objects: ``float32`` array of shape ``(0, 6)``."""
    return np.zeros((0, LABEL_WIDTH), dtype=np.float32)


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise file_error("image_missing", path, "the image file does not exist") from None
    except OSError as e:
        raise file_error("image_unreadable", path, "cannot read the file (%s)" % e) from None


def _jpeg_is_complete(data: bytes) -> bool:
    """True when the JPEG has an end-of-image marker after its first scan.

    Walking the marker segments up to the first start-of-scan skips APP segments, whose embedded EXIF
    thumbnail has an end-of-image marker of its own. Entropy-coded data cannot contain ``FF D9``
    (0xFF bytes are stuffed), so finding it after the scan means the file was not cut.
    """
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan
            return data.find(b"\xff\xd9", pos) != -1
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:  # markers without a length
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return False


def _decode(data: bytes, path: str, flags: int) -> np.ndarray:
    if data.startswith(_JPEG_SOI) and not _jpeg_is_complete(data):
        raise file_error("image_truncated", path, "the JPEG file is truncated (no end-of-image marker)")
    if data.startswith(_PNG_SIGNATURE) and b"IEND" not in data[-16:]:
        raise file_error("image_truncated", path, "the PNG file is truncated (no IEND chunk)")
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags) if data else None
    if img is None:
        raise file_error("image_unreadable", path, "OpenCV cannot decode this file (%d bytes); not an image "
                         "or corrupt" % len(data))
    return img


def read_image(path: str, expected_size: Optional[Tuple[int, int]] = None,
               log: Optional[ProblemLog] = None) -> np.ndarray:
    """Read an image file as an upright ``HxWx3 uint8`` RGB array.

    Parameters
    ----------
    path : str
        Image file (any format OpenCV reads).
    expected_size : (width, height), optional
        The size the annotation gives, in pixels. When the EXIF-rotated image does not have it but
        the unrotated one does, the rotation is not applied (rule ``exif_ignored``: annotation tools
        that ignore EXIF drew the boxes on the unrotated pixels). Any other difference raises
        (rule ``size_mismatch``): the boxes would not match the pixels.
    log : ProblemLog, optional
        Receives the ``exif_ignored`` problem, if any.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8, RGB. Grayscale is replicated to 3 channels, alpha is dropped.

    Raises
    ------
    DatasetError
        Missing, unreadable or truncated file, or a size different from ``expected_size``.
    """
    data = _read_bytes(path)
    img = _decode(data, path, cv2.IMREAD_COLOR)
    if expected_size is not None:
        want_w, want_h = int(expected_size[0]), int(expected_size[1])
        h, w = img.shape[:2]
        if (w, h) != (want_w, want_h):
            if (h, w) == (want_w, want_h):
                raw = _decode(data, path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
                if raw.shape[:2] == (want_h, want_w):
                    if log is not None:
                        log.add("exif_ignored", path, "annotated %dx%d" % (want_w, want_h))
                    img = raw
            if img.shape[:2] != (want_h, want_w):
                raise file_error("size_mismatch", path, "the annotation says width=%d height=%d but the image is "
                                 "width=%d height=%d" % (want_w, want_h, w, h))
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def image_header(path: str) -> Tuple[int, int, str, int]:
    """Size and mode of an image from its header, without decoding the pixels.

    Returns
    -------
    (width, height, mode, orientation)
        ``width, height`` as :func:`read_image` returns the image (EXIF rotation applied);
        ``mode`` is PIL's (``'RGB'``, ``'L'``, ``'RGBA'``, ``'P'``...); ``orientation`` the EXIF tag (1 if none).
    """
    from PIL import Image, UnidentifiedImageError  # PIL ships with matplotlib, a dependency

    if not os.path.exists(path):
        raise file_error("image_missing", path, "the image file does not exist")
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # PIL refuses aerial/medical sizes as "decompression bombs"; only the header is read
    try:
        with Image.open(path) as im:
            width, height = im.size
            mode = im.mode
            orientation = int(im.getexif().get(0x0112, 1) or 1) if im.format == "JPEG" else 1
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise file_error("image_unreadable", path, "cannot read the image header (%s)" % e) from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    if orientation in _TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    return width, height, mode, orientation


def note_image_mode(path: str, mode: str, orientation: int, log: ProblemLog) -> None:
    """Record the ``note`` rules that apply to an image's colour mode and EXIF orientation."""
    if mode in ("L", "LA", "I", "I;16", "F", "1"):
        log.add("image_grayscale", path, "mode " + mode)
    if mode in ("RGBA", "LA", "PA") or mode.endswith("A"):
        log.add("image_alpha", path, "mode " + mode)
    if mode == "P":
        log.add("image_palette", path)
    if orientation not in (0, 1):
        log.add("image_exif_rotated", path, "orientation %d" % orientation)


def check_boxes(boxes: np.ndarray, width: float, height: float, path: str, names: Sequence[str],
                log: ProblemLog) -> Tuple[np.ndarray, np.ndarray]:
    """Clip boxes to the image and find the degenerate ones.

    Parameters
    ----------
    boxes : numpy.ndarray
        ``(N, 4)`` float ``[xmin, ymin, xmax, ymax]``, 0-based inclusive pixel coordinates.
    width, height : float
        Image size in pixels; valid coordinates are ``[0, width-1] x [0, height-1]``.
    path, names :
        File and per-object names (e.g. ``"object 2 'dog'"``) for the problem log.
    log : ProblemLog
        Receives ``box_clipped`` and ``box_degenerate``.

    Returns
    -------
    (clipped, keep)
        ``(N, 4)`` float64 clipped boxes and an ``(N,)`` bool mask of boxes with
        ``xmin < xmax and ymin < ymax`` after clipping.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    hi = np.array([width - 1, height - 1, width - 1, height - 1], dtype=np.float64)
    clipped = np.minimum(np.maximum(boxes, 0.0), hi)
    keep = (clipped[:, 0] < clipped[:, 2]) & (clipped[:, 1] < clipped[:, 3])
    changed = np.any(clipped != boxes, axis=1)
    for i in np.nonzero(~keep | changed)[0]:
        values = "[%g, %g, %g, %g] in a %gx%g image" % (tuple(boxes[i]) + (width, height))
        rule = "box_degenerate" if not keep[i] else "box_clipped"
        log.add(rule, path, "%s %s" % (names[i], values))
    return clipped, keep


def positive_size(width, height) -> Optional[Tuple[int, int]]:
    """``(width, height)`` as ints when both parse as positive numbers, else None."""
    try:
        w, h = int(float(width)), int(float(height))
    except (TypeError, ValueError):
        return None
    return (w, h) if w > 0 and h > 0 else None


class DetectionDataset:
    """Base of the datasets: ``(image, label)`` items, ``classes``, image sizes and ``transform``.

    Subclasses fill ``self._image_paths`` (list of str), ``self._labels`` (list of ``(N, 6)`` float32
    arrays, or None for lazy loading via :meth:`_load_label`), ``self._sizes`` (list of
    ``(width, height)`` or None) and ``self.problems`` (:class:`ProblemLog`).
    """

    def __init__(self, transform: Optional[Callable] = None) -> None:
        if transform is not None and not callable(transform):
            raise TypeError("transform must be callable as transform(img, label), got %r" % (transform,))
        self._transform = transform
        self._image_paths: List[str] = []
        self._labels: Optional[List[np.ndarray]] = None
        self._sizes: List[Optional[Tuple[int, int]]] = []
        self.problems = ProblemLog()

    @property
    def classes(self) -> Tuple[str, ...]:
        raise NotImplementedError

    @property
    def num_class(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self._image_paths)

    def _load_label(self, idx: int) -> np.ndarray:
        raise NotImplementedError

    def label(self, idx: int) -> np.ndarray:
        """The ``(N, 6)`` float32 label of item ``idx``, without reading the image."""
        if not -len(self) <= idx < len(self):
            raise IndexError("%s index %d out of range for %d items" % (type(self).__name__, idx, len(self)))
        label = self._labels[idx] if self._labels is not None else self._load_label(idx)
        return label.copy()

    def image_path(self, idx: int) -> str:
        return self._image_paths[idx]

    @property
    def max_objects(self) -> int:
        """At least the number of objects (label rows) of any item: exact for annotated datasets, a
        bound for generated ones; 0 for a dataset without objects.

        Detectors whose target sampler has a fixed ground-truth capacity (Faster R-CNN's
        ``max_num_gt``) size it from this number, so images with hundreds of boxes train.
        """
        return max((len(self.label(i)) for i in range(len(self))), default=0)

    def read_image(self, idx: int, log: Optional[ProblemLog] = None) -> np.ndarray:
        """The ``HxWx3 uint8`` RGB image of item ``idx``, checked against the annotated size."""
        return read_image(self._image_paths[idx], self._sizes[idx], log)

    def __getitem__(self, idx: int):
        label = self.label(idx)
        img = self.read_image(idx)
        if self._transform is not None:
            return self._transform(img, label)
        return img, label

    @property
    def im_sizes(self) -> List[Tuple[int, int]]:
        """``(width, height)`` of every item, from annotations (image headers where they lack it)."""
        sizes = []
        for i, size in enumerate(self._sizes):
            if size is None:
                size = image_header(self._image_paths[i])[:2]
            sizes.append(size)
        return sizes

    @property
    def im_aspect_ratios(self) -> List[float]:
        """``width / height`` of every item, without decoding images (Faster R-CNN bucketing)."""
        return [float(w) / h for w, h in self.im_sizes]

    def get_im_aspect_ratio(self) -> List[float]:
        """GluonCV's name for :attr:`im_aspect_ratios`."""
        return self.im_aspect_ratios

    def transform(self, fn: Callable, lazy: bool = True) -> "TransformedDataset":
        """A view of this dataset whose items are ``fn(img, label)`` (GluonCV/Gluon ``.transform``)."""
        if not lazy:
            raise ValueError("transform(lazy=False) is not supported: images are decoded on access")
        return TransformedDataset(self, fn)


class TransformedDataset:
    """``dataset`` with ``fn(*item)`` applied on access; forwards every other attribute to ``dataset``."""

    def __init__(self, dataset, fn: Callable) -> None:
        self._data = dataset
        self._fn = fn

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, idx: int):
        item = self._data[idx]
        return self._fn(*item) if isinstance(item, tuple) else self._fn(item)

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "_data":  # not set yet while unpickling
            raise AttributeError(name)
        return getattr(self._data, name)
