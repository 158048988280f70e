"""One worker of the dist_sync test: train the toy model, save this worker's final weights.

Run by ``gluon_bof.engine.distributed.launch_local`` (DMLC_* variables set) as
``python dist_worker.py OUT_DIR``; writes ``OUT_DIR/weights_rank{R}.npz``.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

import engine_toy as toy  # noqa: E402
from gluon_bof.engine import build_trainer, dist_info, fit  # noqa: E402
from gluon_bof.lr_scheduler import build_lr_scheduler  # noqa: E402

EPOCHS, BATCH = 2, 4


def run(out_dir: str, kvstore: str) -> None:
    ctxs = [mx.cpu()]
    loader = toy.toy_loader(batch_size=BATCH, n=12)
    sched = build_lr_scheduler(0.05, EPOCHS, loader.num_batches(0), "cosine", warmup_epochs=1)
    net = toy.make_net(ctxs, norm_layer=None)
    trainer = build_trainer(net, "sgd", {"momentum": 0.9, "wd": 1e-3, "lr_scheduler": sched}, kvstore=kvstore)
    fit(net, toy.ToyTask(), loader, trainer, ctxs, EPOCHS, os.path.join(out_dir, "run"), save_interval=1,
        progress=False, tensorboard=False)
    rank, num_workers = dist_info(trainer)
    np.savez(os.path.join(out_dir, f"weights_rank{rank}.npz"), num_workers=num_workers,
             num_update=trainer._optimizer.num_update, **toy.weights(net))


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "dist_sync")
