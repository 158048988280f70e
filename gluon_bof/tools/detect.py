"""Run a detector on one's own images: a picture with boxes and a JSON of detections per image.

::

    python -m gluon_bof.tools.detect --params RUN/best.params --images a.jpg photos/ --out detections
    python -m gluon_bof.tools.detect --params yolo3_darknet53_voc-f5ece5ce.params \\
        --network yolo3_darknet53_voc --images street.jpg --out detections --thresh 0.5
    python -m gluon_bof.tools.detect --params EXPORT/yolo3_tiny_shapes-symbol.json --images x.png --out d

The weights may be a run's checkpoint, a bare or GluonCV ``.params`` file, or a symbol export (see
``gluon_bof.tools.run_model``). Folders contribute their image files (not recursively). For every
readable image, ``<out>/<stem>.jpg`` shows the detections scoring at least ``--thresh`` (class name,
score, a legend of colours) and ``<out>/<stem>.json`` lists them with boxes in the image's own
pixels. Unreadable or corrupt files are skipped, named on stderr and in ``<out>/summary.json``.
Exit status: 0 when at least one image was processed, 1 when none could be, 2 on bad arguments.
"""
import argparse
import json
import os
import sys
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..data.base import read_image
from ..data.validation import DatasetError
from ..viz.draw import draw_detections
from .run_model import Detections, ModelFileError, RunModel, load_run_model

__all__ = ["IMAGE_EXTENSIONS", "collect_images", "detection_record", "detect_images", "main"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def collect_images(paths: Sequence[str]) -> Tuple[List[str], List[Dict[str, str]]]:
    """Files named directly, plus the image files of named folders (sorted); and the missing paths."""
    images: List[str] = []
    missing: List[Dict[str, str]] = []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS))
            images += [os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n))]
        elif os.path.isfile(path):
            images.append(path)
        else:
            missing.append({"image": path, "reason": "no such file or folder"})
    return images, missing


def detection_record(path: str, image: np.ndarray, dets: Detections, model: RunModel,
                     thresh: float) -> Dict[str, Any]:
    """JSON-ready detections of one image scoring at least ``thresh`` (boxes in image pixels)."""
    keep = dets.scores >= thresh
    return {
        "image": path, "width": int(image.shape[1]), "height": int(image.shape[0]), "model": model.name,
        "thresh": thresh,
        "detections": [{"class_id": int(c), "class": model.classes[int(c)] if int(c) < len(model.classes) else None,
                        "score": round(float(s), 6), "box": [round(float(v), 2) for v in b]}
                       for c, s, b in zip(dets.ids[keep], dets.scores[keep], dets.boxes[keep])],
    }


def _unique_stem(path: str, used: Dict[str, int]) -> str:
    stem = os.path.splitext(os.path.basename(path))[0] or "image"
    count = used.get(stem, 0)
    used[stem] = count + 1
    return stem if count == 0 else "%s_%d" % (stem, count)


def _batches(items: List[str], size: int) -> Iterable[List[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def detect_images(model: RunModel, paths: Sequence[str], out_dir: str, thresh: float = 0.5,
                  batch_size: int = 4, progress: bool = True) -> Dict[str, Any]:
    """Detect on every image of ``paths`` (files or folders), writing pictures and JSON into ``out_dir``.

    Returns the summary also written to ``out_dir/summary.json``: images processed, detections
    kept, and the skipped files with their reasons.
    """
    if batch_size < 1:
        raise ValueError("--batch-size %d: must be at least 1" % batch_size)
    files, skipped = collect_images(paths)
    os.makedirs(out_dir, exist_ok=True)
    used: Dict[str, int] = {}
    written: List[Dict[str, Any]] = []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(files), unit="img", desc="detect")
    for chunk in _batches(files, batch_size):
        images, names = [], []
        for path in chunk:
            try:
                images.append(read_image(path))
                names.append(path)
            except DatasetError as exc:
                skipped.append({"image": path, "reason": str(exc)})
        for path, image, dets in zip(names, images, model.detect(images) if images else []):
            stem = _unique_stem(path, used)
            record = detection_record(path, image, dets, model, thresh)
            picture = draw_detections(image, dets.boxes, dets.ids, dets.scores, model.classes, score_thresh=thresh)
            record["picture"] = stem + ".jpg"
            if not cv2.imwrite(os.path.join(out_dir, stem + ".jpg"), picture[:, :, ::-1]):
                raise OSError("detect: could not write %s" % os.path.join(out_dir, stem + ".jpg"))
            with open(os.path.join(out_dir, stem + ".json"), "w", encoding="utf-8") as f:
                json.dump(record, f, indent=1)
            written.append({"image": path, "picture": stem + ".jpg", "json": stem + ".json",
                            "detections": len(record["detections"])})
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    summary = {"model": model.name, "weights": model.symbol_path or model.params_path, "thresh": thresh,
               "processed": len(written), "detections": sum(w["detections"] for w in written),
               "skipped": skipped, "images": written}
    with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    return summary


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gluon_bof.tools.detect", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--params", required=True, help="RUN/<tag>.params, a bare/GluonCV .params file, or an "
                   "exported <name>-symbol.json")
    p.add_argument("--network", default=None, help="model name (yolo3_darknet53_voc, ...) or training --network; "
                   "needed without a manifest")
    p.add_argument("--dataset", default=None, help="with a training --network: voc, coco, shapes or custom")
    p.add_argument("--classes", default=None, help="comma-separated class names (custom datasets)")
    p.add_argument("--images", nargs="+", required=True, help="image files and folders of images")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--thresh", type=float, default=0.5, help="minimum score of drawn and listed detections")
    p.add_argument("--data-shape", type=int, default=None, help="YOLOv3 input side (default: the run's, else 416)")
    p.add_argument("--batch-size", type=int, default=4, help="images per forward pass")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if not 0.0 <= args.thresh <= 1.0:
        print("detect: error: --thresh %r: must be in [0, 1]" % args.thresh, file=sys.stderr)
        return 2
    try:
        model = load_run_model(args.params, args.network, args.dataset, args.classes, args.data_shape)
        summary = detect_images(model, args.images, args.out, args.thresh, args.batch_size,
                                progress=not args.no_progress)
    except (ModelFileError, ValueError) as exc:
        print("detect: error: %s" % exc, file=sys.stderr)
        return 2
    for item in summary["skipped"]:
        print("detect: skipped %s: %s" % (item["image"], item["reason"]), file=sys.stderr)
    print("%d images, %d detections >= %.2f, %d skipped; pictures and JSON in %s" % (
        summary["processed"], summary["detections"], args.thresh, len(summary["skipped"]), args.out))
    return 0 if summary["processed"] else 1


if __name__ == "__main__":
    sys.exit(main())
