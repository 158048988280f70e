"""Subprocess of the device-failure test: one of two SyncBN devices fails in ``task.losses``.

``python device_failure_worker.py SAVE_DIR noreplay`` prints ``RAISED <type>: <message>`` and
``DRAINED True|False``, then leaves with ``os._exit`` when a device stays blocked (MXNet's shutdown
would wait for it forever). The drain wait is shortened to 2 s.
"""
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mxnet as mx  # noqa: E402

import engine_toy as toy  # noqa: E402
import gluon_bof.engine.loop as loop  # noqa: E402
from gluon_bof.engine import build_trainer, fit, norm_layer_for  # noqa: E402

BAD = 99.0


class OneBadSlice(toy.ToyTask):
    """Fails on the device whose slice holds a box target of 99 (bad data), before any network op."""

    def __init__(self, follow_device: bool) -> None:
        super().__init__()
        self.follow_device = follow_device

    def losses(self, net, device_batch):
        x, box_t, _ = device_batch
        if self.follow_device and x.context == mx.cpu(1) and self.calls >= 2:
            raise ValueError("device 1 is broken")
        if not self.follow_device and float((box_t == BAD).sum().asscalar()) > 0:
            raise ValueError("box target 99 in this slice")
        return super().losses(net, device_batch)


def main(save_dir: str, mode: str) -> None:
    ctxs = [mx.cpu(0), mx.cpu(1)]
    loader = toy.toy_loader(batch_size=4, num_workers=0, n=12)
    img, box, score = loader.dataset[5]
    loader.dataset[5] = (img, box * 0 + BAD, score)
    layer, kwargs = norm_layer_for(2, syncbn=True)
    net = toy.make_net(ctxs, layer, kwargs)
    trainer = build_trainer(net, "sgd", {"learning_rate": 0.01}, kvstore="device")
    if mode == "noreplay":
        loop.DRAIN_SECONDS = 2.0
    try:
        fit(net, OneBadSlice(mode == "noreplay"), loader, trainer, ctxs, 1, save_dir, progress=False,
            tensorboard=False)
        print("RAISED nothing", flush=True)
    except Exception as exc:  # the test reads the message
        print(f"RAISED {type(exc).__name__}: {exc} {' '.join(getattr(exc, '__notes__', []))}", flush=True)
    waiter = threading.Thread(target=mx.nd.waitall, daemon=True)
    waiter.start()
    waiter.join(30)
    print(f"DRAINED {not waiter.is_alive()}", flush=True)
    loader.close()
    if waiter.is_alive():
        os._exit(3)  # MXNet's shutdown would wait forever for the blocked device


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "replay")
