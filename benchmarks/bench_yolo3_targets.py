"""Per-image YOLOv3 target generation: our numpy generator vs GluonCV's prefetch generator.

    OMP_NUM_THREADS=1 python benchmarks/bench_yolo3_targets.py --size 416 --images 200

Both get the same random labels (1..20 boxes, with mixup weights); GluonCV's is called per image as
in its train transform. Prints images/s and the ratio.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "model", "yolo"))
from _yolo_oracle import gluoncv_prefetch, random_labels  # noqa: E402

from gluon_bof.model.yolo.targets import YOLOv3TargetGenerator  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=416)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--classes", type=int, default=20)
    args = ap.parse_args()
    hw = (args.size, args.size)
    labels = random_labels(np.random.default_rng(0), args.images, hw, args.classes, mix=True)
    gen = YOLOv3TargetGenerator(args.classes, label_smooth=True)
    results = {}
    for _ in range(2):                                   # alternate, keep the best of two rounds
        t0 = time.perf_counter()
        for lab in labels:
            gen.gen(lab, hw, has_weight=True)
        ours = args.images / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for lab in labels:
            gluoncv_prefetch([lab], hw, args.classes, mix=True)
        ref = args.images / (time.perf_counter() - t0)
        results["ours"] = max(results.get("ours", 0), ours)
        results["gluoncv"] = max(results.get("gluoncv", 0), ref)
    print("targets at %d: ours %.0f img/s, gluoncv %.0f img/s, ratio x%.1f"
          % (args.size, results["ours"], results["gluoncv"], results["ours"] / results["gluoncv"]))


if __name__ == "__main__":
    main()
