"""Atomic checkpoints: completeness, exact optimizer state, broken/mismatched files fail loudly."""
import json
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

import engine_toy as toy
from gluon_bof.engine import (CheckpointError, build_trainer, find_latest, load_checkpoint, resolve_resume,
                              save_checkpoint, update_count, verify_checkpoint)
from gluon_bof.lr_scheduler import build_lr_scheduler

CTX = [mx.cpu()]


def _trainer(net, no_wd=False):
    sched = build_lr_scheduler(0.1, 4, 5, "cosine", warmup_epochs=1)
    return build_trainer(net, "sgd", {"momentum": 0.9, "wd": 5e-4, "lr_scheduler": sched}, no_wd=no_wd)


def _steps(net, trainer, n, seed=0):
    rs = np.random.RandomState(seed)
    task = toy.ToyTask()
    for _ in range(n):
        batch = (rs.randn(4, 3, toy.IMG, toy.IMG).astype(np.float32), rs.rand(4, 4).astype(np.float32),
                 np.sign(rs.randn(4, 2)).astype(np.float32))
        (part,) = task.split(batch, CTX)
        with autograd.record():
            loss = mx.nd.add_n(*task.losses(net, part))
        loss.backward()
        trainer.step(4)


def _saved(tmp_path, steps=3, tag="epoch0000"):
    net = toy.make_net(CTX)
    trainer = _trainer(net)
    _steps(net, trainer, steps)
    path = save_checkpoint(str(tmp_path), tag, net, trainer, {"epoch": 1, "batch": 0, "global_step": steps})
    return net, trainer, path


def test_checkpoint_files_and_manifest(tmp_path):
    net, _, path = _saved(tmp_path)
    manifest = json.loads(open(path).read())
    assert manifest["files"]["params"]["file"] == "epoch0000.params"
    assert manifest["files"]["states"]["file"] == "epoch0000.states"
    assert len(manifest["files"]["params"]["sha256"]) == 64
    assert manifest["meta"]["param_shapes"]["body.0.weight"] == [4, 3, 3, 3]
    # the weights file alone is a plain save_parameters file (GluonCV's load_parameters reads it)
    other = toy.ToyNet()
    other.load_parameters(str(tmp_path / "epoch0000.params"), ctx=CTX)
    np.testing.assert_array_equal(other.body[0].weight.data().asnumpy(), net.body[0].weight.data().asnumpy())
    assert sorted(os.listdir(tmp_path)) == ["epoch0000.manifest.json", "epoch0000.params", "epoch0000.states"]


def test_load_restores_momentum_update_count_and_lr(tmp_path):
    net, trainer, path = _saved(tmp_path, steps=3)
    fresh = toy.make_net(CTX, init_seed=99)
    fresh_trainer = _trainer(fresh)
    meta = load_checkpoint(path, fresh, fresh_trainer, CTX)
    assert meta["global_step"] == 3 and update_count(fresh_trainer) == 3
    assert fresh_trainer.learning_rate == pytest.approx(trainer.learning_rate)
    # continuing both gives identical weights only if momentum and the LR position were restored
    _steps(net, trainer, 2, seed=5)
    _steps(fresh, fresh_trainer, 2, seed=5)
    assert update_count(fresh_trainer) == 5
    for k, v in toy.weights(net).items():
        np.testing.assert_array_equal(toy.weights(fresh)[k], v, err_msg=k)


def test_failed_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    net, trainer, path = _saved(tmp_path)
    before = {f: open(tmp_path / f, "rb").read() for f in os.listdir(tmp_path)}

    def broken_save(self, filename, *a, **k):
        with open(filename, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")
    monkeypatch.setattr(type(net), "save_parameters", broken_save)
    with pytest.raises(CheckpointError, match=r"could not write checkpoint .*epoch0001 \(disk full\); check free "
                                              r"space and write permission") as info:
        save_checkpoint(str(tmp_path), "epoch0001", net, trainer, {"epoch": 2, "global_step": 3})
    assert isinstance(info.value.__cause__, OSError)
    # no partial or temporary file, the old checkpoint untouched and still the latest
    assert {f: open(tmp_path / f, "rb").read() for f in os.listdir(tmp_path)} == before
    assert find_latest(str(tmp_path)) == path


def test_truncated_params_gives_clear_error(tmp_path):
    _, _, path = _saved(tmp_path)
    params = tmp_path / "epoch0000.params"
    params.write_bytes(params.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"params file .*epoch0000.params has 100 bytes"):
        load_checkpoint(path, toy.make_net(CTX), None, CTX)


def test_corrupted_states_fails_checksum(tmp_path):
    _, _, path = _saved(tmp_path)
    states = tmp_path / "epoch0000.states"
    data = bytearray(states.read_bytes())
    data[len(data) // 2] ^= 0xFF
    states.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="states file .* SHA-256"):
        verify_checkpoint(path)


@pytest.mark.parametrize("content", [b"", b'{"format": "gluon_bof.checkpoint", "vers'])
def test_zero_byte_or_truncated_manifest(tmp_path, content):
    _, _, path = _saved(tmp_path)
    open(path, "wb").write(content)
    with pytest.raises(CheckpointError, match="unreadable or truncated"):
        load_checkpoint(path, toy.make_net(CTX), None, CTX)


def test_missing_manifest_means_incomplete(tmp_path):
    _, _, path = _saved(tmp_path)
    os.remove(path)
    with pytest.raises(CheckpointError, match="incomplete"):
        resolve_resume(str(tmp_path / "epoch0000.params"), str(tmp_path))
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        resolve_resume(str(tmp_path / "nothing_here"), str(tmp_path))
    assert resolve_resume("auto", str(tmp_path)) is None  # nothing complete: fresh start (logged)
    assert resolve_resume(None, str(tmp_path)) is None


def test_auto_falls_back_to_previous_valid_and_errors_when_all_broken(tmp_path):
    net, trainer, first = _saved(tmp_path)
    _steps(net, trainer, 1)
    second = save_checkpoint(str(tmp_path), "epoch0001", net, trainer, {"epoch": 2, "global_step": 4})
    assert find_latest(str(tmp_path)) == second
    (tmp_path / "epoch0001.params").write_bytes(b"")
    assert find_latest(str(tmp_path)) == first
    (tmp_path / "epoch0000.states").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="all are broken"):
        resolve_resume("auto", str(tmp_path))


def test_wrong_architecture_names_parameters_and_shapes(tmp_path):
    _, _, path = _saved(tmp_path)
    wider = toy.make_net(CTX, width=5)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, wider, None, CTX)
    msg = str(err.value)
    assert "different architecture" in msg and "body.0.weight checkpoint (4, 3, 3, 3) vs network (5, 3, 3, 3)" in msg
    no_norm = toy.make_net(CTX, norm_layer=None)
    with pytest.raises(CheckpointError, match=r"in checkpoint only: body.1.beta"):
        load_checkpoint(path, no_norm, None, CTX)


def test_crash_between_files_leaves_tag_incomplete_not_corrupt(tmp_path, monkeypatch):
    net, trainer, first = _saved(tmp_path)
    best = save_checkpoint(str(tmp_path), "best", net, trainer, {"epoch": 1, "global_step": 3})

    def crash(self, fname):
        raise KeyboardInterrupt("killed while writing states")
    monkeypatch.setattr(type(trainer), "save_states", crash)
    for tag in ("epoch0001", "best"):  # a new tag, and overwriting an existing one
        with pytest.raises(KeyboardInterrupt):
            save_checkpoint(str(tmp_path), tag, net, trainer, {"epoch": 2, "global_step": 4})
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    assert not os.path.exists(tmp_path / "epoch0001.manifest.json")
    assert not os.path.exists(best)  # the old best manifest went first: never a mix of old and new files
    with pytest.raises(CheckpointError, match="incomplete"):
        resolve_resume(str(tmp_path / "best.params"), str(tmp_path))
    assert find_latest(str(tmp_path)) == first
