"""Build the train and validation datasets that the training scripts name with ``--dataset``.

One place that maps a dataset name to GluonCV's standard splits, so the scripts stay thin:

=========  ===========================================  ===================================
name       train                                        validation
=========  ===========================================  ===================================
voc        VOC2007 trainval + VOC2012 trainval          VOC2007 test
coco       instances_train2017 (crowd boxes excluded)   instances_val2017 (empty images kept)
shapes     ShapesDetection(split='train') (embedded)    ShapesDetection(split='val')
custom     a VOC-layout directory with its own classes  (splits given by the user)
=========  ===========================================  ===================================

``custom`` is made for folders of real photographs: class names match the annotations ignoring case
and keep the spelling given (or, without ``classes``, are collected from the annotations), and each
image is found by its id whatever its extension (``image_ext='auto'``).
"""
import os
from typing import Optional, Sequence, Tuple

from .coco import COCODetection
from .shapes import ShapesDetection
from .voc import VOCDetection, collect_voc_classes, parse_voc_splits

DATASETS = ("voc", "coco", "shapes", "custom")


def build_datasets(name: str, root: Optional[str] = None, classes: Optional[Sequence[str]] = None,
                   train_splits: Optional[str] = None, val_splits: Optional[str] = None,
                   shapes_train_size: int = 2000, shapes_val_size: int = 300, shapes_seed: int = 0,
                   shapes_image_size: Tuple[int, int] = (320, 500), train: bool = True,
                   image_ext: Optional[str] = None):
    """Return ``(train_dataset, val_dataset)`` for a ``--dataset`` name (``train=False``: ``(None, val)``).

    Parameters
    ----------
    name : str
        One of ``voc``, ``coco``, ``shapes``, ``custom``.
    root : str, optional
        Dataset root: the folder holding ``VOC2007/``... (voc, custom; GluonCV's default
        ``~/.mxnet/datasets/voc``) or ``annotations/`` and ``train2017/``... (coco).
    classes : sequence of str, optional
        Class names of a VOC-layout dataset, spelled as reports show them (matched ignoring case).
        For ``custom`` without them, the names found in the ``Annotations/`` folders of the split
        folders (train and validation), sorted (:func:`~gluon_bof.data.voc.collect_voc_classes`).
    train_splits, val_splits : str, optional
        Override the splits: ``2007_trainval,2012_trainval`` for VOC layouts, ``instances_train2017``
        for COCO.
    shapes_train_size, shapes_val_size, shapes_seed : int
        Size and seed of the embedded synthetic dataset.
    shapes_image_size : (int, int)
        Smallest and largest side of a Shapes image, in pixels (VOC-like 320-500 by default). Object
        sizes are relative to the image, so a network fed 224-pixel inputs learns the same task from
        224-320-pixel images, which are drawn 2-3x faster.
    train : bool
        Build the training set too.
    image_ext : str, optional
        Extension of the images in ``JPEGImages/`` (voc, custom), or ``'auto'`` to find each image by
        its id among ``.jpg .jpeg .png .bmp .tif .tiff``. Default: ``.jpg`` for voc (as GluonCV),
        ``auto`` for custom.
    """
    if name == "shapes":
        lo, hi = shapes_image_size
        return (ShapesDetection(num_images=shapes_train_size, seed=shapes_seed, split="train", min_size=lo,
                                max_size=hi) if train else None,
                ShapesDetection(num_images=shapes_val_size, seed=shapes_seed, split="val", min_size=lo,
                                max_size=hi))
    if name in ("voc", "custom"):
        if name == "custom" and not root:
            raise ValueError("--dataset custom needs --dataset-root (the folder holding the VOC-layout folders, "
                             "e.g. ROOT/MyData/{Annotations,ImageSets/Main,JPEGImages})")
        voc_root = os.path.expanduser(root or os.path.join("~", ".mxnet", "datasets", "voc"))
        train_part = parse_voc_splits(train_splits or "2007_trainval,2012_trainval") if train else ()
        val_part = parse_voc_splits(val_splits or "2007_test")
        if not classes:
            classes = collect_voc_classes(voc_root, train_part + val_part) if name == "custom" else None
        ext = image_ext or (".jpg" if name == "voc" else "auto")
        train_set = VOCDetection(voc_root, splits=train_part, classes=classes, image_ext=ext) if train else None
        return train_set, VOCDetection(voc_root, splits=val_part, classes=classes, image_ext=ext)
    if name == "coco":
        coco_root = os.path.expanduser(root or os.path.join("~", ".mxnet", "datasets", "coco"))
        train_set = COCODetection(coco_root, splits=tuple((train_splits or "instances_train2017").split(",")),
                                  use_crowd=False) if train else None
        return train_set, COCODetection(coco_root, splits=tuple((val_splits or "instances_val2017").split(",")),
                                        skip_empty=False)
    raise ValueError("unknown dataset %r; choose one of %s" % (name, ", ".join(DATASETS)))
