"""Tiny conv + BN "detector" pieces for the engine tests (run in seconds on CPU).

Also imported by ``dist_worker.py``, which runs in separate processes.
"""
from typing import Any, Dict, List, Optional, Sequence

import mxnet as mx
import numpy as np
from mxnet import gluon

from gluon_bof.data.loader import DetectionLoader
from gluon_bof.engine import split_batch

IMG = 8  # toy images are 3 x IMG x IMG


class ToyNet(gluon.HybridBlock):
    """conv(3->4) - norm (optional) - relu - conv(4->4, bias) - global pool -> (B, 4) "box" and (B, 2) "score"."""

    def __init__(self, norm_layer: Optional[type] = gluon.nn.BatchNorm, norm_kwargs: Optional[Dict[str, Any]] = None,
                 width: int = 4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.body = gluon.nn.HybridSequential()
            self.body.add(gluon.nn.Conv2D(width, 3, padding=1, use_bias=False, in_channels=3))
            if norm_layer is not None:  # None: no norm (a dist test needs no per-worker statistics)
                self.body.add(norm_layer(in_channels=width, **(norm_kwargs or {})))
            self.body.add(gluon.nn.Activation("relu"), gluon.nn.Conv2D(6, 1, in_channels=width))
            self.pool = gluon.nn.GlobalAvgPool2D()

    def hybrid_forward(self, F, x):  # noqa: N803 (MXNet's name)
        return F.flatten(self.pool(self.body(x)))


class ToyTask:
    """Two per-image loss components: squared box error and logistic score error."""

    loss_names = ("box", "score")
    draws_random = True  # as a task whose forward samples would: fit reseeds mx.random per batch

    def __init__(self, nan_at: Optional[int] = None) -> None:
        self.nan_at = nan_at  # make the 'score' component NaN on the nan_at-th call (0-based)
        self.calls = 0

    def split(self, batch: tuple, ctxs: Sequence[mx.Context]) -> List[tuple]:
        return split_batch(batch, ctxs)

    def losses(self, net: gluon.Block, device_batch: tuple) -> List[mx.nd.NDArray]:
        x, box_t, score_t = device_batch
        out = net(x)
        box = ((out[:, :4] - box_t) ** 2).sum(axis=1)
        score = mx.nd.log(1 + mx.nd.exp(-out[:, 4:] * score_t)).sum(axis=1)
        if self.nan_at is not None and self.calls == self.nan_at:
            score = score * float("nan")
        self.calls += 1
        return [box, score]


def toy_dataset(n: int = 12, seed: int = 0) -> List[tuple]:
    rs = np.random.RandomState(seed)
    return [(rs.rand(3, IMG, IMG).astype(np.float32), rs.rand(4).astype(np.float32),
             np.sign(rs.randn(2)).astype(np.float32)) for _ in range(n)]


def toy_sample(dataset: Sequence, index: int, rng: np.random.Generator, shape: Any,
               options: Dict[str, Any]) -> tuple:
    """Random flip and noise from ``rng`` (so batches depend on the loader's seeding), plus 'mixup'."""
    img, box, score = dataset[index]
    img = img[:, :, ::-1] if rng.random() < 0.5 else img
    img = img + rng.normal(0, 0.1, img.shape).astype(np.float32)
    if options.get("mixup"):
        img = 0.5 * img + 0.5
    return np.ascontiguousarray(img, dtype=np.float32), box, score


def toy_batchify(samples: List[tuple]) -> tuple:
    return tuple(np.stack([s[i] for s in samples]) for i in range(3))


def toy_loader(batch_size: int = 4, num_workers: int = 0, seed: int = 7, n: int = 12) -> DetectionLoader:
    return DetectionLoader(toy_dataset(n), toy_sample, toy_batchify, batch_size=batch_size, seed=seed,
                           num_workers=num_workers)


def make_net(ctxs: Sequence[mx.Context], norm_layer: Optional[type] = gluon.nn.BatchNorm,
             norm_kwargs: Optional[Dict[str, Any]] = None, init_seed: int = 42, width: int = 4) -> ToyNet:
    """A ToyNet with weights that depend only on ``init_seed`` (drawn on CPU, then copied)."""
    net = ToyNet(norm_layer, norm_kwargs, width=width)
    net.initialize(mx.init.Zero(), ctx=list(ctxs))
    rs = np.random.RandomState(init_seed)
    for name, p in sorted(net._collect_params_with_prefix().items()):
        if name.endswith(("running_var", "gamma")):
            value = np.ones(p.shape, np.float32)
        elif name.endswith(("running_mean", "beta")):
            value = np.zeros(p.shape, np.float32)
        else:
            value = rs.normal(0, 0.3, p.shape).astype(np.float32)
        p.set_data(mx.nd.array(value))
    return net


def weights(net: gluon.Block) -> Dict[str, np.ndarray]:
    return {k: v.data(v.list_ctx()[0]).asnumpy() for k, v in net._collect_params_with_prefix().items()}
