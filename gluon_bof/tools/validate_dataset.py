"""Report every problem of a detection dataset in one pass, with counts; exit 1 when it is unusable.

Examples::

    python -m gluon_bof.tools.validate_dataset --dataset voc --root ~/.mxnet/datasets/voc \\
        --splits 2007_trainval,2012_trainval
    python -m gluon_bof.tools.validate_dataset --dataset coco --root ~/.mxnet/datasets/coco \\
        --splits instances_val2017 --no-images
    python -m gluon_bof.tools.validate_dataset --dataset custom --root ~/data --splits MyData_train,MyData_val
    python -m gluon_bof.tools.validate_dataset --dataset shapes --num-images 200

Annotations are parsed with the datasets' own rules (see ``docs/datasets.md``), collecting problems
instead of raising; then every image is decoded (skip with ``--no-images``) and checked against its
annotated size. Exit code 0: usable (at most notes, clips and drops); 1: errors; 2: bad arguments.
"""
import argparse
import collections
import difflib
import sys
import warnings
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..data.base import check_boxes, image_header, note_image_mode
from ..data.validation import DatasetError, DatasetWarning, ProblemLog
from ..data.voc import parse_voc_splits


def build_dataset(args: argparse.Namespace):
    """The dataset named by the arguments, built without raising on (or warning about) its problems."""
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        if args.dataset in ("voc", "custom"):
            from ..data.voc import VOCDetection, collect_voc_classes

            splits = parse_voc_splits(args.splits or "2007_trainval,2012_trainval")
            if args.dataset == "custom" and not classes:
                classes = list(collect_voc_classes(args.root, splits))
                print("--classes not given: %d classes collected from the annotations: --classes %s"
                      % (len(classes), ",".join(classes)))
            image_ext = args.image_ext or (".jpg" if args.dataset == "voc" else "auto")
            return VOCDetection(args.root, splits=splits, classes=classes, image_ext=image_ext, strict=False)
        if args.dataset == "coco":
            from ..data.coco import COCODetection

            splits = [s.strip() for s in (args.splits or "instances_train2017").split(",") if s.strip()]
            return COCODetection(args.root, splits=splits, classes=classes, skip_empty=False,
                                 use_crowd=True, strict=False)
        from ..data.shapes import ShapesDetection

        return ShapesDetection(args.num_images, seed=args.seed, split=args.split)


def check_images(dataset, log: ProblemLog, progress: bool = False) -> None:
    """Decode every image of ``dataset`` and record image problems into ``log``."""
    seen_missing = set(p.file for p in dataset.problems.problems if p.rule == "image_missing")
    for idx in range(len(dataset)):
        path = dataset.image_path(idx)
        if path in seen_missing:
            continue
        try:
            if not path.startswith("<"):  # a file, not a generated image
                note_image_mode(path, *image_header(path)[2:], log)
            dataset.read_image(idx, log)
        except DatasetError as e:
            log.add(e.rule or "image_unreadable", e.file or path, "item %d" % idx)
        if progress and idx % 500 == 499:
            print("  decoded %d/%d images" % (idx + 1, len(dataset)), file=sys.stderr)


def check_generated_labels(dataset, log: ProblemLog) -> None:
    """For datasets without annotation files (Shapes): every box must lie inside its image."""
    for idx, (w, h) in enumerate(dataset.im_sizes):
        label = dataset.label(idx)
        names = ["object %d" % k for k in range(len(label))]
        check_boxes(label[:, :4], w, h, dataset.image_path(idx), names, log)
        if not len(label):
            log.add("empty_image", dataset.image_path(idx))


def class_counts(dataset) -> Tuple[str, List[int]]:
    """``("name: objects (difficult), ...", objects per class)`` over all labels."""
    total: collections.Counter = collections.Counter()
    hard: collections.Counter = collections.Counter()
    for idx in range(len(dataset)):
        label = dataset.label(idx)
        for cls, difficult in label[:, 4:6].astype(np.int64).tolist():
            total[cls] += 1
            hard[cls] += difficult != 0
    text = ", ".join("%s: %d (%d difficult)" % (name, total[k], hard[k]) for k, name in enumerate(dataset.classes))
    return text, [total[k] for k in range(len(dataset.classes))]


def missing_class_errors(classes: Sequence[str], counts: Sequence[int], unknown: Sequence[str]) -> List[str]:
    """One message per class of ``--classes`` without any object (typically a typo), with the closest
    name found in the annotations when there is one."""
    messages = []
    for name, count in zip(classes, counts):
        if count:
            continue
        close = difflib.get_close_matches(name.lower(), [u.lower() for u in unknown], n=1, cutoff=0.6)
        hint = ""
        if close:
            hint = " (did you mean %r? it is in the annotations)" % next(u for u in unknown if u.lower() == close[0])
        messages.append("class %r of --classes has no object in the annotations%s" % (name, hint))
    return messages


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gluon_bof.tools.validate_dataset",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, choices=("voc", "custom", "coco", "shapes"),
                        help="as the training scripts' --dataset (custom: a VOC-layout folder of your own)")
    parser.add_argument("--root", help="dataset root (voc, custom: the folder holding VOC2007/ or your folder; "
                                       "coco: the folder holding annotations/)")
    parser.add_argument("--splits", help="voc, custom: 2007_trainval,2012_trainval (default), e.g. MyData_train; "
                                         "coco: instances_train2017 (default),instances_val2017")
    parser.add_argument("--classes", help="comma-separated class list, matched ignoring case (voc, custom; custom "
                                          "default: every name in the annotations); coco: expected names")
    parser.add_argument("--image-ext", default=None,
                        help="voc, custom: extension of the files in JPEGImages, or auto: find each image by its "
                             "id among .jpg .jpeg .png .bmp .tif .tiff (default: .jpg for voc, auto for custom)")
    parser.add_argument("--no-images", action="store_true", help="do not decode images (annotations only)")
    parser.add_argument("--num-images", type=int, default=100, help="shapes: number of images")
    parser.add_argument("--seed", type=int, default=0, help="shapes: dataset seed")
    parser.add_argument("--split", default="train", help="shapes: train, val or test")
    parser.add_argument("--max-examples", type=int, default=3, help="example files shown per rule")
    args = parser.parse_args(argv)
    if args.dataset in ("voc", "custom", "coco") and not args.root:
        parser.error("--root is required for --dataset %s" % args.dataset)
    try:
        dataset = build_dataset(args)
    except (DatasetError, ValueError) as e:
        print("NOT USABLE: %s" % e)
        return 1
    log = ProblemLog()
    log.extend(dataset.problems)
    if args.dataset == "shapes":
        check_generated_labels(dataset, log)
    if not args.no_images:
        check_images(dataset, log, progress=True)
    print("%s: %d items, %d classes" % (dataset, len(dataset), len(dataset.classes)))
    counts_text, counts = class_counts(dataset)
    print("objects per class: " + counts_text)
    unknown = collections.Counter(p.detail.rpartition(" ")[2] for p in log.problems if p.rule == "unknown_class")
    if unknown:
        print("class names not in `classes`: " + ", ".join("%s (%d)" % kv for kv in unknown.most_common()))
    print(log.summary(args.max_examples))
    missing = (missing_class_errors(dataset.classes, counts, [u.strip("'\"") for u in unknown])
               if args.classes or args.dataset == "custom" else [])
    for message in missing:
        print("ERROR: " + message)
    errors = len(log.errors()) + len(missing)
    num_objects = sum(len(dataset.label(i)) for i in range(len(dataset)))
    if errors or not num_objects:
        reason = "%d error(s)" % errors if errors else "no objects of the given classes"
        print("NOT USABLE: %s" % reason)
        return 1
    print("USABLE: %d problem(s) noted, fixed or dropped, no error" % log.count())
    return 0


if __name__ == "__main__":
    sys.exit(main())
