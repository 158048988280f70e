"""Benchmark: gluon_bof metrics against GluonCV's VOC07 metric and plain pycocotools, same data, one run.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_metrics.py                 # 5,000 images, VOC + COCO
    OMP_NUM_THREADS=1 python benchmarks/bench_metrics.py --skip-coco     # VOC only (~15 s)
    OMP_NUM_THREADS=1 python benchmarks/bench_metrics.py --skip-coco --batch 16 1 --decimals 0 2
                                                                         # every VOC setting (~1 min)
    OMP_NUM_THREADS=1 python benchmarks/bench_metrics.py --images 500    # quick look

Data: ``--images`` VOC-like images (1-6 objects of 1-3 classes) with ``--dets`` detections each
(padded batches of ``--batch``) over ``--classes`` classes, 60% near an object, the rest random;
``--decimals 2`` rounds the scores to create many ties (the slow path of exact tie replication).
Several ``--batch`` and ``--decimals`` values run every combination (the COCO part uses the first
batch size).
Goals (issue "Evaluation"):
VOC07 at least 10x faster than GluonCV, COCO at least 5x faster than pycocotools, identical values.
Prints the times, the ratios and the largest value difference.
"""
import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
import warnings

import numpy as np


def make_voc_batches(rng: np.random.Generator, images: int, dets: int, classes: int, batch: int,
                     decimals: int = 0, max_gt: int = 6):
    """Padded VOC-like batches ``(pred_boxes, pred_labels, pred_scores, gt_boxes, gt_labels, gt_difficult)``.

    Each image holds 1..``max_gt`` objects of 1..3 classes (VOC 2007 test: 3 objects, 1.4 classes per
    image), 10% difficult. Of its ``dets`` detections 60% lie near an object, with its class (true
    positives and duplicates), the rest are random boxes of random classes. Scores are float32
    uniforms, rounded to ``decimals`` when > 0 to create many ties.
    """
    batches = []
    for start in range(0, images, batch):
        b = min(batch, images - start)
        gt_n = rng.integers(1, max_gt + 1, b)
        image_classes = rng.integers(0, classes, (b, 3))
        xy = rng.uniform(0, 400, (b, max_gt, 2))
        gt_boxes = np.concatenate([xy, xy + rng.uniform(8, 200, (b, max_gt, 2))], axis=2).astype(np.float32)
        gt_labels = np.take_along_axis(image_classes, rng.integers(0, 3, (b, max_gt)), axis=1).astype(np.float32)
        gt_diff = (rng.random((b, max_gt)) < 0.1).astype(np.float32)
        pad = np.arange(max_gt)[None, :] >= gt_n[:, None]
        gt_labels[pad] = -1
        gt_boxes[pad] = -1
        src = rng.integers(0, gt_n[:, None], (b, dets))
        near = rng.random((b, dets)) < 0.6
        rand_xy = rng.uniform(0, 400, (b, dets, 2))
        boxes = np.concatenate([rand_xy, rand_xy + rng.uniform(8, 200, (b, dets, 2))], axis=2)
        jitter = np.take_along_axis(gt_boxes, src[:, :, None], axis=1) + rng.normal(0, 6, (b, dets, 4))
        jitter = np.concatenate([np.minimum(jitter[..., :2], jitter[..., 2:]),
                                 np.maximum(jitter[..., :2], jitter[..., 2:])], axis=2)
        boxes = np.where(near[:, :, None], jitter, boxes).astype(np.float32)
        labels = np.where(near, np.take_along_axis(gt_labels, src, axis=1),
                          rng.integers(0, classes, (b, dets))).astype(np.float32)
        scores = rng.random((b, dets)).astype(np.float32)
        if decimals > 0:
            scores = np.round(scores, decimals)
        batches.append((boxes, labels, scores, gt_boxes, gt_labels, gt_diff))
    return batches


def time_voc(metric, batches):
    """Seconds for reset + all updates + get, and the values."""
    start = time.perf_counter()
    metric.reset()
    for batch in batches:
        metric.update(*batch)
    _, values = metric.get()
    return time.perf_counter() - start, np.array(values, dtype=np.float64)


def bench_voc(args, batch: int, decimals: int) -> None:
    from gluoncv.utils.metrics.voc_detection import VOC07MApMetric as GluonCVVOC07
    from gluon_bof.metrics import VOC07MApMetric

    names = ["c%d" % i for i in range(args.classes)]
    batches = make_voc_batches(np.random.default_rng(0), args.images, args.dets, args.classes, batch, decimals)
    ours, theirs = [], []
    for _ in range(args.repeat):  # alternate, to share the machine's load fairly
        t, v_ours = time_voc(VOC07MApMetric(class_names=names), batches)
        ours.append(t)
        t, v_theirs = time_voc(GluonCVVOC07(class_names=names), batches)
        theirs.append(t)
    diff = float(np.nanmax(np.abs(v_ours - v_theirs)))
    print("VOC07 mAP, %d images x %d detections, %d classes, batch %d, scores %s"
          % (args.images, args.dets, args.classes, batch,
             "rounded to %d decimals" % decimals if decimals else "float32"))
    print("  gluon_bof  median %.3f s  min %.3f s  (%d runs)" % (np.median(ours), np.min(ours), args.repeat))
    print("  gluoncv    median %.3f s  min %.3f s" % (np.median(theirs), np.min(theirs)))
    print("  speed-up   %.1fx (medians)  %.1fx (mins)   mAP %.6f   max |difference| %.1e"
          % (np.median(theirs) / np.median(ours), np.min(theirs) / np.min(ours), v_ours[-1], diff))


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
    batches = coco_batches(rng, coco, args.dets, args.batch[0])
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
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--dets", type=int, default=100)
    parser.add_argument("--classes", type=int, default=20, help="VOC classes")
    parser.add_argument("--coco-classes", type=int, default=80)
    parser.add_argument("--batch", type=int, nargs="+", default=[16], help="images per update")
    parser.add_argument("--decimals", type=int, nargs="+", default=[0],
                        help="round VOC scores (ties); 0 = no rounding")
    parser.add_argument("--repeat", type=int, default=3, help="VOC timing repeats (alternating)")
    parser.add_argument("--skip-coco", action="store_true")
    parser.add_argument("--skip-voc", action="store_true")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    if not args.skip_voc:
        for batch in args.batch:
            for decimals in args.decimals:
                bench_voc(args, batch, decimals)
    if not args.skip_coco:
        bench_coco(args)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
