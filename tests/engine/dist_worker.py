"""One worker of the dist_sync tests: train the toy model, save this worker's final weights.

Run under ``gluon_bof.engine.distributed`` (DMLC_* variables set) as ``python dist_worker.py OUT_DIR``, or
alone with ``--kvstore local --devices 2`` as the one-process reference. Writes
``OUT_DIR/weights_rank{R}.npz`` (for every device ``d`` of a one-process run, ``weights_dev{d}.npz``).

Like the training scripts, the network gets one forward pass in inference mode before the trainer is
built: on CPU that lets MKL-DNN reorder the convolution weights in place, which is what made the
kvstore's initialization fail with the real detectors.
"""
import argparse
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

import engine_toy as toy  # noqa: E402
from gluon_bof.engine import build_trainer, dist_info, fit, release_kvstore  # noqa: E402
from gluon_bof.lr_scheduler import build_lr_scheduler  # noqa: E402

BATCH = 4


def run(argv: list) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out_dir")
    p.add_argument("--kvstore", default="dist_sync")
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--resume", default=None)
    p.add_argument("--die-rank", type=int, default=-1, help="this rank kills itself (SIGKILL) ...")
    p.add_argument("--die-epoch", type=int, default=-1, help="... at the start of this epoch")
    p.add_argument("--init-seed", type=int, default=42)
    p.add_argument("--raise-rank", type=int, default=-1, help="this rank raises an exception ...")
    p.add_argument("--raise-epoch", type=int, default=-1, help="... at the start of this epoch")
    args = p.parse_args(argv)

    ctxs = [mx.cpu(i) for i in range(args.devices)]
    loader = toy.toy_loader(batch_size=BATCH, n=12)
    sched = build_lr_scheduler(0.05, args.epochs, loader.num_batches(0), "cosine", warmup_epochs=1)
    net = toy.make_net(ctxs, init_seed=args.init_seed, width=16)  # BatchNorm: running stats take no gradient
    net(mx.nd.zeros((1, 3, toy.IMG, toy.IMG), ctx=ctxs[0]))  # inference-mode forward, as the scripts
    mx.nd.waitall()
    trainer = build_trainer(net, "sgd", {"momentum": 0.9, "wd": 1e-3, "lr_scheduler": sched}, kvstore=args.kvstore)
    rank, num_workers = dist_info(trainer)

    def epoch_options(epoch: int) -> dict:
        if rank == args.raise_rank and epoch == args.raise_epoch:
            raise RuntimeError(f"worker {rank} fails at epoch {epoch} (test)")
        if rank == args.die_rank and epoch == args.die_epoch:
            # die after rank 0 saved the previous epoch, so that the test knows the last checkpoint
            saved = os.path.join(args.out_dir, "run", f"epoch{epoch - 1:04d}.manifest.json")
            for _ in range(600):
                if os.path.exists(saved):
                    break
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGKILL)
        return {}

    fit(net, toy.ToyTask(), loader, trainer, ctxs, args.epochs, os.path.join(args.out_dir, "run"), save_interval=1,
        progress=False, tensorboard=False, resume=args.resume, epoch_options=epoch_options)
    extra = {"num_workers": num_workers, "num_update": trainer._optimizer.num_update}
    print(f"worker {rank}: kvstore released: {release_kvstore(trainer)}", flush=True)
    if num_workers > 1:
        np.savez(os.path.join(args.out_dir, f"weights_rank{rank}.npz"), **extra, **toy.weights(net))
    else:
        for d, ctx in enumerate(ctxs):
            w = {k: v.data(ctx).asnumpy() for k, v in net._collect_params_with_prefix().items()}
            np.savez(os.path.join(args.out_dir, f"weights_dev{d}.npz"), **extra, **w)


if __name__ == "__main__":
    from gluon_bof.recipes.cli import run_script  # noqa: E402 (the training scripts' exit path)
    sys.exit(run_script(lambda: run(sys.argv[1:]), "dist_worker.py"))
