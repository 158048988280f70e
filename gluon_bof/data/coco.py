"""MS COCO detection dataset on pycocotools, equal to ``gluoncv.data.COCODetection`` on valid data.

Reads ``root/annotations/<split>.json``; images are at ``root/<dir>/<file>`` where ``<dir>/<file>`` are
the last two parts of each image's ``coco_url`` (as GluonCV does) or, without ``coco_url``,
``<split minus 'instances_'>/<file_name>``. Items are the images in ascending image id order.
Labels are ``(N, 6)`` float32 ``[xmin, ymin, xmax, ymax, class_id, iscrowd]``: boxes converted from
``[x, y, w, h]`` with ``xmax = x + max(w - 1, 0)`` and clipped to the image, category ids mapped to
contiguous class ids in ascending category id order. The sixth column holds ``iscrowd`` where VOC has
``difficult``: both mark boxes that evaluation ignores.
"""
import contextlib
import io
import json
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .base import DetectionDataset, check_boxes, empty_label, image_header, positive_size
from .validation import DatasetError, file_error


def _load_coco(path: str):
    """pycocotools ``COCO`` of a JSON file, with clear errors for a missing or malformed file."""
    from pycocotools.coco import COCO

    if not os.path.isfile(path):
        raise file_error("annotation_missing", path, "the COCO annotation file does not exist (expected "
                         "root/annotations/<split>.json)")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            return COCO(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise file_error("annotation_malformed", path, "not valid JSON (%s)" % e) from None
    except (KeyError, TypeError, AssertionError, AttributeError) as e:
        raise file_error("annotation_malformed", path, "not a COCO detection file, needs 'images', "
                         "'annotations' and 'categories' lists (%s: %s)" % (type(e).__name__, e)) from None


class COCODetection(DetectionDataset):
    """COCO-format detection data as ``(image, label)`` items.

    Parameters
    ----------
    root : str
        Folder with ``annotations/`` and the image folders (GluonCV's default ``~/.mxnet/datasets/coco``).
    splits : str or sequence of str
        Annotation file names without ``.json``, e.g. ``('instances_train2017',)``.
    transform : callable, optional
        Applied as ``transform(img, label)`` by ``__getitem__``.
    min_object_area : float
        Objects whose ``area`` is below this are left out.
    skip_empty : bool
        Leave out images without usable objects (set False for validation: every image is an item,
        those without objects have labels of shape ``(0, 6)``; GluonCV gives them a row of -1 instead).
    use_crowd : bool
        Keep crowd boxes (``iscrowd=1``, flagged in column 5). Set False for training targets.
    classes : sequence of str, optional
        Expected category names in category id order; default: whatever the JSON holds.
    strict : bool
        Raise :class:`DatasetError` listing every error found; False keeps them in :attr:`problems`.
    """

    def __init__(self, root: str = os.path.join("~", ".mxnet", "datasets", "coco"),
                 splits: Sequence[str] = ("instances_train2017",), transform: Optional[Callable] = None,
                 min_object_area: float = 0, skip_empty: bool = True, use_crowd: bool = True,
                 classes: Optional[Sequence[str]] = None, strict: bool = True) -> None:
        super().__init__(transform)
        self._root = os.path.expanduser(root)
        self._splits = (splits,) if isinstance(splits, str) else tuple(splits)
        if not self._splits or not all(isinstance(s, str) for s in self._splits):
            raise ValueError("splits must be a non-empty list of annotation names such as "
                             "('instances_train2017',), got %r" % (splits,))
        self._min_object_area = float(min_object_area)
        self._skip_empty = bool(skip_empty)
        self._use_crowd = bool(use_crowd)
        self._classes: Optional[Tuple[str, ...]] = tuple(classes) if classes is not None else None
        self.json_id_to_contiguous: Dict[int, int] = {}
        self.contiguous_id_to_json: Dict[int, int] = {}
        self._cocos = []
        self.image_ids: List[int] = []
        self._labels = []
        for split in self._splits:
            self._load_split(split)
        self.problems.finish(str(self), raise_errors=strict)

    def __str__(self) -> str:
        return "%s(root=%s, splits=%s)" % (type(self).__name__, self._root, ",".join(self._splits))

    @property
    def classes(self) -> Tuple[str, ...]:
        """Category names in contiguous class id order."""
        return self._classes or ()

    @property
    def coco(self):
        """pycocotools ``COCO`` object of the first split (what the COCO metric evaluates against)."""
        return self._cocos[0]

    @property
    def annotation_dir(self) -> str:
        return "annotations"

    def annotation_path(self, split: str) -> str:
        return os.path.join(self._root, self.annotation_dir, split + ".json")

    def _image_path(self, split: str, entry: dict) -> str:
        if entry.get("coco_url"):
            dirname, filename = entry["coco_url"].split("/")[-2:]
        else:
            dirname = split[len("instances_"):] if split.startswith("instances_") else split
            filename = entry.get("file_name", "")
        return os.path.join(self._root, dirname, filename)

    def _load_split(self, split: str) -> None:
        anno = self.annotation_path(split)
        coco = _load_coco(anno)
        self._cocos.append(coco)
        cat_ids = sorted(coco.getCatIds())
        names = tuple(str(c["name"]) for c in coco.loadCats(cat_ids))
        if self._classes is None:
            self._classes = names
        elif names != self._classes:
            raise file_error("classes_mismatch", anno, "categories %s (in category id order) differ from "
                             "the expected classes %s" % (list(names), list(self._classes)))
        mapping = {cid: k for k, cid in enumerate(cat_ids)}
        if not self.json_id_to_contiguous:
            self.json_id_to_contiguous = mapping
            self.contiguous_id_to_json = {k: cid for cid, k in mapping.items()}
        elif mapping != self.json_id_to_contiguous:
            raise file_error("classes_mismatch", anno, "category ids differ from those of split %s"
                             % self._splits[0])
        for entry in coco.loadImgs(sorted(coco.getImgIds())):
            path = self._image_path(split, entry)
            where = "%s image id %s" % (anno, entry.get("id"))
            if not os.path.exists(path):
                self.problems.add("image_missing", path, where)
                continue
            size = positive_size(entry.get("width"), entry.get("height"))
            if size is None:
                try:
                    size = image_header(path)[:2]
                    self.problems.add("size_missing", path, "%s: using the image's %dx%d" % ((where,) + size))
                except DatasetError:
                    self.problems.add("image_unreadable", path, where + ": cannot read its size")
                    continue
            label = self._parse_objects(coco, entry, size, anno, path)
            if not len(label):
                if self._skip_empty:
                    self.problems.add("empty_image_skipped", path, where)
                    continue
                self.problems.add("empty_image", path, where)
            self._image_paths.append(path)
            self._sizes.append(size)
            self._labels.append(label)
            self.image_ids.append(entry["id"])

    def _parse_objects(self, coco, entry: dict, size: Tuple[int, int], anno: str, path: str) -> np.ndarray:
        rows, names = [], []
        for obj in coco.loadAnns(coco.getAnnIds(imgIds=[entry["id"]], iscrowd=None)):
            where = "annotation id %s" % obj.get("id")
            cid = obj.get("category_id")
            if cid not in self.json_id_to_contiguous:
                self.problems.add("category_unknown", anno, "%s category_id %r" % (where, cid))
                continue
            bbox = obj.get("bbox")
            try:
                x, y, w, h = (float(v) for v in bbox)
            except (TypeError, ValueError):
                self.problems.add("annotation_malformed", anno, "%s: bbox %r is not [x, y, w, h]" % (where, bbox))
                continue
            area = float(obj["area"]) if obj.get("area") is not None else w * h
            if area < self._min_object_area:
                self.problems.add("small_area", anno, "%s area %g" % (where, area))
                continue
            if obj.get("ignore", 0) == 1:
                self.problems.add("ignore_flag", anno, where)
                continue
            crowd = 1 if obj.get("iscrowd", 0) else 0
            if crowd and not self._use_crowd:
                self.problems.add("crowd_skipped", anno, where)
                continue
            if area <= 0:
                self.problems.add("box_degenerate", anno, "%s area %g" % (where, area))
                continue
            rows.append([x, y, x + max(w - 1, 0), y + max(h - 1, 0), self.json_id_to_contiguous[cid], crowd])
            names.append("%s of %s" % (where, os.path.basename(path)))
        if not rows:
            return empty_label()
        label = np.array(rows, dtype=np.float64)
        label[:, :4], keep = check_boxes(label[:, :4], size[0], size[1], anno, names, self.problems)
        return label[keep].astype(np.float32).reshape(-1, 6)
