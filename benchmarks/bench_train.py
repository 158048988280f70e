"""Training speed: gluon_bof's YOLOv3 training against GluonCV's, same network, batch and shape, one run.

Two measurements, each alternating gluon_bof and GluonCV run by run (medians are reported, with
the load average around each cell, because the CPU is shared):

* ``step``: the model step alone. Hybridized net, ``autograd.record()`` forward of the training
  call ``net(x, gt_boxes, obj_t, center_t, scale_t, weight_t, class_t)``, backward of the summed
  losses, ``trainer.step(batch)``, ``waitall``; the same input and target arrays for both.
* ``loop``: the training loop end to end on the same in-memory images
  (``gluon_bof.data.shapes.ShapesDetection`` rendered once into a list). gluon_bof:
  :func:`gluon_bof.engine.fit` with ``YOLO3TrainTask`` and ``build_yolo3_train_loader`` (0 or 2
  workers). GluonCV: the per-batch code of its ``train_yolo3.py`` (``split_and_load``, the four
  losses under ``autograd.record()``, ``autograd.backward``, ``trainer.step``, the four
  ``mx.metric.Loss`` updates) fed by ``gluon.data.DataLoader(MixupDetection(ds).transform(
  YOLO3DefaultTrainTransform(S, S, net)), batchify=Tuple(Stack() x 6, Pad(-1)),
  last_batch='rollover')``, its ``--no-random-shape`` path (random shapes are off on both sides so
  the shape is the same). The first batch of every epoch is a warm-up and is not timed. The time
  the loop spends waiting for the next batch is measured around the loader's ``next()``: if it is
  a small part of the total, the data pipeline is not the bottleneck.

Networks: ``mobilenet1.0`` = ``yolo3_mobilenet1.0_voc`` on both sides; ``darknet53`` =
``yolo3_darknet53_voc``; ``tiny`` = this package's CPU-sized ``yolo3_tiny_shapes`` against GluonCV's
``yolo3_mobilenet0.25_voc`` (the smallest GluonCV YOLOv3; a larger network, so the ratio of that
row is not like for like).

``OMP_NUM_THREADS`` must be set before MXNet starts, so ``--omp`` sets it (default 1) for the whole
run; compare settings by running twice::

    python benchmarks/bench_train.py --omp 1 --write-docs
    python benchmarks/bench_train.py --omp 2 --nets mobilenet1.0 --shapes 320
"""
import argparse
import os
import sys


def _early_env() -> None:
    """Apply --omp before numpy/MXNet load their thread pools."""
    omp = "1"
    for i, a in enumerate(sys.argv):
        if a == "--omp" and i + 1 < len(sys.argv):
            omp = sys.argv[i + 1]
        elif a.startswith("--omp="):
            omp = a.split("=", 1)[1]
    os.environ["OMP_NUM_THREADS"] = omp
    os.environ.setdefault("MXNET_CPU_WORKER_NTHREADS", "1")


_early_env()

import logging  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import mxnet as mx  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402

from _common import yolo3_step_inputs  # noqa: E402
from gluon_bof.model.yolo.anchors import DEFAULT_ANCHORS, DEFAULT_STRIDES  # noqa: E402

warnings.filterwarnings("ignore")
logging.getLogger().setLevel(logging.ERROR)

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "benchmarks.md")
NETS = {  # --nets key: (gluon_bof model, GluonCV model)
    "mobilenet1.0": ("yolo3_mobilenet1.0_voc", "yolo3_mobilenet1.0_voc"),
    "darknet53": ("yolo3_darknet53_voc", "yolo3_darknet53_voc"),
    "tiny": ("yolo3_tiny_shapes", "yolo3_mobilenet0.25_voc"),
}
SGD = {"learning_rate": 1e-5, "momentum": 0.9, "wd": 5e-4}  # tiny LR: many repeats never diverge


def load() -> float:
    return os.getloadavg()[0]


# ------------------------------------------------------------------------------------------ nets
def build(impl: str, name: str) -> gluon.HybridBlock:
    """An initialized, hybridized training net of gluon_bof (``impl='ours'``) or GluonCV."""
    if impl == "ours":
        from gluon_bof.model import get_model
        net = get_model(name, pretrained_base=False)
    else:
        from gluoncv import model_zoo
        net = model_zoo.get_model(name, pretrained_base=False)
    net.initialize(mx.init.Xavier(), ctx=mx.cpu())
    net.hybridize()
    return net


def time_steps(net: gluon.HybridBlock, trainer: gluon.Trainer, inputs: list, iters: int) -> float:
    """Images/s of ``iters`` synchronous training steps (median step time)."""
    bs = inputs[0].shape[0]
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        with autograd.record():
            losses = net(*inputs)
            total = mx.nd.add_n(*losses)
        total.backward()
        trainer.step(bs)
        mx.nd.waitall()
        times.append(time.perf_counter() - t0)
    return bs / statistics.median(times)


def bench_step(key: str, size: int, batch: int, repeats: int, iters: int) -> dict:
    nets, trainers, inputs = {}, {}, {}
    for impl, name in zip(("ours", "gluoncv"), NETS[key]):
        nets[impl] = build(impl, name)
        trainers[impl] = gluon.Trainer(nets[impl].collect_params(), "sgd", dict(SGD), kvstore="local")
        inputs[impl] = yolo3_step_inputs(len(nets[impl].classes), size, batch)
        time_steps(nets[impl], trainers[impl], inputs[impl], 2)  # graph build, memory pools
    speeds = {"ours": [], "gluoncv": []}
    load0 = load()
    for r in range(repeats):
        for impl in (("ours", "gluoncv") if r % 2 == 0 else ("gluoncv", "ours")):
            speeds[impl].append(time_steps(nets[impl], trainers[impl], inputs[impl], iters))
    return {"kind": "step", "net": key, "size": size, "batch": batch, "workers": "-",
            "ours": statistics.median(speeds["ours"]), "gluoncv": statistics.median(speeds["gluoncv"]),
            "ratios": [a / b for a, b in zip(speeds["ours"], speeds["gluoncv"])], "load": (load0, load())}


# ------------------------------------------------------------------------------------------ loop
class Timed:
    """Wraps a batch iterator; records when each ``next()`` was asked for and when it returned."""

    def __init__(self) -> None:
        self.asked, self.got, self.sizes = [], [], []

    def wrap(self, it):
        it = iter(it)
        while True:
            self.asked.append(time.perf_counter())
            try:
                batch = next(it)
            except StopIteration:
                return
            self.got.append(time.perf_counter())
            first = batch[0]
            self.sizes.append(int(first.shape[0]))
            yield batch

    def result(self, skip: int = 1) -> tuple:
        """``(images/s, fraction of the time spent waiting for data)`` after ``skip`` warm-up batches.

        The span runs from the request of batch ``skip`` to the request after the last batch (the
        loop asks for it once the last step is done), so it holds ``len - skip`` full steps.
        """
        span = self.asked[-1] - self.asked[skip]
        wait = sum(g - a for a, g in zip(self.asked[skip:], self.got[skip:]))
        return sum(self.sizes[skip:]) / span, wait / span


class TimedLoader:
    """A gluon_bof loader whose ``iter_epoch`` is timed (same interface for :func:`fit`)."""

    def __init__(self, loader) -> None:
        self.loader, self.timer = loader, Timed()
        for k in ("seed", "batch_size", "shape_interval"):
            setattr(self, k, getattr(loader, k))

    def num_batches(self, epoch: int = 0) -> int:
        return self.loader.num_batches(epoch)

    def iter_epoch(self, epoch, start_batch=0, options=None):
        self.timer = Timed()
        return self.timer.wrap(self.loader.iter_epoch(epoch, start_batch, options))


def make_images(n: int, seed: int = 0) -> list:
    from gluon_bof.data.shapes import ShapesDetection
    ds = ShapesDetection(n, seed=seed, min_size=320, max_size=500)
    return [ds[i] for i in range(n)]


class ListDataset:
    """In-memory dataset; ``nd=True`` gives NDArray images as GluonCV's datasets do."""

    def __init__(self, samples: list, nd: bool = False) -> None:
        self.samples = [(mx.nd.array(img, dtype="uint8"), lab) for img, lab in samples] if nd else samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple:
        return self.samples[i]


def ours_loop(key: str, samples: list, size: int, batch: int, workers: int):
    """A callable running one epoch of ``fit``; returns (img/s, wait fraction)."""
    from gluon_bof.data.pipelines import build_yolo3_train_loader
    from gluon_bof.engine import build_trainer, fit
    from gluon_bof.model.yolo.task import YOLO3TrainTask
    net = build("ours", NETS[key][0])
    loader = TimedLoader(build_yolo3_train_loader(ListDataset(samples), net.num_class, DEFAULT_ANCHORS,
                                                  DEFAULT_STRIDES, batch,
                                                  seed=0, num_workers=workers, data_shape=size,
                                                  random_shape=False))
    trainer = build_trainer(net, "sgd", dict(SGD), kvstore="local")
    tmp = tempfile.mkdtemp(prefix="bench_train_")
    task = YOLO3TrainTask()

    def run() -> tuple:
        fit(net, task, loader, trainer, [mx.cpu()], 1, tmp, save_interval=0, progress=False, tensorboard=False)
        return loader.timer.result()
    return run, loader.loader.close


def gluoncv_loop(key: str, samples: list, size: int, batch: int, workers: int):
    """A callable running one epoch of GluonCV's train_yolo3.py per-batch code."""
    from gluoncv.data.batchify import Pad, Stack, Tuple
    from gluoncv.data.mixup.detection import MixupDetection
    from gluoncv.data.transforms.presets.yolo import YOLO3DefaultTrainTransform
    net = build("gluoncv", NETS[key][1])
    ctx = [mx.cpu()]
    train = MixupDetection(ListDataset(samples, nd=True))
    batchify = Tuple(*([Stack() for _ in range(6)] + [Pad(axis=0, pad_val=-1)]))
    loader = gluon.data.DataLoader(train.transform(YOLO3DefaultTrainTransform(size, size, net)), batch,
                                   shuffle=True, batchify_fn=batchify, last_batch="rollover", num_workers=workers)
    trainer = gluon.Trainer(net.collect_params(), "sgd", dict(SGD), kvstore="local")
    metrics = [mx.metric.Loss(n) for n in ("ObjLoss", "BoxCenterLoss", "BoxScaleLoss", "ClassLoss")]

    def run() -> tuple:
        timer = Timed()
        mx.nd.waitall()
        net.hybridize()
        for b in timer.wrap(loader):
            data = gluon.utils.split_and_load(b[0], ctx_list=ctx, batch_axis=0)
            fixed = [gluon.utils.split_and_load(b[i], ctx_list=ctx, batch_axis=0) for i in range(1, 6)]
            gt_boxes = gluon.utils.split_and_load(b[6], ctx_list=ctx, batch_axis=0)
            sums, parts = [], [[], [], [], []]
            with autograd.record():
                for ix, x in enumerate(data):
                    losses = net(x, gt_boxes[ix], *[ft[ix] for ft in fixed])
                    sums.append(losses[0] + losses[1] + losses[2] + losses[3])
                    for p, loss in zip(parts, losses):
                        p.append(loss)
                autograd.backward(sums)
            trainer.step(batch)
            for m, p in zip(metrics, parts):
                m.update(0, p)
        return timer.result()
    return run, lambda: None


def bench_loop(key: str, samples: list, size: int, batch: int, workers: int, repeats: int) -> dict:
    runs = {}
    closers = []
    for impl, make in (("ours", ours_loop), ("gluoncv", gluoncv_loop)):
        runs[impl], close = make(key, samples, size, batch, workers)
        closers.append(close)
        runs[impl]()  # warm-up epoch: graph, memory, worker start
    speeds = {"ours": [], "gluoncv": []}
    waits = {"ours": [], "gluoncv": []}
    load0 = load()
    try:
        for r in range(repeats):
            for impl in (("ours", "gluoncv") if r % 2 == 0 else ("gluoncv", "ours")):
                speed, wait = runs[impl]()
                speeds[impl].append(speed)
                waits[impl].append(wait)
    finally:
        for close in closers:
            close()
    return {"kind": "loop", "net": key, "size": size, "batch": batch, "workers": workers,
            "ours": statistics.median(speeds["ours"]), "gluoncv": statistics.median(speeds["gluoncv"]),
            "wait_ours": statistics.median(waits["ours"]), "wait_gluoncv": statistics.median(waits["gluoncv"]),
            "ratios": [a / b for a, b in zip(speeds["ours"], speeds["gluoncv"])], "load": (load0, load())}


# ----------------------------------------------------------------------------------------- report
def table(rows: list) -> str:
    lines = ["| measure | network (gluon_bof / GluonCV) | shape | workers | gluon_bof img/s | GluonCV img/s "
             "| ratio (range) | waiting for data (ours / GluonCV) | load |",
             "|---|---|---|---|---:|---:|---|---|---|"]
    for r in rows:
        ours, ref = NETS[r["net"]]
        names = ours if ours == ref else f"{ours} / {ref}"
        wait = (f"{100 * r['wait_ours']:.0f}% / {100 * r['wait_gluoncv']:.0f}%" if r["kind"] == "loop" else "-")
        lines.append(f"| {r['kind']} | {names} | {r['size']} | {r['workers']} | {r['ours']:.2f} | {r['gluoncv']:.2f} "
                     f"| {r['ours'] / r['gluoncv']:.2f}x ({min(r['ratios']):.2f}-{max(r['ratios']):.2f}) | {wait} "
                     f"| {r['load'][0]:.1f}-{r['load'][1]:.1f} |")
    return "\n".join(lines)


def write_docs(text: str) -> None:
    """Replace the '### Measured' block of docs/benchmarks.md's '## Training' section."""
    doc = open(DOCS, encoding="utf-8").read()
    block = f"<!-- bench_train:begin -->\n{text}\n<!-- bench_train:end -->"
    if "<!-- bench_train:begin -->" in doc:
        doc = re.sub(r"<!-- bench_train:begin -->.*?<!-- bench_train:end -->", lambda m: block, doc, flags=re.S)
    else:
        doc = doc.rstrip("\n") + "\n\n## Training\n\n" + block + "\n"
    with open(DOCS, "w", encoding="utf-8") as f:
        f.write(doc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--omp", type=int, default=1, help="OMP_NUM_THREADS of the whole run")
    ap.add_argument("--nets", nargs="+", default=["mobilenet1.0", "tiny"], choices=sorted(NETS))
    ap.add_argument("--shapes", type=int, nargs="+", default=[320])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--images", type=int, default=72, help="in-memory images (one epoch = images // batch)")
    ap.add_argument("--repeats", type=int, default=3, help="alternating runs per cell (median reported)")
    ap.add_argument("--step-iters", type=int, default=5)
    ap.add_argument("--skip", nargs="*", default=[], choices=["step", "loop"])
    ap.add_argument("--write-docs", action="store_true", help="put the table into docs/benchmarks.md")
    args = ap.parse_args()
    print(f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} MXNET_CPU_WORKER_NTHREADS="
          f"{os.environ['MXNET_CPU_WORKER_NTHREADS']} cpus={os.cpu_count()} load={load():.1f}", flush=True)
    samples = make_images(args.images) if "loop" not in args.skip else []
    rows = []
    for key in args.nets:
        for size in args.shapes:
            cells = []
            if "step" not in args.skip:
                cells.append(lambda: bench_step(key, size, args.batch, args.repeats, args.step_iters))
            if "loop" not in args.skip:
                cells += [lambda w=w: bench_loop(key, samples, size, args.batch, w, args.repeats)
                          for w in args.workers]
            for cell in cells:
                row = cell()
                rows.append(row)
                print(table([row]).splitlines()[-1], flush=True)
    text = table(rows)
    print(text)
    if args.write_docs:
        write_docs(f"`OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}`, batch {args.batch}, "
                   f"{args.images} in-memory images, {args.repeats} alternating runs per cell (median), "
                   f"load average shown before-after each cell.\n\n{text}")


if __name__ == "__main__":
    main()
