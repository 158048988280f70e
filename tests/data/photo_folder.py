"""A VOC-layout folder as users export it from labelling tools: the test fixture of the custom-data path.

Images are Shapes drawings saved as PNG (some RGBA, some grayscale; others as .jpeg/.bmp/.tif/.JPG when
asked), class names capitalised in the XML (one box of the crowded image spelled in capitals), and every XML
``<filename>`` ending in ``.tif`` whatever the image's real extension. Optional extra items: one large
image and one image holding hundreds of boxes.
"""
import os
import xml.etree.ElementTree as ET
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from gluon_bof.data.shapes import ShapesDetection

CLASSES = tuple(c.capitalize() for c in ShapesDetection.CLASSES)  # Circle, Rectangle, ...
# Extension per item index (cycled); PNG dominates as in the exports this fixture imitates.
MIXED_EXTENSIONS = (".png", ".png", ".jpeg", ".bmp", ".tif", ".JPG")


def _write_image(path: str, rgb: np.ndarray, mode: str) -> None:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if mode == "rgba":
        bgr = np.dstack([bgr, np.full(bgr.shape[:2], 200, np.uint8)])
    elif mode == "gray":
        bgr = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    if not cv2.imwrite(path, bgr):
        raise OSError("could not write %s" % path)


def _write_xml(path: str, img_id: str, width: int, height: int, objects: Sequence[Tuple]) -> None:
    ann = ET.Element("annotation")
    ET.SubElement(ann, "filename").text = img_id + ".tif"  # exports often name another extension
    size = ET.SubElement(ann, "size")
    for tag, value in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    for name, x0, y0, x1, y1 in objects:
        obj = ET.SubElement(ann, "object")
        ET.SubElement(obj, "name").text = name
        ET.SubElement(obj, "difficult").text = "0"
        box = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), (x0, y0, x1, y1)):
            ET.SubElement(box, tag).text = "%d" % round(value + 1)  # VOC XML is 1-based
    ET.ElementTree(ann).write(path)


def _crowded(seed: int, rows: int = 15, cols: int = 20, cell: int = 20) -> Tuple[np.ndarray, List[Tuple]]:
    """``rows * cols`` small squares on noise: an image with hundreds of boxes."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 80, (rows * cell, cols * cell, 3), dtype=np.uint8)
    objects = []
    for r in range(rows):
        for c in range(cols):
            x0, y0 = c * cell + 3, r * cell + 3
            img[y0:y0 + cell - 6, x0:x0 + cell - 6] = (230, 60, 60)
            objects.append(("Rectangle", x0, y0, x0 + cell - 7, y0 + cell - 7))
    objects[0] = ("RECTANGLE",) + objects[0][1:]  # the same class, spelled otherwise by one box
    return img, objects


def write_photo_folder(root: str, splits: Dict[str, int], folder: str = "MyData", seed: int = 0,
                       image_size: Tuple[int, int] = (96, 128), mixed_extensions: bool = False,
                       large: Tuple[int, int] = None, crowded_split: str = None) -> List[str]:
    """Write ``root/<folder>/{Annotations,ImageSets/Main,JPEGImages}``; returns the class names used.

    ``splits`` maps a split name to its number of Shapes images; item ``k`` of a split is saved as
    RGBA PNG when ``k % 4 == 1``, grayscale when ``k % 4 == 2``. ``large=(w, h)`` upsamples the
    first image of the first split to that size (boxes scaled with it); ``crowded_split`` adds one
    image of 300 boxes to that split.
    """
    base = os.path.join(root, folder)
    for sub in ("Annotations", os.path.join("ImageSets", "Main"), "JPEGImages"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    for s, (split, count) in enumerate(splits.items()):
        shapes = ShapesDetection(count, seed=seed + s, split="train", min_size=image_size[0], max_size=image_size[1])
        ids = []
        for k in range(count):
            img, label = shapes.generate(k)
            objects = [(CLASSES[int(c)], x0, y0, x1, y1) for x0, y0, x1, y1, c, _ in label.tolist()]
            if s == 0 and k == 0:
                if large:
                    sx, sy = large[0] / img.shape[1], large[1] / img.shape[0]
                    img = cv2.resize(img, large, interpolation=cv2.INTER_LINEAR)
                    objects = [(n, x0 * sx, y0 * sy, x1 * sx, y1 * sy) for n, x0, y0, x1, y1 in objects]
            img_id = "%s_%03d" % (split, k)
            ext = MIXED_EXTENSIONS[k % len(MIXED_EXTENSIONS)] if mixed_extensions else ".png"
            mode = ("rgb", "rgba", "gray", "rgb")[k % 4]
            mode = "rgb" if mode == "rgba" and ext.lower() != ".png" else mode
            _write_image(os.path.join(base, "JPEGImages", img_id + ext), img, mode)
            _write_xml(os.path.join(base, "Annotations", img_id + ".xml"), img_id, img.shape[1], img.shape[0], objects)
            ids.append(img_id)
        if split == crowded_split:
            img, objects = _crowded(seed)
            img_id = "%s_crowded" % split
            _write_image(os.path.join(base, "JPEGImages", img_id + ".png"), img, "rgb")
            _write_xml(os.path.join(base, "Annotations", img_id + ".xml"), img_id, img.shape[1], img.shape[0], objects)
            ids.append(img_id)
        with open(os.path.join(base, "ImageSets", "Main", split + ".txt"), "w") as f:
            f.write("".join(i + "\n" for i in ids))
    return list(CLASSES)
