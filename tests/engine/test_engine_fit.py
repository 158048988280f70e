"""The train loop: exact resume, NaN stop, --no-wd across resume, records, validation hook."""
import glob
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

import engine_toy as toy
from gluon_bof.engine import (CheckpointError, NonFiniteLossError, batch_seed, build_trainer, fit, norm_layer_for,
                              update_count)
from gluon_bof.lr_scheduler import build_lr_scheduler

EPOCHS = 2


def _setup(ctxs, num_workers=0, no_wd=False, syncbn=False, init_seed=42):
    loader = toy.toy_loader(batch_size=4, num_workers=num_workers, n=14)  # 14 % 4: rollover across epochs
    layer, kwargs = norm_layer_for(len(ctxs), syncbn)
    net = toy.make_net(ctxs, layer, kwargs, init_seed=init_seed)
    sched = build_lr_scheduler(0.05, EPOCHS, loader.num_batches(0), "cosine", warmup_epochs=1)
    trainer = build_trainer(net, "sgd", {"momentum": 0.9, "wd": 1e-3, "lr_scheduler": sched},
                            kvstore="device", no_wd=no_wd)
    return loader, net, trainer


def _mixup_late(epoch):
    return {"mixup": epoch >= 1}


@pytest.mark.parametrize("num_workers, ctxs, syncbn", [
    (0, [mx.cpu()], False),
    (2, [mx.cpu(0), mx.cpu(1)], True),
])
def test_two_epochs_equal_one_plus_resume(tmp_path, num_workers, ctxs, syncbn):
    loader, net, trainer = _setup(ctxs, num_workers, syncbn=syncbn)
    try:
        full = fit(net, toy.ToyTask(), loader, trainer, ctxs, EPOCHS, str(tmp_path / "full"), save_interval=1,
                   epoch_options=_mixup_late, progress=False, tensorboard=False)
    finally:
        loader.close()
    ref = toy.weights(net)

    loader, net, trainer = _setup(ctxs, num_workers, syncbn=syncbn)
    try:
        # save_interval=5 is never reached: the planned stop itself writes the checkpoint
        first = fit(net, toy.ToyTask(), loader, trainer, ctxs, EPOCHS, str(tmp_path / "split"), save_interval=5,
                    epoch_options=_mixup_late, stop_epoch=0, progress=False, tensorboard=False)
    finally:
        loader.close()
    assert first.next_epoch == 1 and first.global_step == loader.num_batches(0)
    # a new process would rebuild everything from scratch, with different initial weights even
    loader, net, trainer = _setup(ctxs, num_workers, syncbn=syncbn, init_seed=1)
    try:
        second = fit(net, toy.ToyTask(), loader, trainer, ctxs, EPOCHS, str(tmp_path / "split"), resume="auto",
                     save_interval=1, epoch_options=_mixup_late, progress=False, tensorboard=False)
    finally:
        loader.close()
    assert second.global_step == full.global_step == loader.num_batches(0) + loader.num_batches(1)
    assert update_count(trainer) == full.global_step
    # Bitwise equal in 77 repeated runs (also under load, OMP 1 and 2 threads): with 2 devices MXNet's
    # SyncBN sums a + b, which does not depend on the arrival order. The margin is float noise only.
    rtol, atol = 1e-6, 1e-7
    for k, v in ref.items():
        np.testing.assert_allclose(toy.weights(net)[k], v, rtol=rtol, atol=atol, err_msg=k)
    # per-epoch records of the resumed run equal the uninterrupted one (losses and LR)
    assert [r["epoch"] for r in second.rows] == [0, 1]
    for a, b in zip(second.rows, full.rows):
        for key in ("lr", "loss_box", "loss_score", "global_step"):
            assert a[key] == pytest.approx(b[key], rel=rtol), key


@pytest.mark.parametrize("draws_random", [True, False])
def test_mx_random_is_reseeded_per_batch_only_for_tasks_that_draw(tmp_path, monkeypatch, draws_random):
    seeds = []
    real_seed = mx.random.seed
    monkeypatch.setattr(mx.random, "seed", lambda value, *a, **k: (seeds.append(value), real_seed(value, *a, **k)))
    task = toy.ToyTask()
    task.draws_random = draws_random
    loader, net, trainer = _setup([mx.cpu()])
    try:
        fit(net, task, loader, trainer, [mx.cpu()], EPOCHS, str(tmp_path), seed=7, progress=False, tensorboard=False)
    finally:
        loader.close()
    every_batch = [batch_seed(7, e, b) for e in range(EPOCHS) for b in range(loader.num_batches(e))]
    assert len(every_batch) > 4
    assert seeds == (every_batch if draws_random else [])


class _FailingLoader:
    """The toy loader whose batch ``fail_at`` of epoch 0 cannot be produced (a dead data worker)."""

    def __init__(self, loader, fail_at):
        self.loader, self.fail_at = loader, fail_at

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def iter_epoch(self, epoch, start=0, options=None):
        for b, batch in enumerate(self.loader.iter_epoch(epoch, start, options), start=start):
            if epoch == 0 and b == self.fail_at:
                raise RuntimeError("data worker 0 died")
            yield batch


@pytest.mark.parametrize("fail_at", [0, 2])
def test_a_loader_error_comes_after_the_batch_in_flight_is_trained(tmp_path, fail_at):
    """The next batch is received while the engine computes the current one; its error must still
    come after the current batch's update, not before it and not lost."""
    loader, net, trainer = _setup([mx.cpu()])
    failing = _FailingLoader(loader, fail_at)
    try:
        with pytest.raises(RuntimeError, match="data worker 0 died"):
            fit(net, toy.ToyTask(), failing, trainer, [mx.cpu()], EPOCHS, str(tmp_path), progress=False,
                tensorboard=False)
    finally:
        loader.close()
    assert update_count(trainer) == fail_at


def test_nan_loss_stops_with_iteration_and_components_and_saves_nothing_after(tmp_path):
    ctxs = [mx.cpu()]
    loader, net, trainer = _setup(ctxs)
    per_epoch = loader.num_batches(0)
    task = toy.ToyTask(nan_at=per_epoch + 1)  # second batch of epoch 1 = update number per_epoch + 2
    with pytest.raises(NonFiniteLossError) as err:
        fit(net, task, loader, trainer, ctxs, EPOCHS, str(tmp_path), save_interval=1, progress=False,
            tensorboard=False)
    msg = str(err.value)
    assert f"iteration {per_epoch + 2}" in msg and "epoch 1, batch 1" in msg
    assert "box=" in msg and "score=nan" in msg
    assert update_count(trainer) == per_epoch + 1  # the bad update was not applied
    manifests = sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "*.manifest.json")))
    assert manifests == ["epoch0000.manifest.json"]
    assert "non-finite loss at iteration" in open(tmp_path / "train.log").read()


def test_no_wd_survives_resume(tmp_path):
    ctxs = [mx.cpu()]
    loader, net, trainer = _setup(ctxs, no_wd=True)
    decayed = {k for k, p in net._collect_params_with_prefix().items() if p.wd_mult and p.grad_req != "null"}
    assert decayed == {"body.0.weight", "body.3.weight"}
    fit(net, toy.ToyTask(), loader, trainer, ctxs, EPOCHS, str(tmp_path), stop_epoch=0, save_interval=1,
        progress=False, tensorboard=False, args={"no_wd": True})
    # resumed by a caller that forgot --no-wd: the checkpoint's multipliers win, with a warning
    loader, net, trainer = _setup(ctxs, no_wd=False)
    fit(net, toy.ToyTask(), loader, trainer, ctxs, EPOCHS, str(tmp_path), resume="auto", save_interval=1,
        progress=False, tensorboard=False, args={"no_wd": False})
    assert "no_wd: True -> False" in open(tmp_path / "train.log").read()
    params = net._collect_params_with_prefix()
    assert {k for k, p in params.items() if p.wd_mult and p.grad_req != "null"} == decayed
    # and the optimizer really uses them (param_dict is rebuilt by load_states)
    opt = trainer._optimizer
    by_name = {p.name: i for i, p in opt.param_dict.items()}
    assert opt._get_wd(by_name[params["body.1.gamma"].name]) == 0.0
    assert opt._get_wd(by_name[params["body.0.weight"].name]) == pytest.approx(1e-3)


def test_records_log_csv_json_tensorboard(tmp_path):
    ctxs = [mx.cpu()]
    loader, net, trainer = _setup(ctxs)
    fit(net, toy.ToyTask(), loader, trainer, ctxs, EPOCHS, str(tmp_path), save_interval=1, progress=True,
        tensorboard=True, seed=11, args={"lr": 0.05, "no_wd": False}, epoch_options=_mixup_late)
    meta = json.load(open(tmp_path / "epoch0000.manifest.json"))["meta"]
    assert meta["epoch"] == 1 and meta["batch"] == 0 and meta["global_step"] == loader.num_batches(0)
    assert meta["iters_per_epoch"] == loader.num_batches(0) and meta["seed"] == 11
    assert meta["loader"] == {"seed": 7, "batch_size": 4, "shape_interval": 10}
    assert meta["epoch_options"] == {"mixup": False} and meta["args"] == {"lr": 0.05, "no_wd": False}
    assert meta["multipliers"]["body.1.gamma"] == {"lr_mult": 1.0, "wd_mult": 1.0}
    assert {"mxnet", "numpy", "gluon_bof"} <= set(meta["versions"])
    log = open(tmp_path / "train.log").read()
    assert "[epoch 0]" in log and "[epoch 1]" in log and "loss_box=" in log
    rows = json.load(open(tmp_path / "metrics.json"))
    assert [r["epoch"] for r in rows] == [0, 1]
    assert rows[1]["global_step"] == loader.num_batches(0) + loader.num_batches(1)
    header = open(tmp_path / "metrics.csv").readline().strip().split(",")
    assert {"epoch", "lr", "images_per_sec", "loss_box", "loss_score"} <= set(header)
    assert glob.glob(str(tmp_path / "tb" / "events.out.tfevents.*"))


def test_validation_hook_results_best_and_log(tmp_path):
    ctxs = [mx.cpu()]
    loader, net, trainer = _setup(ctxs)
    maps = {0: 0.30, 1: 0.20, 2: float("nan"), 3: 0.50}

    def validate(net_, epoch):
        return ["aeroplane", "mAP"], [0.1, maps[epoch]], {"epoch": epoch, "map": maps[epoch]}
    sched = build_lr_scheduler(0.05, 4, loader.num_batches(0), "cosine")
    trainer = build_trainer(net, "sgd", {"momentum": 0.9, "lr_scheduler": sched})
    res = fit(net, toy.ToyTask(), loader, trainer, ctxs, 4, str(tmp_path), validate_fn=validate,
              val_interval=1, save_interval=2, keep_last=1, progress=False, tensorboard=False)
    assert res.best_map == 0.5
    assert open(tmp_path / "best_map.log").read() == "0000:\t0.3000\n0003:\t0.5000\n"
    assert json.load(open(tmp_path / "results_epoch0002.json"))["epoch"] == 2
    assert len(glob.glob(str(tmp_path / "results_epoch*.json"))) == 4
    best = json.load(open(tmp_path / "best.manifest.json"))["meta"]
    assert best["epoch"] == 4 and best["best_map"] == 0.5
    # keep_last=1: only the newest periodic checkpoint remains; best is never pruned
    assert sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "*.manifest.json"))) == \
        ["best.manifest.json", "epoch0003.manifest.json"]
    rows = json.load(open(tmp_path / "metrics.json"))
    assert rows[2]["mAP"] is None and rows[3]["mAP"] == 0.5  # NaN stays out of JSON and out of best


def test_val_interval_and_bad_arguments(tmp_path):
    ctxs = [mx.cpu()]
    loader, net, trainer = _setup(ctxs)
    seen = []
    fit(net, toy.ToyTask(), loader, trainer, ctxs, EPOCHS, str(tmp_path / "a"), val_interval=2, save_interval=0,
        validate_fn=lambda n, e: seen.append(e) or (["mAP"], [0.1], {}), progress=False, tensorboard=False)
    assert seen == [1]
    assert [os.path.basename(p) for p in glob.glob(str(tmp_path / "a" / "epoch*.manifest.json"))] == \
        ["epoch0001.manifest.json"]  # save_interval=0: only the final checkpoint
    with pytest.raises(TypeError, match="iter_epoch"):
        fit(net, toy.ToyTask(), [1, 2], trainer, ctxs, 1, str(tmp_path / "b"))
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        fit(net, toy.ToyTask(), loader, trainer, ctxs, 1, str(tmp_path / "b"), resume=str(tmp_path / "missing"))


WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "device_failure_worker.py")


def _run_failure_worker(tmp_path, mode):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, WORKER, str(tmp_path), mode], capture_output=True, text=True,
                         timeout=300, env=env)
    return out.returncode, out.stdout


def test_blocked_syncbn_devices_give_a_clear_error(tmp_path):
    # Device 1 fails before its SyncBN layers: device 0 waits at MXNet's barrier forever. Before the
    # fix the error surfaced but the process then hung at exit with no word of why.
    code, out = _run_failure_worker(tmp_path, "noreplay")
    assert "RAISED DevicesBlockedError: ValueError: device 1 is broken (raised on device 1 of 2" in out, out
    assert "still blocked in SyncBatchNorm" in out and "restart the process" in out, out
    assert not glob.glob(str(tmp_path / "*.manifest.json"))  # nothing saved after the failure


def test_trainer_aggregates_updates_with_the_same_numbers():
    from mxnet import autograd, gluon
    from gluon_bof.engine.optim import MAX_AGGREGATION
    weights = []
    for agg in (None, 4):
        mx.random.seed(0)
        net = gluon.nn.HybridSequential()
        for _ in range(70):                                   # 140 parameters: more than one group of 60
            net.add(gluon.nn.Dense(3, in_units=3))
        net.initialize(mx.init.Xavier())
        trainer = build_trainer(net, "sgd", {"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-3}, no_wd=True)
        if agg is None:
            assert trainer._optimizer.aggregate_num == MAX_AGGREGATION
        else:
            trainer._optimizer.aggregate_num = agg             # MXNet's default
        x = mx.nd.array(np.random.default_rng(0).normal(size=(4, 3)))
        for _ in range(3):
            with autograd.record():
                loss = (net(x) ** 2).sum()
            loss.backward()
            trainer.step(4)
        weights.append([p.data().asnumpy() for p in trainer._params])
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
