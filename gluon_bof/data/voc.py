"""Pascal VOC detection dataset, label-for-label equal to ``gluoncv.data.VOCDetection`` on valid data.

Reads ``root/VOC<year>/{Annotations/<id>.xml, ImageSets/Main/<split>.txt, JPEGImages/<id>.jpg}``.
Labels are ``(N, 6)`` float32 ``[xmin, ymin, xmax, ymax, class_id, difficult]`` with 1 subtracted from
every XML coordinate (VOC is 1-based, labels are 0-based, as in GluonCV). Bad annotations follow the
rules of :mod:`gluon_bof.data.validation` (see docs/datasets.md) instead of GluonCV's per-box log lines.

Beyond GluonCV, for folders of real photographs: class names match the XML ``<name>`` case-insensitively
(the class list keeps its spelling, ``Car``), the images may have any common extension (found by id
with ``image_ext=None``), and :func:`collect_voc_classes` reads the class list from the annotations.
"""
import os
import xml.etree.ElementTree as ET
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .base import DetectionDataset, check_boxes, empty_label, image_header, positive_size
from .class_names import VOC_CLASSES
from .validation import DatasetError, ProblemLog, file_error


Split = Tuple[Union[int, str], str]
_COORDS = ("xmin", "ymin", "xmax", "ymax")
#: Extensions looked for in ``JPEGImages/`` when ``image_ext=None``, in order of preference
#: (matched case-insensitively: ``IMG_1.JPG`` is found for id ``IMG_1``).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def parse_voc_splits(text: str) -> Tuple[Split, ...]:
    """``'2007_trainval,2012_trainval'`` -> ``((2007, 'trainval'), (2012, 'trainval'))``.

    The part before the last ``_`` names the folder: a year (``int``, folder ``VOC<year>``) when it is
    all digits, else the folder name itself (``mydata_train`` -> ``('mydata', 'train')``). Raises
    ``ValueError`` naming the malformed entry.
    """
    splits = []
    for item in filter(None, (p.strip() for p in str(text).split(","))):
        folder, sep, name = item.rpartition("_")
        if not sep or not folder or not name:
            raise ValueError("VOC split %r is not of the form YEAR_NAME (or FOLDER_NAME), e.g. 2007_trainval"
                             % item)
        splits.append((int(folder) if folder.isdigit() else folder, name))
    if not splits:
        raise ValueError("no VOC split given (expected e.g. 2007_trainval,2012_trainval)")
    return tuple(splits)


def check_class_list(classes: Sequence[str], what: str = "classes") -> Tuple[str, ...]:
    """Validate a class list: non-empty strings without surrounding spaces, unique ignoring case.

    Names keep their spelling (``Car``): annotations match them case-insensitively, so ``car`` and
    ``Car`` in one list would be the same class and are refused.
    """
    if isinstance(classes, str) or not len(classes):
        raise ValueError("%s must be a non-empty list of class names, got %r" % (what, classes))
    for c in classes:
        if not isinstance(c, str) or not c or c != c.strip():
            raise ValueError("%s: class name %r must be a non-empty string without surrounding spaces "
                             "(names read from annotations are stripped)" % (what, c))
    keys = [c.lower() for c in classes]
    dupes = sorted(set(c for c in classes if keys.count(c.lower()) > 1))
    if dupes:
        raise ValueError("%s: duplicated class names %s (names match the annotations ignoring case)" % (what, dupes))
    return tuple(classes)


def normalize_image_ext(image_ext: Optional[str]) -> Optional[str]:
    """``'png'`` -> ``'.png'``; ``None``, ``''`` or ``'auto'`` -> None (find each image by its id)."""
    if image_ext is None or not str(image_ext).strip() or str(image_ext).strip().lower() == "auto":
        return None
    ext = str(image_ext).strip()
    return ext if ext.startswith(".") else "." + ext


def voc_folder(root: str, folder: Union[int, str]) -> str:
    """``root/VOC<year>`` for an int year, else ``root/<folder>``."""
    return os.path.join(root, "VOC%d" % folder if isinstance(folder, int) else folder)


def find_images(image_dir: str, ids: Sequence[str],
                extensions: Sequence[str] = IMAGE_EXTENSIONS) -> Tuple[Dict[str, str], Dict[str, List[str]]]:
    """Image file of each id in ``image_dir``, whatever its extension among ``extensions``.

    One directory listing, so large folders cost one scan. Extensions match ignoring case.

    Returns
    -------
    (found, ambiguous)
        ``found`` maps an id to its file path (ids without a file are absent); ``ambiguous`` maps an
        id with several candidate files (``a.jpg`` and ``a.png``) to their names, in preference order.
    """
    rank = {e.lower(): k for k, e in enumerate(extensions)}
    wanted = set(ids)
    candidates: Dict[str, List[Tuple[int, str]]] = {}
    try:
        names = os.listdir(image_dir)
    except OSError:
        names = []
    for name in names:
        stem, ext = os.path.splitext(name)
        if stem in wanted and ext.lower() in rank:
            candidates.setdefault(stem, []).append((rank[ext.lower()], name))
    found, ambiguous = {}, {}
    for img_id, files in candidates.items():
        files.sort()
        found[img_id] = os.path.join(image_dir, files[0][1])
        if len(files) > 1:
            ambiguous[img_id] = [n for _, n in files]
    return found, ambiguous


def split_ids(root: str, folder: Union[int, str], name: str) -> List[str]:
    """Image ids listed by ``root/<folder>/ImageSets/Main/<name>.txt`` (blank lines skipped).

    Raises ``DatasetError``: ``split_missing`` (no list file), ``split_empty`` (no id), naming the file.
    """
    list_file = os.path.join(voc_folder(root, folder), "ImageSets", "Main", name + ".txt")
    if not os.path.isfile(list_file):
        raise file_error("split_missing", list_file, "split %s_%s has no image list file (expected the "
                         "VOC layout root/VOC<year>/ImageSets/Main/<split>.txt)" % (folder, name))
    with open(list_file, "r", encoding="utf-8") as f:
        ids = [line.strip() for line in f if line.strip()]
    if not ids:
        raise file_error("split_empty", list_file, "split %s_%s lists no image id (one id per line, the "
                         "file names in JPEGImages/ without extension)" % (folder, name))
    return ids


def collect_voc_classes(root: str, splits: Sequence[Split]) -> Tuple[str, ...]:
    """Every object name in the annotation files of the split folders, sorted ignoring case.

    Reads all ``Annotations/*.xml`` of each folder named by ``splits`` (not only the listed ids), so
    the training and the evaluation script, given different splits of one folder, find the same
    list. Names are stripped; spellings that differ only in case are one class, spelled as most
    objects spell it (on a tie, as first met in file name order). Unparsable files are skipped here
    (the dataset reports them).

    Raises ``DatasetError`` (``split_missing``, ``split_empty``) for a split without its list file or
    ids or a folder without ``Annotations/``, and ``ValueError`` when no object name is found.
    """
    spellings: Dict[str, Dict[str, int]] = {}
    root = os.path.expanduser(root)
    for folder, name in splits:
        split_ids(root, folder, name)  # a missing or empty list file is named before anything else
    folders = list(dict.fromkeys(voc_folder(root, f) for f, _ in splits))
    for folder in folders:
        anno_dir = os.path.join(folder, "Annotations")
        if not os.path.isdir(anno_dir):
            raise file_error("split_missing", anno_dir, "no Annotations folder to collect the class names from "
                             "(expected the VOC layout root/<folder>/Annotations/<id>.xml)")
        for name in sorted(os.listdir(anno_dir)):
            if not name.lower().endswith(".xml"):
                continue
            try:
                tree = ET.parse(os.path.join(anno_dir, name))
            except (ET.ParseError, OSError):
                continue
            for obj in tree.getroot().iter("object"):
                text = (obj.findtext("name") or "").strip()
                if text:
                    counts = spellings.setdefault(text.lower(), {})
                    counts[text] = counts.get(text, 0) + 1
    if not spellings:
        raise ValueError("no object <name> found in the annotations of %s; give the classes explicitly"
                         % ", ".join(folders))
    names = [max(counts, key=counts.get) for counts in spellings.values()]  # ties: the first met
    return tuple(sorted(names, key=lambda s: (s.lower(), s)))


class VOCDetection(DetectionDataset):
    """Pascal VOC (or any dataset in its layout) as ``(image, label)`` items.

    Parameters
    ----------
    root : str
        Folder holding ``VOC2007``, ``VOC2012``... (GluonCV's default ``~/.mxnet/datasets/voc``).
    splits : sequence of (year or folder name, split name)
        E.g. ``((2007, 'trainval'), (2012, 'trainval'))``; an int year means folder ``VOC<year>``.
    transform : callable, optional
        Applied as ``transform(img, label)`` by ``__getitem__``.
    index_map : dict, optional
        Class name -> class id (default: position in ``classes``).
    preload_label : bool
        Parse every annotation at construction (checks everything up front, warns once per rule).
        When False, annotations are parsed on access: errors still raise, clips/drops are silent.
    classes : sequence of str, optional
        Custom class list (default: the 20 VOC classes), spelled as reports should show it; the XML
        ``<name>`` matches it ignoring case and surrounding spaces. Objects of other classes are skipped.
    image_ext : str or None
        Extension of the files in ``JPEGImages`` (``'.jpg'``, as GluonCV). None (or ``'auto'``): each
        image is found by its id among :data:`IMAGE_EXTENSIONS`, any case; the XML ``<filename>`` is
        never used, so it may name another extension. Two files for one id are an ``image_ambiguous``
        error.
    strict : bool
        Raise :class:`DatasetError` listing every error found at construction. False keeps the
        errors in :attr:`problems` (for the validator); items with errors then have empty labels.
    """

    CLASSES = VOC_CLASSES

    def __init__(self, root: str = os.path.join("~", ".mxnet", "datasets", "voc"),
                 splits: Sequence[Split] = ((2007, "trainval"), (2012, "trainval")),
                 transform: Optional[Callable] = None, index_map: Optional[Dict[str, int]] = None,
                 preload_label: bool = True, classes: Optional[Sequence[str]] = None,
                 image_ext: str = ".jpg", strict: bool = True) -> None:
        super().__init__(transform)
        self._root = os.path.expanduser(root)
        self._classes = check_class_list(classes if classes is not None else self.CLASSES)
        self.index_map = dict(index_map) if index_map is not None else {c: i for i, c in enumerate(self._classes)}
        missing = [c for c in self._classes if c not in self.index_map]
        if missing:
            raise ValueError("index_map has no class id for %s" % missing)
        self._class_ids = {c.lower(): self.index_map[c] for c in self._classes}
        self._splits = self._check_splits(splits)
        self._strict = strict
        self._image_ext = normalize_image_ext(image_ext)
        self._items = self._load_items()
        self._image_paths = self._find_image_paths()
        self._sizes = [None] * len(self._items)
        self._parsed = [False] * len(self._items)
        if preload_label:
            self._labels = [self._parse(i, self.problems) for i in range(len(self))]
            for i, path in enumerate(self._image_paths):
                if not os.path.exists(path):
                    self.problems.add("image_missing", path, self._missing_image_detail(i))
        self.problems.finish(str(self), raise_errors=strict, warn=preload_label)

    def __str__(self) -> str:
        return "%s(root=%s, splits=%s)" % (type(self).__name__, self._root,
                                           ",".join("%s_%s" % s for s in self._splits))

    @property
    def classes(self) -> Tuple[str, ...]:
        """Class names, in class-id order."""
        return self._classes

    @property
    def items(self) -> List[Tuple[str, str]]:
        """``(VOC folder, image id)`` of every item."""
        return list(self._items)

    @staticmethod
    def _check_splits(splits) -> Tuple[Split, ...]:
        if isinstance(splits, tuple) and len(splits) == 2 and isinstance(splits[1], str) \
                and not isinstance(splits[0], (tuple, list)):
            splits = (splits,)  # a single (year, name)
        out = []
        for s in splits:
            if not (isinstance(s, (tuple, list)) and len(s) == 2 and isinstance(s[1], str)):
                raise ValueError("splits must be a sequence of (year or folder, split name) pairs such as "
                                 "((2007, 'trainval'),), got element %r" % (s,))
            out.append((s[0], s[1]))
        return tuple(out)

    def _load_items(self) -> List[Tuple[str, str]]:
        items = []
        for folder, name in self._splits:
            voc_dir = voc_folder(self._root, folder)
            items += [(voc_dir, i) for i in split_ids(self._root, folder, name)]
        return items

    def _find_image_paths(self) -> List[str]:
        """``JPEGImages/<id><image_ext>``, or with ``image_ext=None`` the file found for each id.

        An id without a file gets the ``.jpg`` path (reported as ``image_missing``, with the
        extensions tried); an id with several files gets the preferred one and an ``image_ambiguous``
        problem.
        """
        if self._image_ext is not None:
            return [os.path.join(d, "JPEGImages", i + self._image_ext) for d, i in self._items]
        found: Dict[Tuple[str, str], str] = {}
        for voc_dir in dict.fromkeys(d for d, _ in self._items):
            image_dir = os.path.join(voc_dir, "JPEGImages")
            paths, ambiguous = find_images(image_dir, [i for d, i in self._items if d == voc_dir])
            found.update(((voc_dir, i), p) for i, p in paths.items())
            for img_id, names in sorted(ambiguous.items()):
                self.problems.add("image_ambiguous", os.path.join(image_dir, img_id),
                                  "files %s; pass the extension (image_ext, --image-ext)" % ", ".join(names))
        return [found.get((d, i), os.path.join(d, "JPEGImages", i + IMAGE_EXTENSIONS[0])) for d, i in self._items]

    def _missing_image_detail(self, idx: int) -> str:
        if self._image_ext is not None:
            return "item %d" % idx
        return "item %d: no file %s.{%s} (any case)" % (idx, self._items[idx][1],
                                                      ",".join(e[1:] for e in IMAGE_EXTENSIONS))

    def _load_label(self, idx: int) -> np.ndarray:
        log = ProblemLog()
        label = self._parse(idx, log)
        log.finish(str(self), raise_errors=True, warn=False)
        return label

    def annotation_path(self, idx: int) -> str:
        voc_dir, img_id = self._items[idx]
        return os.path.join(voc_dir, "Annotations", img_id + ".xml")

    def _parse(self, idx: int, log: ProblemLog) -> np.ndarray:
        """Parse annotation ``idx`` into an ``(N, 6)`` label, recording problems; sets ``_sizes[idx]``."""
        path = self.annotation_path(idx)
        self._parsed[idx] = True
        try:
            root = ET.parse(path).getroot()
        except FileNotFoundError:
            log.add("annotation_missing", path, "item %d" % idx)
            return empty_label()
        except (ET.ParseError, OSError) as e:
            log.add("annotation_malformed", path, "XML: %s" % e)
            return empty_label()

        size = root.find("size")
        wh = positive_size(size.findtext("width"), size.findtext("height")) if size is not None else None
        if wh is None:
            img_path = self._image_paths[idx]
            try:
                wh = image_header(img_path)[:2]
                log.add("size_missing", path, "using the image's %dx%d" % wh)
            except DatasetError as e:
                log.add("image_missing" if not os.path.exists(img_path) else "image_unreadable", img_path,
                        "needed for the size missing from %s (%s)" % (path, e))
        self._sizes[idx] = wh

        rows, names = [], []
        for k, obj in enumerate(root.iter("object")):
            name = (obj.findtext("name") or "").strip()
            where = "object %d %r" % (k, name)
            if not name:
                log.add("annotation_malformed", path, "object %d has no <name>" % k)
                continue
            class_id = self._class_ids.get(name.lower())
            if class_id is None:
                log.add("unknown_class", path, where)
                continue
            difficult = self._difficult(obj, path, where, log)
            box = obj.find("bndbox")
            try:
                coords = [float(box.findtext(c)) - 1 for c in _COORDS]
            except (AttributeError, TypeError, ValueError):
                log.add("annotation_malformed", path, "%s: <bndbox> needs numeric %s" % (where, "/".join(_COORDS)))
                continue
            rows.append(coords + [class_id, difficult])
            names.append(where)
        if not rows:
            log.add("empty_image", path)
            return empty_label()
        label = np.array(rows, dtype=np.float64)
        if wh is not None:
            label[:, :4], keep = check_boxes(label[:, :4], wh[0], wh[1], path, names, log)
            label = label[keep]
        return label.astype(np.float32).reshape(-1, 6)

    @staticmethod
    def _difficult(obj, path: str, where: str, log: ProblemLog) -> int:
        text = obj.findtext("difficult")
        if text is None or not text.strip():
            log.add("difficult_missing", path, where)
            return 0
        try:
            return int(text)
        except ValueError:
            log.add("difficult_invalid", path, "%s: %r" % (where, text))
            return 0

    @property
    def im_sizes(self) -> List[Tuple[int, int]]:
        """``(width, height)`` of every item from the XML ``<size>`` (image header where it is missing)."""
        for i in range(len(self)):
            if not self._parsed[i]:
                self._parse(i, ProblemLog())
        return super().im_sizes
