"""Training speed of YOLOv3 models on this CPU: forward + backward + SGD step, hybridized.

Prints images/s per (model, input size) and the ratio against GluonCV's yolo3_mobilenet0.25_voc
measured in the same run (same batch, same inputs, same kind of targets).

    OMP_NUM_THREADS=2 python benchmarks/bench_yolo3_train_speed.py --sizes 256 320 --batch 8
    OMP_NUM_THREADS=1 python benchmarks/bench_yolo3_train_speed.py --sizes 160 224 320 --batch 4 \
        --models yolo3_tiny_shapes yolo3_tiny_shapes:backbone=plain --rounds 3

A model is ``NAME`` or ``NAME:key=value,...`` (constructor keywords, e.g. ``backbone=plain``). With
``--rounds`` above 1 the models are timed in turns, round after round, so that a slow minute of a
shared machine falls on all of them; each line gives the median over rounds.

Targets are made once per size by the numpy generator (data-worker cost is not measured here).
"""
import argparse
import time
import warnings

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from _common import yolo3_step_inputs
from gluon_bof.model import get_model

def train_speed(net, batch_arrays, iters, warmup=2):
    """Images/s of hybridized forward+backward+SGD step (median of per-iteration times)."""
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 1e-4, "momentum": 0.9, "wd": 5e-4})
    bs = batch_arrays[0].shape[0]
    times = []
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        with autograd.record():
            losses = net(*batch_arrays)
            total = sum(l.sum() for l in losses)
        total.backward()
        trainer.step(bs)
        mx.nd.waitall()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return bs / float(np.median(times))


def parse_model(spec):
    """``'name:key=value,...'`` -> ``(name, {key: value})``; values stay strings unless numbers."""
    name, _, options = spec.partition(":")
    kwargs = {}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        try:
            kwargs[key] = float(value)
        except ValueError:
            kwargs[key] = value
    return name, kwargs


def build(name, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name.startswith("gluoncv:"):
            import gluoncv
            net = gluoncv.model_zoo.get_model(name[len("gluoncv:"):], pretrained_base=False, **kw)
        else:
            net = get_model(name, **kw)
        net.initialize(mx.init.Xavier())
    return net


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 320])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--iters", type=int, default=8)
    ap.add_argument("--ref-iters", type=int, default=3)
    ap.add_argument("--models", nargs="+", default=["yolo3_tiny_shapes"])
    ap.add_argument("--rounds", type=int, default=1, help="timings of each model, taken in turns")
    ap.add_argument("--no-ref", action="store_true", help="skip GluonCV's yolo3_mobilenet0.25_voc")
    args = ap.parse_args()
    for size in args.sizes:
        ref_speed = None
        if not args.no_ref:
            ref = build("gluoncv:yolo3_mobilenet0.25_voc")
            ref.hybridize()
            arrays = yolo3_step_inputs(20, size, args.batch)
            ref_speed = train_speed(ref, arrays, args.ref_iters, warmup=1)
            print("size %d  gluoncv yolo3_mobilenet0.25_voc   %7.2f img/s" % (size, ref_speed), flush=True)
        nets = {}
        for spec in args.models:
            name, kwargs = parse_model(spec)
            net = build(name, **kwargs)
            net.hybridize(static_alloc=True)
            arrays = yolo3_step_inputs(net.num_class, size, args.batch, anchors=net.anchors, strides=net.strides)
            nets[spec] = (net, arrays)
        speeds = {spec: [] for spec in args.models}
        for _ in range(args.rounds):
            for spec, (net, arrays) in nets.items():
                speeds[spec].append(train_speed(net, arrays, args.iters))
        for spec in args.models:
            speed = float(np.median(speeds[spec]))
            ratio = " (x%.2f vs gluoncv mobilenet0.25)" % (speed / ref_speed) if ref_speed else ""
            print("size %d  %-32s %7.2f img/s%s" % (size, spec, speed, ratio), flush=True)


if __name__ == "__main__":
    main()
