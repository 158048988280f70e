"""Training speed: gluon_bof's YOLOv3 and Faster R-CNN training against GluonCV's, same network and input.

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

Faster R-CNN (``--nets frcnn_r50 frcnn_r18``, rows of their own, batch ``--frcnn-batch`` 1 as GluonCV's
default): the same network on both sides with the same parameters (ours saved and loaded into GluonCV's),
only ``train_patterns`` trainable on both, hybridized as both train scripts do.

* ``step``: one ``short x 4/3 short`` random image with random boxes and the RPN targets gluon_bof's
  workers make, the same arrays for both. gluon_bof: ``FasterRCNNTrainTask.losses`` (the training call
  and ``faster_rcnn_losses``) under ``autograd.record()``, backward of their sum; GluonCV: its
  ``ForwardBackwardTask.forward_backward`` with the four losses of ``train_faster_rcnn.py``
  (``SigmoidBinaryCrossEntropyLoss``, ``HuberLoss(1/9)``, ``SoftmaxCrossEntropyLoss``, ``HuberLoss(1)``);
  then ``trainer.step`` and ``waitall`` on both.
* ``loop``: ``fit`` + ``FasterRCNNTrainTask`` + ``build_faster_rcnn_train_loader(rpn_target_fn=...)``
  against the per-batch code of GluonCV's ``train_faster_rcnn.py``: ``DataLoader(FasterRCNNDefault
  TrainTransform(short, max_size, net), SplitSortedBucketSampler, FasterRCNNTrainBatchify)``, its
  ``split_and_load``, ``Parallel(1, ForwardBackwardTask)``, the eight metric updates, ``trainer.step``.
  No warm-up epoch (the first batch of every epoch is not timed anyway).
* ``frcnn_r50`` = ``faster_rcnn_resnet50_v1b_voc`` on both sides; ``frcnn_r18`` = this package's
  CPU-sized ``faster_rcnn_resnet18_v1b_shapes`` against GluonCV's ``FasterRCNN`` class on its
  ``resnet18_v1b`` with the same settings (``R18_SHAPES_SETTINGS``, checked against the built model),
  at the model's own 256 / 384 sizes.

``OMP_NUM_THREADS`` must be set before MXNet starts, so ``--omp`` sets it (default 1) for the whole
run; compare settings by running twice::

    python benchmarks/bench_train.py --omp 1 --write-docs
    python benchmarks/bench_train.py --omp 2 --nets mobilenet1.0 --shapes 320
    python benchmarks/bench_train.py --omp 1 --nets frcnn_r50 frcnn_r18 --frcnn-repeats 2 --write-docs
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
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
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
    from gluon_bof.recipes.yolo3.data import build_yolo3_train_loader
    from gluon_bof.engine import build_trainer, fit
    from gluon_bof.recipes.yolo3.task import YOLO3TrainTask
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



def alternate_loops(runs: dict, repeats: int, closers: list) -> tuple:
    """Run ``runs['ours']`` and ``runs['gluoncv']`` ``repeats`` times each, alternating which goes first,
    then call every closer; return ``(speeds, waits)`` dicts of per-run images/s and data-wait shares."""
    speeds, waits = {"ours": [], "gluoncv": []}, {"ours": [], "gluoncv": []}
    try:
        for r in range(repeats):
            for impl in (("ours", "gluoncv") if r % 2 == 0 else ("gluoncv", "ours")):
                speed, wait = runs[impl]()
                speeds[impl].append(speed)
                waits[impl].append(wait)
    finally:
        for close in closers:
            close()
    return speeds, waits

def bench_loop(key: str, samples: list, size: int, batch: int, workers: int, repeats: int) -> dict:
    runs = {}
    closers = []
    for impl, make in (("ours", ours_loop), ("gluoncv", gluoncv_loop)):
        runs[impl], close = make(key, samples, size, batch, workers)
        closers.append(close)
        runs[impl]()  # warm-up epoch: graph, memory, worker start
    load0 = load()
    speeds, waits = alternate_loops(runs, repeats, closers)
    return {"kind": "loop", "net": key, "size": size, "batch": batch, "workers": workers,
            "ours": statistics.median(speeds["ours"]), "gluoncv": statistics.median(speeds["gluoncv"]),
            "wait_ours": statistics.median(waits["ours"]), "wait_gluoncv": statistics.median(waits["gluoncv"]),
            "ratios": [a / b for a, b in zip(speeds["ours"], speeds["gluoncv"])], "load": (load0, load())}


# ------------------------------------------------------------------------------------ Faster R-CNN
FRCNN_NETS = {  # --nets key: (gluon_bof model, GluonCV model)
    "frcnn_r50": ("faster_rcnn_resnet50_v1b_voc", "faster_rcnn_resnet50_v1b_voc"),
    "frcnn_r18": ("faster_rcnn_resnet18_v1b_shapes", "FasterRCNN(resnet18_v1b), same settings"),
}
# GluonCV's FasterRCNN arguments equal to gluon_bof's faster_rcnn_resnet18_v1b_shapes (gluon_bof/model/rcnn/zoo.py);
# frcnn_gluoncv_r18 checks them against the built model, and loading our parameters checks every shape.
R18_SHAPES_SETTINGS = dict(short=256, max_size=384, nms_thresh=0.45, nms_topk=200, post_nms=100, clip=4.14,
                           roi_mode="align", roi_size=(7, 7), strides=16, rpn_channel=256, base_size=16,
                           scales=(2, 4, 8), ratios=(0.5, 1, 2), alloc_size=(64, 64), rpn_nms_thresh=0.7,
                           rpn_train_pre_nms=1000, rpn_train_post_nms=300, rpn_test_pre_nms=500,
                           rpn_test_post_nms=100, rpn_min_size=4, num_sample=64, pos_iou_thresh=0.5,
                           pos_ratio=0.25, max_num_gt=32)


def is_frcnn(key: str) -> bool:
    return key in FRCNN_NETS


def frcnn_long(short: int) -> int:
    """``max_size`` of the loop rows: GluonCV's VOC ratio 1000/600."""
    return int(round(short * 1000 / 600))


def frcnn_sizes(key: str, shorts: list) -> list:
    """``(short, max_size)`` of the loop rows: the requested shorts with GluonCV's VOC ratio for ResNet-50,
    the model's own 256 / 384 for the Shapes model (the sizes it is trained at)."""
    if key == "frcnn_r18":
        return [(R18_SHAPES_SETTINGS["short"], R18_SHAPES_SETTINGS["max_size"])]
    return [(s, frcnn_long(s)) for s in shorts]


def frcnn_width(short: int) -> int:
    """Input width of the step rows: a 4:3 image (a typical 500x375 VOC picture gives 600x800)."""
    return int(round(short * 4 / 3))


def frcnn_gluoncv_r18(ours, batch: int):
    """GluonCV's ``FasterRCNN`` class on its ``resnet18_v1b`` with our shapes model's settings."""
    from gluoncv.model_zoo.rcnn.faster_rcnn.faster_rcnn import get_faster_rcnn
    from gluoncv.model_zoo.resnetv1b import resnet18_v1b
    base = resnet18_v1b(pretrained=False, dilated=False, norm_layer=gluon.nn.BatchNorm)
    features, top = gluon.nn.HybridSequential(), gluon.nn.HybridSequential()
    for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3"):
        features.add(getattr(base, name))
    top.add(base.layer4)
    theirs = get_faster_rcnn("resnet18_v1b", "shapes", pretrained=False, features=features, top_features=top,
                             classes=list(ours.classes), train_patterns=ours.train_patterns,
                             per_device_batch_size=batch, **R18_SHAPES_SETTINGS)
    mine = {"short": ours.short, "max_size": ours.max_size, "roi_size": ours._roi_size,
            "num_sample": ours._num_sample, "rpn_train": ours.rpn._train, "rpn_test": ours.rpn._test}
    want = {"short": R18_SHAPES_SETTINGS["short"], "max_size": R18_SHAPES_SETTINGS["max_size"],
            "roi_size": R18_SHAPES_SETTINGS["roi_size"], "num_sample": R18_SHAPES_SETTINGS["num_sample"],
            "rpn_train": (R18_SHAPES_SETTINGS["rpn_train_pre_nms"], R18_SHAPES_SETTINGS["rpn_train_post_nms"]),
            "rpn_test": (R18_SHAPES_SETTINGS["rpn_test_pre_nms"], R18_SHAPES_SETTINGS["rpn_test_post_nms"])}
    changed = {k: (mine[k], want[k]) for k in mine if tuple(np.atleast_1d(mine[k])) != tuple(np.atleast_1d(want[k]))}
    if changed:
        raise ValueError("bench_train: faster_rcnn_resnet18_v1b_shapes no longer matches R18_SHAPES_SETTINGS "
                         "(ours, twin): %s; update R18_SHAPES_SETTINGS in benchmarks/bench_train.py" % changed)
    return theirs


def frcnn_pair(key: str, batch: int) -> dict:
    """``{'ours': net, 'gluoncv': net}``: the same network with the same parameters (ours copied into
    GluonCV's), only ``train_patterns`` trainable (``grad_req='null'`` elsewhere, as both train scripts
    do), hybridized as both train scripts do."""
    from gluoncv import model_zoo
    from gluon_bof.model import get_model
    ours_name, ref_name = FRCNN_NETS[key]
    ours = get_model(ours_name, pretrained_base=False, per_device_batch_size=batch)
    theirs = (model_zoo.get_model(ref_name, pretrained_base=False, per_device_batch_size=batch)
              if key == "frcnn_r50" else frcnn_gluoncv_r18(ours, batch))
    x = mx.nd.random.uniform(shape=(batch, 3, 160, 224))  # shapes are deferred until a first forward
    for net in (ours, theirs):
        net.initialize(mx.init.Xavier(), ctx=mx.cpu())
        net(x)
    tmp = tempfile.mkdtemp(prefix="bench_train_")
    try:
        ours.save_parameters(os.path.join(tmp, "ours.params"))
        theirs.load_parameters(os.path.join(tmp, "ours.params"))  # strict: same names and shapes
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for net in (ours, theirs):
        train = net.collect_train_params()
        for param in net.collect_params().values():
            if param.name not in train:
                param.grad_req = "null"
        net.hybridize()
    return {"ours": ours, "gluoncv": theirs}


def frcnn_trainer(net) -> gluon.Trainer:
    return gluon.Trainer(net.collect_train_params(), "sgd", dict(SGD), kvstore="local")


def gluoncv_frcnn_task(net, trainer, mix_ratio: float = 1.0):
    """GluonCV's ``ForwardBackwardTask`` with the four losses its ``train_faster_rcnn.py`` builds."""
    from gluoncv.model_zoo.rcnn.faster_rcnn.data_parallel import ForwardBackwardTask
    return ForwardBackwardTask(net, trainer, gluon.loss.SigmoidBinaryCrossEntropyLoss(from_sigmoid=False),
                               gluon.loss.HuberLoss(rho=1.0 / 9), gluon.loss.SoftmaxCrossEntropyLoss(),
                               gluon.loss.HuberLoss(rho=1.0), mix_ratio, False)


def frcnn_step_fns(nets: dict, inputs: list) -> dict:
    """One synchronous training step per side on the same arrays: forward of the training call under
    ``autograd.record()``, each side's four losses, backward, ``trainer.step``, ``waitall``."""
    from gluon_bof.recipes.faster_rcnn.task import FasterRCNNTrainTask
    bs = inputs[0].shape[0]
    ours_net, trainer_o = nets["ours"], frcnn_trainer(nets["ours"])
    trainer_g = frcnn_trainer(nets["gluoncv"])
    task_o, task_g = FasterRCNNTrainTask(), gluoncv_frcnn_task(nets["gluoncv"], trainer_g)
    x, labels, rpn_cls, rpn_box, rpn_mask, _ = inputs
    theirs_in = (x, labels.slice_axis(axis=-1, begin=0, end=6), rpn_cls, rpn_box, rpn_mask)

    def ours() -> None:
        with autograd.record():
            head = mx.nd.add_n(*task_o.losses(ours_net, tuple(inputs)))
        head.backward()
        trainer_o.step(bs)
        mx.nd.waitall()

    def gluoncv() -> None:
        task_g.forward_backward(theirs_in)  # records, computes the losses, backward
        trainer_g.step(bs)
        mx.nd.waitall()
    return {"ours": ours, "gluoncv": gluoncv}


def bench_frcnn_step(key: str, short: int, batch: int, repeats: int, iters: int) -> dict:
    from _common import faster_rcnn_step_inputs
    nets = frcnn_pair(key, batch)
    inputs = faster_rcnn_step_inputs(nets["ours"], short, frcnn_width(short), batch)
    steps = frcnn_step_fns(nets, inputs)
    for impl in ("ours", "gluoncv"):
        steps[impl]()  # graph build, memory pools (one step: a step takes seconds here)
    speeds = {"ours": [], "gluoncv": []}
    load0 = load()
    for r in range(repeats):
        for impl in (("ours", "gluoncv") if r % 2 == 0 else ("gluoncv", "ours")):
            times = []
            for _ in range(iters):
                t0 = time.perf_counter()
                steps[impl]()
                times.append(time.perf_counter() - t0)
            speeds[impl].append(batch / statistics.median(times))
    return {"kind": "step", "net": key, "size": f"{short}x{frcnn_width(short)}", "batch": batch, "workers": "-",
            "ours": statistics.median(speeds["ours"]), "gluoncv": statistics.median(speeds["gluoncv"]),
            "ratios": [a / b for a, b in zip(speeds["ours"], speeds["gluoncv"])], "load": (load0, load())}


def ours_frcnn_loop(net, samples: list, short: int, max_size: int, batch: int, workers: int):
    """A callable running one epoch of ``fit`` with ``FasterRCNNTrainTask``; returns (img/s, wait fraction)."""
    from gluon_bof.recipes.faster_rcnn.data import build_faster_rcnn_train_loader
    from gluon_bof.engine import build_trainer, fit
    from gluon_bof.model.rcnn import RPNTargetTransform
    from gluon_bof.recipes.faster_rcnn.task import FasterRCNNTrainTask
    loader = TimedLoader(build_faster_rcnn_train_loader(
        ListDataset(samples), batch, seed=0, num_workers=workers, short=short, max_size=max_size,
        rpn_target_fn=RPNTargetTransform.from_net(net)))
    trainer = build_trainer(net, "sgd", dict(SGD), kvstore="local", params=net.collect_train_params())
    tmp = tempfile.mkdtemp(prefix="bench_train_")
    task = FasterRCNNTrainTask()

    def run() -> tuple:
        fit(net, task, loader, trainer, [mx.cpu()], 1, tmp, save_interval=0, progress=False, tensorboard=False)
        return loader.timer.result()

    def close() -> None:  # the loader's workers, and the checkpoint fit writes after each epoch (~250 MB)
        loader.loader.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return run, close


def gluoncv_frcnn_loop(net, samples: list, short: int, max_size: int, batch: int, workers: int):
    """A callable running one epoch of the per-batch code of GluonCV's ``train_faster_rcnn.py``.

    Its loader (``FasterRCNNDefaultTrainTransform`` with RPN targets, ``SplitSortedBucketSampler``,
    ``FasterRCNNTrainBatchify``), its ``Parallel(1, ForwardBackwardTask)`` executor (the first call in
    the main thread, later ones in its worker thread), the eight metric updates and ``trainer.step``.
    """
    from gluoncv.data.batchify import FasterRCNNTrainBatchify
    from gluoncv.data.transforms.presets.rcnn import FasterRCNNDefaultTrainTransform
    from gluoncv.data.sampler import SplitSortedBucketSampler
    from gluoncv.utils.metrics.rcnn import RCNNAccMetric, RCNNL1LossMetric, RPNAccMetric, RPNL1LossMetric
    from gluoncv.utils.parallel import Parallel
    ctx = [mx.cpu()]
    data = gluon.data.SimpleDataset(ListDataset(samples, nd=True).samples)  # NDArray images, as its datasets
    ratios = [img.shape[1] / img.shape[0] for img, _ in samples]
    sampler = SplitSortedBucketSampler(ratios, batch, num_parts=1, part_index=0, shuffle=True)
    transform = FasterRCNNDefaultTrainTransform(short, max_size, net, ashape=net.ashape, multi_stage=False)
    loader = gluon.data.DataLoader(data.transform(transform), batch_sampler=sampler,
                                   batchify_fn=FasterRCNNTrainBatchify(net, len(ctx)), num_workers=workers)
    trainer = frcnn_trainer(net)
    executor = Parallel(1, gluoncv_frcnn_task(net, trainer))
    metrics = [mx.metric.Loss(n) for n in ("RPN_Conf", "RPN_SmoothL1", "RCNN_CrossEntropy", "RCNN_SmoothL1")]
    metrics2 = [RPNAccMetric(), RPNL1LossMetric(), RCNNAccMetric(), RCNNL1LossMetric()]

    def to_devices(b) -> list:  # the script's split_and_load: shard i (or the plain array) to ctx[i]
        return [[part.as_in_context(c) for part, c in zip(a, ctx)] if isinstance(a, (list, tuple))
                else [a.as_in_context(ctx[0])] for a in b]

    def run() -> tuple:
        timer = Timed()
        mx.nd.waitall()
        net.hybridize()
        for m in metrics:
            m.reset()
        for b in timer.wrap(loader):
            b = to_devices(b)
            for shard in zip(*b):
                executor.put(shard)
            results = [executor.get() for _ in ctx]
            for k, m in enumerate(metrics):
                m.update(0, [r[k] for r in results])
            for k, m in enumerate(metrics2):
                for r in results:
                    m.update(r[4 + k][0], r[4 + k][1])
            trainer.step(batch)
        return timer.result()
    return run, lambda: None


def bench_frcnn_loop(key: str, samples: list, short: int, max_size: int, batch: int, workers: int,
                     repeats: int) -> dict:
    nets = frcnn_pair(key, batch)
    runs, closers = {}, []
    for impl, make in (("ours", ours_frcnn_loop), ("gluoncv", gluoncv_frcnn_loop)):
        runs[impl], close = make(nets[impl], samples, short, max_size, batch, workers)
        closers.append(close)
        # No warm-up epoch (an epoch takes minutes here): the first batch of every epoch, which builds
        # the graph and starts the workers, is not timed (Timed.result).
    load0 = load()
    speeds, waits = alternate_loops(runs, repeats, closers)
    return {"kind": "loop", "net": key, "size": f"short {short}, max {max_size}", "batch": batch,
            "workers": workers, "ours": statistics.median(speeds["ours"]),
            "gluoncv": statistics.median(speeds["gluoncv"]),
            "wait_ours": statistics.median(waits["ours"]), "wait_gluoncv": statistics.median(waits["gluoncv"]),
            "ratios": [a / b for a, b in zip(speeds["ours"], speeds["gluoncv"])], "load": (load0, load())}


# ----------------------------------------------------------------------------------------- report
def table(rows: list) -> str:
    lines = ["| measure | network (gluon_bof / GluonCV) | shape | workers | gluon_bof img/s | GluonCV img/s "
             "| ratio (range) | waiting for data (ours / GluonCV) | load |",
             "|---|---|---|---|---:|---:|---|---|---|"]
    for r in rows:
        ours, ref = {**NETS, **FRCNN_NETS}[r["net"]]
        names = ours if ours == ref else f"{ours} / {ref}"
        wait = (f"{100 * r['wait_ours']:.0f}% / {100 * r['wait_gluoncv']:.0f}%" if r["kind"] == "loop" else "-")
        digits = 3 if is_frcnn(r["net"]) else 2  # Faster R-CNN: under 0.1 img/s on this CPU
        lines.append(f"| {r['kind']} | {names} | {r['size']} | {r['workers']} | {r['ours']:.{digits}f} "
                     f"| {r['gluoncv']:.{digits}f} "
                     f"| {r['ours'] / r['gluoncv']:.2f}x ({min(r['ratios']):.2f}-{max(r['ratios']):.2f}) | {wait} "
                     f"| {r['load'][0]:.1f}-{r['load'][1]:.1f} |")
    return "\n".join(lines)


def write_docs(text: str, tag: str = "bench_train") -> None:
    """Replace the ``<!-- {tag}:begin -->`` block of docs/benchmarks.md (appended to the end if missing)."""
    doc = open(DOCS, encoding="utf-8").read()
    begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    block = f"{begin}\n{text}\n{end}"
    if begin in doc:
        doc = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda m: block, doc, flags=re.S)
    elif tag == "bench_train":
        doc = doc.rstrip("\n") + "\n\n## Training\n\n" + block + "\n"
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    with open(DOCS, "w", encoding="utf-8") as f:
        f.write(doc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--omp", type=int, default=1, help="OMP_NUM_THREADS of the whole run")
    ap.add_argument("--nets", nargs="+", default=["mobilenet1.0", "tiny"], choices=sorted(NETS) + sorted(FRCNN_NETS),
                    help="YOLOv3 keys and/or Faster R-CNN keys (frcnn_*)")
    ap.add_argument("--shapes", type=int, nargs="+", default=[320], help="YOLOv3 input sizes")
    ap.add_argument("--batch", type=int, default=8, help="YOLOv3 batch")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--images", type=int, default=72, help="YOLOv3 in-memory images (one epoch = images // batch)")
    ap.add_argument("--repeats", type=int, default=3, help="alternating runs per cell (median reported)")
    ap.add_argument("--step-iters", type=int, default=5)
    ap.add_argument("--skip", nargs="*", default=[], choices=["step", "loop"])
    ap.add_argument("--frcnn-shorts", type=int, nargs="+", default=[320, 600],
                    help="Faster R-CNN step rows: input short x round(short*4/3) (frcnn_r18: 256 only)")
    ap.add_argument("--frcnn-loop-shorts", type=int, nargs="+", default=[320],
                    help="Faster R-CNN loop rows: resize short side (max side round(short*5/3); frcnn_r18: 256/384)")
    ap.add_argument("--frcnn-batch", type=int, default=1, help="Faster R-CNN images per batch (only 1, GluonCV's)")
    ap.add_argument("--frcnn-images", type=int, default=3, help="frcnn_r50 in-memory images per loop epoch")
    ap.add_argument("--frcnn-r18-images", type=int, default=12, help="frcnn_r18 in-memory images per loop epoch")
    ap.add_argument("--frcnn-repeats", type=int, default=None, help="Faster R-CNN runs per cell (default --repeats)")
    ap.add_argument("--frcnn-step-iters", type=int, default=1)
    ap.add_argument("--write-docs", action="store_true", help="put the table into docs/benchmarks.md")
    args = ap.parse_args()
    if min(args.frcnn_shorts + args.frcnn_loop_shorts) < 192:
        ap.error("--frcnn-shorts/--frcnn-loop-shorts must be >= 192: a smaller input has fewer anchors than "
                 "the 2000 proposals faster_rcnn_resnet50_v1b_voc keeps in training")
    if args.frcnn_batch != 1:
        ap.error("--frcnn-batch: only 1 (GluonCV's default, one image per device) is supported: GluonCV's "
                 "Faster R-CNN fails in the inference forward that resolves its deferred shapes at batch > 1")
    if min(args.frcnn_images, args.frcnn_r18_images) < 2:
        ap.error("--frcnn-images/--frcnn-r18-images must be >= 2 (the first batch of an epoch is not timed)")
    print(f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} MXNET_CPU_WORKER_NTHREADS="
          f"{os.environ['MXNET_CPU_WORKER_NTHREADS']} cpus={os.cpu_count()} load={load():.1f}", flush=True)
    yolo_keys = [k for k in args.nets if not is_frcnn(k)]
    frcnn_keys = [k for k in args.nets if is_frcnn(k)]
    loops = "loop" not in args.skip
    samples = make_images(args.images) if loops and yolo_keys else []
    frcnn_samples = {k: make_images(args.frcnn_r18_images if k == "frcnn_r18" else args.frcnn_images)
                     for k in (frcnn_keys if loops else [])}
    f_repeats = args.frcnn_repeats or args.repeats
    cells = {"yolo": [], "frcnn": []}
    for key in yolo_keys:
        for size in args.shapes:
            if "step" not in args.skip:
                cells["yolo"].append(lambda key=key, size=size: bench_step(key, size, args.batch, args.repeats,
                                                                           args.step_iters))
            if loops:
                cells["yolo"] += [lambda key=key, size=size, w=w: bench_loop(key, samples, size, args.batch, w,
                                                                             args.repeats) for w in args.workers]
    for key in frcnn_keys:
        if "step" not in args.skip:
            shorts = [s for s, _ in frcnn_sizes(key, args.frcnn_shorts)]
            cells["frcnn"] += [lambda key=key, s=s: bench_frcnn_step(key, s, args.frcnn_batch, f_repeats,
                                                                     args.frcnn_step_iters)
                               for s in shorts]
        if loops:
            cells["frcnn"] += [lambda key=key, s=s, m=m, w=w: bench_frcnn_loop(key, frcnn_samples[key], s, m,
                                                                               args.frcnn_batch, w, f_repeats)
                               for s, m in frcnn_sizes(key, args.frcnn_loop_shorts) for w in args.workers]
    rows = {"yolo": [], "frcnn": []}
    for family in ("yolo", "frcnn"):
        for cell in cells[family]:
            row = cell()
            rows[family].append(row)
            print(table([row]).splitlines()[-1], flush=True)
    env = f"`OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}`"
    if rows["yolo"]:
        text = table(rows["yolo"])
        print(text)
        if args.write_docs:
            write_docs(f"{env}, batch {args.batch}, {args.images} in-memory images, {args.repeats} alternating runs "
                       f"per cell (median), load average shown before-after each cell.\n\n{text}")
    if rows["frcnn"]:
        text = table(rows["frcnn"])
        print(text)
        if args.write_docs:
            write_docs(f"{env}, batch {args.frcnn_batch}, {args.frcnn_images} (frcnn_r18: {args.frcnn_r18_images}) "
                       f"in-memory images per loop epoch, "
                       f"{f_repeats} alternating runs per cell (median; step rows {args.frcnn_step_iters} step(s) "
                       f"per run), load average shown before-after each cell.\n\n{text}", tag="bench_train_frcnn")


if __name__ == "__main__":
    main()
