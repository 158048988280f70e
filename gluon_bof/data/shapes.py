"""Shapes: the embedded default dataset, procedural and deterministic, shipped as code (no files).

Each image is drawn on the fly from ``(seed, split, index)``: a VOC-sized canvas (320-500 px a side)
with a textured background (colour gradient, blotchy noise, optional stripes, clutter of small
non-object strokes and blobs) and 1-6 objects of six classes in random colours, sizes (8%-50% of the
short side), aspect ratios and rotations. Later objects partly occlude earlier ones; boxes are the
extent of the *visible* pixels (the VOC convention), objects less than half visible are flagged
``difficult`` and fully hidden ones are left out. Colour and size are no shortcut to the class, so a
small YOLOv3 learns it in minutes on a CPU without reaching an mAP of 1.0.

``write_voc`` and ``write_coco`` write the same items as a VOC directory or a COCO JSON, so the real
loaders (and GluonCV's) can be run end to end on it.
"""
import json
import os
import xml.etree.ElementTree as ET
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np

from .base import DetectionDataset, empty_label
from .class_names import SHAPES_CLASSES
from .rng import make_rng

SHAPE_CLASSES = SHAPES_CLASSES
#: Stream of :func:`gluon_bof.data.rng.make_rng` reserved for drawing Shapes images (distinct from
#: the loader's STREAM_SAMPLE/SHUFFLE/SHAPE = 0/1/2).
STREAM_SHAPES = 0x5348
SPLITS = {"train": 0, "val": 1, "test": 2}
_SIZE_KEY, _DRAW_KEY = 0, 1
MIN_REL_SIZE, MAX_REL_SIZE = 0.08, 0.5
DIFFICULT_VISIBILITY = 0.5  # objects with less of their pixels visible are flagged difficult
MAX_BOX_COVER = 0.6  # a new box may cover at most this fraction of an earlier box (and vice versa)


def _fit(points: np.ndarray, w: int, h: int) -> np.ndarray:
    """Scale polygon ``points`` (K, 2) so that they span exactly ``[0, w-1] x [0, h-1]``; int32."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    scaled = (points - lo) / np.maximum(hi - lo, 1e-9) * np.array([w - 1, h - 1])
    return np.round(scaled).astype(np.int32)


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


def _shape_mask(cls: int, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """``(h, w)`` uint8 mask (1 inside) of a shape of class ``cls`` touching all four sides."""
    mask = np.zeros((h, w), np.uint8)
    name = SHAPE_CLASSES[cls]
    if name == "circle":
        cv2.ellipse(mask, (((w - 1) / 2, (h - 1) / 2), (w, h), 0), 1, -1)
    elif name == "rectangle":
        mask[:] = 1
    elif name == "triangle":
        apex = rng.uniform(0, 1)
        pts = np.array([[apex, 0.0], [0.0, 1.0], [1.0, 1.0]])
        pts = _rotate(pts, rng.uniform(0, 2 * np.pi))
        cv2.fillPoly(mask, [_fit(pts, w, h)], 1)
    elif name == "star":
        k = np.arange(10)
        radius = np.where(k % 2 == 0, 1.0, rng.uniform(0.38, 0.5))
        angle = k * np.pi / 5 + rng.uniform(0, 2 * np.pi)
        pts = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        cv2.fillPoly(mask, [_fit(pts, w, h)], 1)
    elif name == "cross":
        t = rng.uniform(0.18, 0.3)
        pts = np.array([[-t, -1], [t, -1], [t, -t], [1, -t], [1, t], [t, t], [t, 1], [-t, 1], [-t, t],
                        [-1, t], [-1, -t], [-t, -t]], dtype=np.float64)
        pts = _rotate(pts, rng.uniform(0, np.pi / 2))
        cv2.fillPoly(mask, [_fit(pts, w, h)], 1)
    else:  # ring
        cv2.ellipse(mask, (((w - 1) / 2, (h - 1) / 2), (w, h), 0), 1, -1)
        inner = rng.uniform(0.45, 0.7)
        cv2.ellipse(mask, (((w - 1) / 2, (h - 1) / 2), (w * inner, h * inner), 0), 0, -1)
    return mask


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    hsv = np.array([[[rng.integers(0, 180), rng.integers(70, 256), rng.integers(60, 256)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Textured ``(h, w, 3)`` uint8 background: gradient, noise of random grain, maybe stripes, clutter."""
    corners = np.stack([_random_colour(rng) * rng.uniform(0.4, 1.0) for _ in range(4)]).reshape(2, 2, 3)
    cell = int(rng.integers(3, 24))  # texture grain, in pixels
    low_w, low_h = w // cell + 2, h // cell + 2
    low = cv2.resize(corners, (low_w, low_h), interpolation=cv2.INTER_LINEAR)
    low += rng.normal(0, rng.uniform(4, 30), size=(low_h, low_w, 3)).astype(np.float32)
    img = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img, 0, 255, out=img).astype(np.uint8)
    if rng.uniform() < 0.4:  # stripes
        colour = tuple(int(c) for c in _random_colour(rng) * 0.6)
        period, thick = int(rng.integers(12, 40)), int(rng.integers(2, 6))
        angle = rng.uniform(0, np.pi)
        dx, dy = np.cos(angle), np.sin(angle)
        for off in range(-max(w, h), max(w, h), period):
            cx, cy = w / 2 - dy * off, h / 2 + dx * off
            p1 = (int(cx - dx * 2 * max(w, h)), int(cy - dy * 2 * max(w, h)))
            p2 = (int(cx + dx * 2 * max(w, h)), int(cy + dy * 2 * max(w, h)))
            cv2.line(img, p1, p2, colour, thick)
    side = min(w, h)
    for _ in range(int(rng.integers(0, 16))):  # clutter: strokes and blobs smaller than any object
        colour = tuple(int(c) for c in _random_colour(rng))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.uniform(0.01, 0.035) * side) + 1
        if rng.uniform() < 0.5:
            a = rng.uniform(0, 2 * np.pi)
            cv2.line(img, (x, y), (int(x + 2 * r * np.cos(a)), int(y + 2 * r * np.sin(a))), colour,
                     int(rng.integers(1, 4)))
        else:
            pts = np.array([x, y]) + rng.uniform(-r, r, size=(int(rng.integers(4, 8)), 2))
            cv2.fillPoly(img, [np.round(pts).astype(np.int32)], colour)
    return img


def _cover(a: Tuple[int, int, int, int], b: Tuple[int, int, int, int]) -> float:
    """Largest fraction of either box's area covered by their intersection (boxes are x0, y0, x1, y1 exclusive)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


def render(rng: np.random.Generator, width: int, height: int, max_objects: int = 6
           ) -> Tuple[np.ndarray, np.ndarray]:
    """Draw one Shapes image.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    width, height : int
        Image size in pixels.
    max_objects : int
        Objects per image are drawn uniformly from ``1..max_objects``.

    Returns
    -------
    (image, label)
        ``(height, width, 3)`` uint8 RGB and ``(N, 6)`` float32
        ``[xmin, ymin, xmax, ymax, class_id, difficult]`` (inclusive 0-based pixel coordinates).
    """
    img = _background(rng, width, height)
    owner = np.full((height, width), -1, np.int16)
    side = min(width, height)
    placed, masks = [], []
    for k in range(int(rng.integers(1, max_objects + 1))):
        for _ in range(20):
            cls = int(rng.integers(len(SHAPE_CLASSES)))
            size = np.exp(rng.uniform(np.log(MIN_REL_SIZE), np.log(MAX_REL_SIZE))) * side
            aspect = 1.0 if SHAPE_CLASSES[cls] == "circle" else np.exp(rng.uniform(-0.6, 0.6))
            w = int(min(max(size * np.sqrt(aspect), 8), 0.7 * side))
            h = int(min(max(size / np.sqrt(aspect), 8), 0.7 * side))
            x0, y0 = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            box = (x0, y0, x0 + w, y0 + h)
            if all(_cover(box, other[1]) <= MAX_BOX_COVER for other in placed):
                break
        else:
            continue
        mask = _shape_mask(cls, w, h, rng).astype(bool)
        region = img[y0:y0 + h, x0:x0 + w]
        bg = region[mask].mean(axis=0)
        for _ in range(8):  # a colour that stands out from the background under the shape
            colour = _random_colour(rng)
            if np.abs(colour - bg).sum() > 120:
                break
        shade = np.linspace(rng.uniform(0.75, 1.0), rng.uniform(0.75, 1.0), w if rng.uniform() < 0.5 else h)
        shade = shade[None, :, None] if len(shade) == w else shade[:, None, None]
        painted = np.broadcast_to((colour * shade).astype(np.uint8), (h, w, 3))
        region[mask] = painted[mask]
        owner[y0:y0 + h, x0:x0 + w][mask] = len(placed)
        placed.append((cls, box))
        masks.append(int(mask.sum()))
    rows = []
    for k, (cls, (x0, y0, x1, y1)) in enumerate(placed):
        ys, xs = np.nonzero(owner[y0:y1, x0:x1] == k)
        if not len(xs):
            continue
        difficult = 1.0 if len(xs) < DIFFICULT_VISIBILITY * masks[k] else 0.0
        rows.append([x0 + xs.min(), y0 + ys.min(), x0 + xs.max(), y0 + ys.max(), cls, difficult])
    label = np.array(rows, np.float32).reshape(-1, 6) if rows else empty_label()
    return img, label


class ShapesDetection(DetectionDataset):
    """Procedural shapes, deterministic from ``(seed, split, index)``; no files needed.

    Parameters
    ----------
    num_images : int
        Number of items.
    seed : int
        Dataset seed; the same seed gives the same images on every machine.
    split : {'train', 'val', 'test'}
        Splits draw from different streams, so they never share an image.
    min_size, max_size : int
        Image width and height are drawn independently from ``[min_size, max_size]`` pixels.
    max_objects : int
        At most this many objects are drawn per image (at least 1).
    transform : callable, optional
        Applied as ``transform(img, label)`` by ``__getitem__``.
    cache_mb : float
        Keep drawn items in memory, per process, until they take this many MB (0: draw every time).
        Drawing is most of a training sample's cost (twice per sample with mixup) and an epoch draws
        every item again; cached items are returned as copies, so callers may modify them.
    """

    CLASSES = SHAPE_CLASSES

    def __init__(self, num_images: int = 1000, seed: int = 0, split: str = "train", min_size: int = 320,
                 max_size: int = 500, max_objects: int = 6, transform: Optional[Callable] = None,
                 cache_mb: float = 1024.0) -> None:
        super().__init__(transform)
        if split not in SPLITS:
            raise ValueError("split must be one of %s, got %r" % (sorted(SPLITS), split))
        if int(num_images) < 0:
            raise ValueError("num_images must be >= 0, got %r" % (num_images,))
        if not 64 <= int(min_size) <= int(max_size):
            raise ValueError("need 64 <= min_size <= max_size, got min_size=%r max_size=%r" % (min_size, max_size))
        if int(max_objects) < 1:
            raise ValueError("max_objects must be >= 1, got %r" % (max_objects,))
        self._num, self._seed, self._split = int(num_images), int(seed), split
        self._min_size, self._max_size, self._max_objects = int(min_size), int(max_size), int(max_objects)
        self._image_paths = ["<shapes %s seed=%d #%d>" % (split, self._seed, i) for i in range(self._num)]
        self._cache_bytes = int(max(float(cache_mb), 0.0) * (1 << 20))
        self._cache: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
        self._cached_bytes = 0

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cache"], state["_cached_bytes"] = {}, 0  # a copy sent to another process starts empty
        return state

    def __str__(self) -> str:
        return "ShapesDetection(num_images=%d, seed=%d, split=%s)" % (self._num, self._seed, self._split)

    @property
    def classes(self) -> Tuple[str, ...]:
        return SHAPE_CLASSES

    @property
    def split(self) -> str:
        return self._split

    def _rng(self, idx: int, key: int) -> np.random.Generator:
        return make_rng(self._seed, STREAM_SHAPES, SPLITS[self._split], idx, key)

    def image_size(self, idx: int) -> Tuple[int, int]:
        """``(width, height)`` of item ``idx`` without drawing it."""
        w, h = self._rng(idx, _SIZE_KEY).integers(self._min_size, self._max_size + 1, size=2)
        return int(w), int(h)

    @property
    def im_sizes(self) -> List[Tuple[int, int]]:
        return [self.image_size(i) for i in range(len(self))]

    def generate(self, idx: int) -> Tuple[np.ndarray, np.ndarray]:
        """Draw item ``idx``: ``(HxWx3 uint8 RGB image, (N, 6) float32 label)``."""
        if not -self._num <= idx < self._num:
            raise IndexError("ShapesDetection index %d out of range for %d items" % (idx, self._num))
        idx = idx % self._num if self._num else idx
        item = self._cache.get(idx)
        if item is None:
            w, h = self.image_size(idx)
            item = render(self._rng(idx, _DRAW_KEY), w, h, self._max_objects)
            size = item[0].nbytes + item[1].nbytes
            if self._cached_bytes + size > self._cache_bytes:
                return item
            self._cache[idx] = item
            self._cached_bytes += size
        return item[0].copy(), item[1].copy()

    def _load_label(self, idx: int) -> np.ndarray:
        return self.generate(idx)[1]

    @property
    def max_objects(self) -> int:
        """The ``max_objects`` argument: a bound known without drawing every image."""
        return self._max_objects

    def read_image(self, idx: int, log=None) -> np.ndarray:
        return self.generate(idx)[0]

    def __getitem__(self, idx: int):
        img, label = self.generate(idx)
        if self._transform is not None:
            return self._transform(img, label)
        return img, label

    def image_id(self, idx: int) -> str:
        """File stem used by :meth:`write_voc` / :meth:`write_coco`, unique across splits."""
        return "%s%06d" % (self._split, idx)

    def write_voc(self, root: str, year: int = 2007, split: str = "trainval", quality: int = 95) -> str:
        """Write the items as ``root/VOC<year>/{Annotations,ImageSets/Main,JPEGImages}``.

        XML coordinates are 1-based (label + 1), as in VOC. Returns the ``VOC<year>`` folder.
        """
        voc = os.path.join(os.path.expanduser(root), "VOC%d" % year)
        for sub in ("Annotations", os.path.join("ImageSets", "Main"), "JPEGImages"):
            os.makedirs(os.path.join(voc, sub), exist_ok=True)
        ids = []
        for i in range(len(self)):
            img, label = self.generate(i)
            img_id = self.image_id(i)
            ids.append(img_id)
            self._write_jpeg(os.path.join(voc, "JPEGImages", img_id + ".jpg"), img, quality)
            _voc_xml(img_id, img.shape, label).write(os.path.join(voc, "Annotations", img_id + ".xml"))
        with open(os.path.join(voc, "ImageSets", "Main", split + ".txt"), "w") as f:
            f.write("".join(i + "\n" for i in ids))
        return voc

    def write_coco(self, root: str, split_name: str = "instances_train2017", quality: int = 95) -> str:
        """Write ``root/annotations/<split_name>.json`` and the images in ``root/<split_name minus 'instances_'>``.

        Boxes are ``[x, y, w, h]`` with ``w = xmax - xmin + 1``, so GluonCV's
        ``xmax = x + max(w - 1, 0)`` gives the label back. COCO has no *difficult*: difficult objects
        are written with ``iscrowd=1``, which COCO evaluation ignores the same way. Category ids are
        1..6; image ids are item index + 1. Returns the JSON path.
        """
        root = os.path.expanduser(root)
        img_dir = split_name[len("instances_"):] if split_name.startswith("instances_") else split_name
        os.makedirs(os.path.join(root, img_dir), exist_ok=True)
        os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
        images, annotations = [], []
        for i in range(len(self)):
            img, label = self.generate(i)
            file_name = self.image_id(i) + ".jpg"
            self._write_jpeg(os.path.join(root, img_dir, file_name), img, quality)
            images.append({"id": i + 1, "file_name": file_name, "coco_url": img_dir + "/" + file_name,
                           "width": int(img.shape[1]), "height": int(img.shape[0])})
            for x0, y0, x1, y1, cls, difficult in label.tolist():
                w, h = x1 - x0 + 1, y1 - y0 + 1
                annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(cls) + 1,
                                    "bbox": [x0, y0, w, h], "area": w * h, "iscrowd": int(difficult),
                                    "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]]})
        categories = [{"id": k + 1, "name": n, "supercategory": "shape"} for k, n in enumerate(SHAPE_CLASSES)]
        path = os.path.join(root, "annotations", split_name + ".json")
        with open(path, "w") as f:
            json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
        return path

    @staticmethod
    def _write_jpeg(path: str, img: np.ndarray, quality: int) -> None:
        if not cv2.imwrite(path, cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]):
            raise OSError("could not write image %s" % path)


def _voc_xml(img_id: str, shape: Tuple[int, ...], label: np.ndarray) -> ET.ElementTree:
    ann = ET.Element("annotation")
    ET.SubElement(ann, "folder").text = "VOC"
    ET.SubElement(ann, "filename").text = img_id + ".jpg"
    size = ET.SubElement(ann, "size")
    for tag, value in (("width", shape[1]), ("height", shape[0]), ("depth", 3)):
        ET.SubElement(size, tag).text = str(int(value))
    for x0, y0, x1, y1, cls, difficult in label.tolist():
        obj = ET.SubElement(ann, "object")
        ET.SubElement(obj, "name").text = SHAPE_CLASSES[int(cls)]
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = str(int(difficult))
        box = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), (x0, y0, x1, y1)):
            ET.SubElement(box, tag).text = str(int(value) + 1)
    return ET.ElementTree(ann)
