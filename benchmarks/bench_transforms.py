"""Throughput of the training presets against GluonCV's, measured in one process.

Run ``OMP_NUM_THREADS=1 python benchmarks/bench_transforms.py [--reps N]``. It builds 16
synthetic VOC-sized images (500x375 and similar, 1-3 boxes), then alternates rounds of our presets
and GluonCV's (``YOLO3DefaultTrainTransform(416, 416)`` without net, ``FasterRCNNDefaultTrainTransform
(600, 1000)`` without net) on the same images and prints the median img/s and the ratios. Image
decoding is not included. Needs gluoncv (the reference implementation) installed.
"""
import argparse
import time
from typing import Callable, Dict, List, Tuple

import numpy as np

from gluon_bof.data.transforms.presets import FasterRCNNTrainTransform, YOLO3TrainTransform

Sample = Tuple[np.ndarray, np.ndarray]


def synthetic_samples(count: int = 16, seed: int = 0) -> List[Sample]:
    """VOC-like random images (uint8 HWC) with 1-3 boxes each (label ``(N, 6)`` float32)."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(count):
        h, w = [(375, 500), (333, 500), (500, 375), (281, 500)][i % 4]
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        n = int(rng.integers(1, 4))
        x0, y0 = rng.uniform(0, w * 0.6, n), rng.uniform(0, h * 0.6, n)
        label = np.stack([x0, y0, x0 + rng.uniform(20, w * 0.4, n), y0 + rng.uniform(20, h * 0.4, n),
                          rng.integers(0, 20, n), np.zeros(n)], axis=1).astype(np.float32)
        samples.append((img, label))
    return samples


def _rate(fn: Callable[[np.ndarray, np.ndarray], object], samples: List[Sample], reps: int) -> float:
    start = time.perf_counter()
    for _ in range(reps):
        for img, label in samples:
            fn(img, label)
    return reps * len(samples) / (time.perf_counter() - start)


def measure(reps: int = 4, rounds: int = 3) -> Dict[str, float]:
    """Median img/s of ours and GluonCV's train presets over ``rounds`` alternating rounds."""
    import mxnet as mx
    from gluoncv.data.transforms.presets.rcnn import FasterRCNNDefaultTrainTransform
    from gluoncv.data.transforms.presets.yolo import YOLO3DefaultTrainTransform

    samples = synthetic_samples()
    nd_samples = [(mx.nd.array(img, dtype="uint8"), label) for img, label in samples]
    rng = np.random.default_rng(1)
    yolo, gcv_yolo = YOLO3TrainTransform(416, 416), YOLO3DefaultTrainTransform(416, 416)
    rcnn, gcv_rcnn = FasterRCNNTrainTransform(600, 1000), FasterRCNNDefaultTrainTransform(600, 1000)
    runs = {
        "yolo3": (lambda i, l: yolo(i, l, rng), samples),
        "gluoncv_yolo3": (lambda i, l: gcv_yolo(i, l)[0].wait_to_read(), nd_samples),
        "faster_rcnn": (lambda i, l: rcnn(i, l, rng), samples),
        "gluoncv_faster_rcnn": (lambda i, l: gcv_rcnn(i, l)[0].wait_to_read(), nd_samples),
    }
    rates: Dict[str, List[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (fn, data) in runs.items():
            rates[name].append(_rate(fn, data, reps))
    return {name: float(np.median(values)) for name, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=4, help="passes over the 16 images per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median reported)")
    args = parser.parse_args()
    r = measure(args.reps, args.rounds)
    for ours, theirs, label in [("yolo3", "gluoncv_yolo3", "YOLOv3 train 416"),
                                ("faster_rcnn", "gluoncv_faster_rcnn", "Faster R-CNN train 600/1000")]:
        print(f"{label}: gluon_bof {r[ours]:.1f} img/s, gluoncv {r[theirs]:.1f} img/s, "
              f"ratio {r[ours] / r[theirs]:.2f}")


if __name__ == "__main__":
    main()
