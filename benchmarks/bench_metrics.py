"""Benchmark: gluon_bof metrics against GluonCV's VOC07 metric and plain pycocotools, same data, one run.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_metrics.py --skip-coco     # every VOC case, batch 1 and 16
    OMP_NUM_THREADS=1 python benchmarks/bench_metrics.py --skip-coco --cases issue sparse --batch 1
    OMP_NUM_THREADS=1 python benchmarks/bench_metrics.py --skip-voc      # COCO, 5,000 images

VOC cases (``--cases``, each run at every ``--batch`` size; batch 1 is one ``update`` per image):

* ``issue``: 1,500 images x 60 detections, scores rounded to 2 decimals (many ties);
* ``tiny``: 200 images x 5 detections;
* ``sparse``: 3,000 images with 0-2 detections each (a third have none), so most classes have no
  detection in most images;
* ``sparse-padded``: the same detections in 100-row outputs padded with -1, as a detector with a
  fixed number of outputs returns them;
* ``few-classes``: 2,000 images x 50 detections over 2 classes;
* ``large`` / ``large-tied``: 5,000 images x 100 detections, float32 scores / rounded to 2 decimals.

Images are VOC-like: 1-6 objects of 1-3 of the 20 classes (VOC 2007 test: 3 objects, 1.4 classes
per image), 10% difficult. 60% of the detections lie near an object, with its class (true positives
and duplicates); the rest are random boxes of random classes. Rows are padded with -1 to the
largest count in the batch, as a data loader pads them (so at batch 1 the ground truths are not
padded and every update has its own row counts), except in ``large``, ``large-tied`` and
``sparse-padded``, padded to fixed sizes.

Each row times a whole evaluation (reset, every ``update``, ``get``) of ``VOC07MApMetric`` and of
GluonCV's, alternating the two over ``--repeat`` runs, and prints the median wall and CPU times, the
ratio of the medians, our ``update`` share and the largest difference of the values (per-class APs
and mAP), which must be <= 1e-9. Goals: VOC07 at least 10x faster than GluonCV on every row, COCO
at least 5x faster than pycocotools, identical values.
"""
import argparse
import contextlib
import io
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from typing import Dict, List, Tuple

import numpy as np

# name: (images, detections per image (lo, hi), classes, score decimals, padding: "batch" or rows)
VOC_CASES: Dict[str, Tuple[int, Tuple[int, int], int, int, object]] = {
    "issue": (1500, (60, 60), 20, 2, "batch"),
    "tiny": (200, (5, 5), 20, 2, "batch"),
    "sparse": (3000, (0, 2), 20, 2, "batch"),
    "sparse-padded": (3000, (0, 2), 20, 2, 100),
    "few-classes": (2000, (50, 50), 2, 2, "batch"),
    "large": (5000, (100, 100), 20, 0, 100),
    "large-tied": (5000, (100, 100), 20, 2, 100),
}
MAX_GT = 6


def make_voc_images(rng: np.random.Generator, images: int, dets: Tuple[int, int], classes: int,
                    decimals: int) -> List[Tuple[np.ndarray, ...]]:
    """Per image ``(pred_boxes (n, 4), pred_labels (n,), scores (n,), gt_boxes (m, 4), gt_labels (m,),
    difficult (m,))``, float32, unpadded: see the module docstring for the distributions."""
    out = []
    for _ in range(images):
        m = int(rng.integers(1, MAX_GT + 1))
        xy = rng.uniform(0, 400, (m, 2))
        gt_boxes = np.concatenate([xy, xy + rng.uniform(8, 200, (m, 2))], axis=1)
        gt_labels = rng.integers(0, classes, 3)[rng.integers(0, 3, m)]
        difficult = rng.random(m) < 0.1
        n = int(rng.integers(dets[0], dets[1] + 1))
        src = rng.integers(0, m, n)
        near = rng.random(n) < 0.6
        xy = rng.uniform(0, 400, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(8, 200, (n, 2))], axis=1)
        jitter = gt_boxes[src] + rng.normal(0, 6, (n, 4))
        jitter = np.concatenate([np.minimum(jitter[:, :2], jitter[:, 2:]), np.maximum(jitter[:, :2], jitter[:, 2:])], 1)
        boxes = np.where(near[:, None], jitter, boxes)
        labels = np.where(near, gt_labels[src], rng.integers(0, classes, n))
        scores = rng.random(n).astype(np.float32)
        if decimals > 0:
            scores = np.round(scores, decimals)
        out.append(tuple(a.astype(np.float32) for a in (boxes, labels, scores, gt_boxes, gt_labels, difficult)))
    return out


def make_voc_batches(images: List[Tuple[np.ndarray, ...]], batch: int, padding: object):
    """Padded batches ``(pred_boxes, pred_labels, pred_scores, gt_boxes, gt_labels, gt_difficult)``.

    ``padding`` "batch": rows padded with -1 to the largest count of the batch; an int: detection
    rows padded to that many and ground-truth rows to the largest possible count (6).
    """
    batches = []
    for start in range(0, len(images), batch):
        part = images[start:start + batch]
        n = max(len(p[1]) for p in part) if padding == "batch" else int(padding)
        m = max(len(p[4]) for p in part) if padding == "batch" else MAX_GT
        b = len(part)
        arrays = [np.full(shape, -1, np.float32) for shape in [(b, n, 4), (b, n), (b, n), (b, m, 4), (b, m), (b, m)]]
        for k, image in enumerate(part):
            for array, values in zip(arrays, image):
                array[k, :len(values)] = values
        arrays[5][arrays[4] < 0] = 0  # difficult flags of padding rows
        batches.append(tuple(arrays))
    return batches


def time_voc(metric, batches) -> Tuple[float, float, float, np.ndarray]:
    """Wall seconds for reset + every update + get, the CPU seconds, the update share, the values."""
    start, cpu = time.perf_counter(), time.process_time()
    metric.reset()
    for batch in batches:
        metric.update(*batch)
    updated = time.perf_counter()
    _, values = metric.get()
    wall = time.perf_counter() - start
    return wall, time.process_time() - cpu, (updated - start) / wall, np.array(values, dtype=np.float64)


def bench_voc(name: str, batch: int, repeat: int) -> Dict[str, object]:
    """One table row: ours against GluonCV on case ``name`` at ``batch`` images per update."""
    from gluoncv.utils.metrics.voc_detection import VOC07MApMetric as GluonCVVOC07
    from gluon_bof.metrics import VOC07MApMetric

    images, dets, classes, decimals, padding = VOC_CASES[name]
    data = make_voc_images(np.random.default_rng(0), images, dets, classes, decimals)
    batches = make_voc_batches(data, batch, padding)
    names = ["c%d" % i for i in range(classes)]
    ours, theirs, share = [], [], []
    for _ in range(repeat):  # alternate, to share the machine's load fairly
        wall, cpu, part, v_ours = time_voc(VOC07MApMetric(class_names=names), batches)
        ours.append((wall, cpu))
        share.append(part)
        wall, cpu, _, v_theirs = time_voc(GluonCVVOC07(class_names=names), batches)
        theirs.append((wall, cpu))
    diff = float(np.nanmax(np.abs(v_ours - v_theirs)))
    same_nan = bool(np.array_equal(np.isnan(v_ours), np.isnan(v_theirs)))
    ours_wall, ours_cpu = np.median(ours, axis=0)
    theirs_wall, theirs_cpu = np.median(theirs, axis=0)
    row = dict(case=name, batch=batch, images=images, detections=sum(len(d[1]) for d in data),
               ours=ours_wall, theirs=theirs_wall, ratio=theirs_wall / ours_wall,
               cpu_ratio=theirs_cpu / ours_cpu, update_share=float(np.median(share)),
               map=v_ours[-1], diff=diff, same=same_nan and diff <= 1e-9)
    print("%-13s batch %2d  %5d images %7d dets  gluon_bof %.4f s  GluonCV %.4f s  %5.1fx (CPU %5.1fx)  "
          "update %3.0f%%  mAP %.6f  max |diff| %.1e%s"
          % (name, batch, images, row["detections"], ours_wall, theirs_wall, row["ratio"], row["cpu_ratio"],
             100 * row["update_share"], row["map"], diff, "" if row["same"] else "  VALUES DIFFER"), flush=True)
    return row


def machine() -> str:
    """CPU model and load average, for the record."""
    model = platform.processor()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    return "CPU %s, load average %s" % (model, " ".join("%.2f" % x for x in os.getloadavg()))


def make_coco(rng: np.random.Generator, images: int, classes: int, max_gt: int = 8):
    """A COCO annotation dict with category ids 1, 3, 5, ... (non-contiguous, like COCO)."""
    imgs, anns = [], []
    for i in range(images):
        h, w = int(rng.integers(300, 640)), int(rng.integers(300, 640))
        imgs.append({"id": 10 + 2 * i, "height": h, "width": w, "file_name": "%d.jpg" % i})
        for _ in range(int(rng.integers(0, max_gt + 1))):
            x, y = float(rng.uniform(0, w - 30)), float(rng.uniform(0, h - 30))
            bw, bh = float(rng.uniform(4, w - x)), float(rng.uniform(4, h - y))
            anns.append({"id": len(anns) + 1, "image_id": 10 + 2 * i, "category_id": 1 + 2 * int(rng.integers(classes)),
                         "bbox": [x, y, bw, bh], "area": bw * bh, "iscrowd": 0})
    cats = [{"id": 1 + 2 * c, "name": "c%d" % c} for c in range(classes)]
    return {"images": imgs, "annotations": anns, "categories": cats}


def coco_batches(rng: np.random.Generator, coco: dict, dets: int, batch: int):
    """Padded detection batches over the images in id order, half of them near a ground truth."""
    by_image = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    cat_index = {c["id"]: k for k, c in enumerate(coco["categories"])}
    images = sorted(coco["images"], key=lambda im: im["id"])
    boxes = np.zeros((len(images), dets, 4), np.float32)
    labels = rng.integers(0, len(cat_index), (len(images), dets)).astype(np.float32)
    scores = np.round(rng.random((len(images), dets)), 3).astype(np.float32)
    for i, im in enumerate(images):
        xy = rng.uniform(0, [im["width"], im["height"]], (dets, 2))
        boxes[i] = np.concatenate([xy, xy + rng.uniform(4, 200, (dets, 2))], axis=1)
        gts = by_image.get(im["id"], [])
        for j in range(0, dets, 2) if gts else []:
            a = gts[int(rng.integers(len(gts)))]
            x, y, w, h = a["bbox"]
            box = np.array([x, y, x + w - 1, y + h - 1]) + rng.normal(0, 4, 4)
            boxes[i, j] = np.r_[np.minimum(box[:2], box[2:]), np.maximum(box[:2], box[2:])]
            labels[i, j] = cat_index[a["category_id"]]
    return [(boxes[s:s + batch], labels[s:s + batch], scores[s:s + batch]) for s in range(0, len(images), batch)]


def plain_pycocotools(path: str, coco: dict, batches, score_thresh: float = 0.05):
    """GluonCV's way: one dict per detection, ``loadRes``, ``COCOeval``. Returns (seconds, stats)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(path)
    start = time.perf_counter()
    cats = [c["id"] for c in coco["categories"]]
    image_ids = sorted(gt.getImgIds())
    results, k = [], 0
    for boxes, labels, scores in batches:
        for b in range(boxes.shape[0]):
            for box, label, score in zip(boxes[b].astype(np.float64), labels[b], scores[b].astype(np.float64)):
                if label < 0 or score < score_thresh:
                    continue
                results.append({"image_id": image_ids[k], "category_id": cats[int(label)],
                                "bbox": [box[0], box[1], box[2] - (box[0] - 1), box[3] - (box[1] - 1)],
                                "score": float(score)})
            k += 1
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return time.perf_counter() - start, np.array(ev.stats[:6])


def bench_coco(args) -> None:
    from gluon_bof.metrics import COCODetectionMetric

    rng = np.random.default_rng(1)
    coco = make_coco(rng, args.images, args.coco_classes)
    batches = coco_batches(rng, coco, args.dets, 16)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "instances.json")
        with open(path, "w") as f:
            json.dump(coco, f)
        metric = COCODetectionMetric(path)
        metric._ground_truth()  # index the annotations outside the timing, as pycocotools' COCO(path)
        start = time.perf_counter()
        for batch in batches:
            metric.update(*batch)
        ours = np.array([metric.summary()[k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")])
        t_ours = time.perf_counter() - start
        t_ref, ref = plain_pycocotools(path, coco, batches)
    print("COCO mAP, %d images x %d detections, %d categories, %d ground truths"
          % (args.images, args.dets, args.coco_classes, len(coco["annotations"])))
    print("  gluon_bof (faster-coco-eval)  %.2f s" % t_ours)
    print("  plain pycocotools             %.2f s" % t_ref)
    print("  speed-up   %.1fx   AP %.6f   max |difference| over AP..APl %.1e"
          % (t_ref / t_ours, ours[0], float(np.max(np.abs(ours - ref)))))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(VOC_CASES), choices=list(VOC_CASES), help="VOC cases")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16], help="images per update")
    parser.add_argument("--repeat", type=int, default=5, help="VOC timing repeats (alternating)")
    parser.add_argument("--images", type=int, default=5000, help="COCO images")
    parser.add_argument("--dets", type=int, default=100, help="COCO detections per image")
    parser.add_argument("--coco-classes", type=int, default=80)
    parser.add_argument("--skip-coco", action="store_true")
    parser.add_argument("--skip-voc", action="store_true")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    if not args.skip_voc:
        print(machine())
        rows = [bench_voc(name, batch, args.repeat) for name in args.cases for batch in args.batch]
        print(machine())
        print("\n| case | batch | images | detections | gluon_bof | GluonCV | speed-up | CPU speed-up "
              "| max abs. difference |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print("| %s | %d | %d | %d | %.3f s | %.3f s | **%.1fx** | %.1fx | %s |"
                  % (r["case"], r["batch"], r["images"], r["detections"], r["ours"], r["theirs"], r["ratio"],
                     r["cpu_ratio"], "%.0e" % r["diff"] if r["diff"] else "0"))
        bad = [r for r in rows if not r["same"]]
        if bad:
            raise SystemExit("values differ from GluonCV's in %s" % ", ".join("%s/batch %d" % (r["case"], r["batch"])
                                                                         for r in bad))
    if not args.skip_coco:
        bench_coco(args)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
