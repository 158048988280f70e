"""Speed of our Faster R-CNN pieces against GluonCV's, measured in the same process.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_rcnn_parts.py [--size 320x480] [--repeat 5]``.
Prints medians and the GluonCV / ours ratio (> 1 means we are faster). Runs alternate between the
two implementations so that machine load affects both alike.
"""
import argparse
import time
from typing import Callable, List

import numpy as np


def _median_pair(fn_a: Callable, fn_b: Callable, repeat: int) -> List[float]:
    fn_a()
    fn_b()
    times = [[], []]
    for _ in range(repeat):
        for k, fn in enumerate((fn_a, fn_b)):
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


def _report(name: str, ours: float, theirs: float) -> None:
    print("%-34s ours %8.2f ms   gluoncv %8.2f ms   ratio %.2f" % (name, ours * 1e3, theirs * 1e3,
                                                                   theirs / ours))


def bench_rpn_targets(repeat: int) -> None:
    import mxnet as mx
    from gluoncv.model_zoo.rcnn.rpn.rpn_target import RPNTargetGenerator as GluonCVGen

    from gluon_bof.model.rcnn.anchors import generate_anchors
    from gluon_bof.model.rcnn.rpn_targets import RPNTargetGenerator
    height, width = 600, 800
    anchors = generate_anchors(16, 16, (0.5, 1, 2), (2, 4, 8, 16, 32), (38, 50)).reshape(-1, 4)
    gt = np.array([[50, 60, 300, 400], [320, 100, 700, 560], [100, 380, 260, 590]], np.float32)
    ours, theirs = RPNTargetGenerator(), GluonCVGen()
    rng = np.random.default_rng(0)
    nd_anchors, nd_gt = mx.nd.array(anchors), mx.nd.array(gt)
    t_ours, t_theirs = _median_pair(lambda: ours(anchors, gt, (height, width), rng),
                                    lambda: theirs(nd_gt, nd_anchors, width, height), repeat)
    _report("RPN targets 600x800, 3 gts", t_ours, t_theirs)


def bench_network(size, repeat: int) -> None:
    import mxnet as mx
    from mxnet import autograd
    import gluoncv

    from gluon_bof.model import get_model
    x = mx.nd.random.uniform(shape=(1, 3) + tuple(size))
    gt = mx.nd.array([[[10, 20, 120, 150], [100, 60, 300, 250]]])
    label = mx.nd.array([[[3], [7]]])
    theirs = gluoncv.model_zoo.get_model("faster_rcnn_resnet50_v1b_voc", pretrained_base=False)
    theirs.initialize()
    theirs(x)
    ours = get_model("faster_rcnn_resnet50_v1b_voc")
    ours.initialize()
    ours(x)
    for net in (ours, theirs):
        net.hybridize(static_alloc=True)

    def infer(net):
        return lambda: [o.wait_to_read() for o in net(x)]

    def train(net):
        def step():
            with autograd.record():
                out = net(x, gt, label)
                loss = out[0].sum() + out[1].sum() + out[5].sum() + out[6].sum()
            loss.backward()
            loss.wait_to_read()
        return step

    t = _median_pair(infer(ours), infer(theirs), repeat)
    _report("r50 voc inference %dx%d" % tuple(size), *t)
    for net in (ours, theirs):
        net.hybridize(active=False)
        net.hybridize(static_alloc=True)
    t = _median_pair(train(ours), train(theirs), repeat)
    _report("r50 voc train fwd+bwd %dx%d" % tuple(size), *t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="320x480", help="network input HxW")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-network", action="store_true")
    args = parser.parse_args()
    bench_rpn_targets(max(args.repeat, 20))
    if not args.skip_network:
        bench_network(tuple(int(v) for v in args.size.split("x")), args.repeat)


if __name__ == "__main__":
    main()
