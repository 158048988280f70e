"""Contexts, batch splitting, norm-layer choice, and SyncBN on 2 CPU devices == BN on one."""
import threading
import time

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

import engine_toy as toy
from gluon_bof.engine import build_trainer, norm_layer_for, parse_contexts, run_per_device, split_batch
from gluon_bof.engine.context import DevicesBlockedError


@pytest.mark.parametrize("spec, expected", [
    ("0,1", [mx.gpu(0), mx.gpu(1)]),
    ("cpu:0,cpu:1", [mx.cpu(0), mx.cpu(1)]),
    (" gpu:2 ", [mx.gpu(2)]),
    ("cpu", [mx.cpu(0)]),
    ("", [mx.cpu()]),
    (None, [mx.cpu()]),
])
def test_parse_contexts(spec, expected):
    assert parse_contexts(spec) == expected


@pytest.mark.parametrize("spec, words", [
    ("0,,1", "empty entry"), ("tpu:0", "unknown device"), ("cpu:x", "not a non-negative integer"),
    ("cpu:0,cpu:0", "appears twice"),
])
def test_parse_contexts_rejects(spec, words):
    with pytest.raises(ValueError, match=words):
        parse_contexts(spec)


def test_split_batch_slices_in_order_onto_each_context():
    ctxs = [mx.cpu(0), mx.cpu(1)]
    x = np.arange(4 * 3, dtype=np.float32).reshape(4, 3)
    y = np.arange(4, dtype=np.int32)
    parts = split_batch((x, y), ctxs)
    assert len(parts) == 2
    for i, (px, py) in enumerate(parts):
        assert px.context == ctxs[i] and py.context == ctxs[i]
        np.testing.assert_array_equal(px.asnumpy(), x[2 * i:2 * i + 2])
        assert py.dtype == np.int32


def test_split_batch_errors_name_the_rule():
    with pytest.raises(ValueError, match="not divisible by the 2 devices"):
        split_batch((np.zeros((3, 2)),), [mx.cpu(0), mx.cpu(1)])
    with pytest.raises(ValueError, match="same leading batch size"):
        split_batch((np.zeros((4, 2)), np.zeros((2, 2))), [mx.cpu(0)])


def test_norm_layer_for():
    assert norm_layer_for(1) == (gluon.nn.BatchNorm, {})
    assert norm_layer_for(2, syncbn=False) == (gluon.nn.BatchNorm, {})
    assert norm_layer_for(2) == (gluon.contrib.nn.SyncBatchNorm, {"num_devices": 2})
    with pytest.raises(ValueError):
        norm_layer_for(0)


def test_run_per_device_reraises_worker_error():
    def fn(i):
        if i == 1:
            raise KeyError("device 1 failed")
        return i
    assert run_per_device(lambda i: i * 10, 3) == [0, 10, 20]
    with pytest.raises(KeyError, match="device 1 failed") as err:
        run_per_device(fn, 2)
    assert "raised on device 1 of 2" in " ".join(err.value.__notes__)


def test_run_per_device_hook_runs_in_failing_thread_and_blocked_threads_are_abandoned():
    release = threading.Event()
    seen = []

    def fn(i):
        if i == 0:
            raise ValueError("bad slice")
        release.wait(30)  # stands for a device blocked at a SyncBN barrier
        return i

    def hook(i, exc):
        seen.append((i, str(exc), threading.current_thread().name))

    t0 = time.monotonic()
    try:
        with pytest.raises(DevicesBlockedError, match=r"device 0 failed \(ValueError: bad slice\) and devices \[1\]"):
            run_per_device(fn, 2, on_error=hook, abandon_after=0.3)
    finally:
        release.set()
    assert time.monotonic() - t0 < 10
    assert seen == [(0, "bad slice", "gluon_bof-device-0")]
    # the hook releasing the blocked device turns it into the plain error
    release.clear()
    with pytest.raises(ValueError, match="bad slice"):
        run_per_device(fn, 2, on_error=lambda i, exc: release.set(), abandon_after=30)


def _one_step(ctxs, norm_layer, norm_kwargs, x, box, score):
    net = toy.make_net(ctxs, norm_layer, norm_kwargs)
    trainer = build_trainer(net, "sgd", {"learning_rate": 0.5, "momentum": 0.9, "wd": 1e-3}, kvstore="device")
    task = toy.ToyTask()
    parts = task.split((x, box, score), ctxs)

    def work(i):
        with autograd.record():
            loss = mx.nd.add_n(*task.losses(net, parts[i]))
        loss.backward()
    run_per_device(work, len(ctxs))
    trainer.step(x.shape[0])
    return toy.weights(net)


def test_syncbn_two_cpu_contexts_equals_plain_bn_on_whole_batch():
    rs = np.random.RandomState(3)
    x = rs.randn(8, 3, toy.IMG, toy.IMG).astype(np.float32) * 2 + 0.5
    box = rs.rand(8, 4).astype(np.float32)
    score = np.sign(rs.randn(8, 2)).astype(np.float32)
    layer, kwargs = norm_layer_for(2)
    sync = _one_step([mx.cpu(0), mx.cpu(1)], layer, kwargs, x, box, score)
    plain = _one_step([mx.cpu(0)], gluon.nn.BatchNorm, {}, x, box, score)
    init = toy.weights(toy.make_net([mx.cpu(0)]))
    assert sorted(sync) == sorted(plain)
    for k in plain:
        np.testing.assert_allclose(sync[k], plain[k], rtol=1e-5, atol=1e-5, err_msg=k)
    # the step moved every trainable weight and the running statistics
    for k in plain:
        assert np.abs(plain[k] - init[k]).max() > 1e-4, k
    # without SyncBN, per-device statistics give a different step (the test can tell them apart)
    unsynced = _one_step([mx.cpu(0), mx.cpu(1)], gluon.nn.BatchNorm, {}, x, box, score)
    assert max(np.abs(unsynced[k] - plain[k]).max() for k in plain if "running" not in k) > 1e-4
