"""dist_sync on loopback with the toy model: equality with one process, a killed worker, resume.

Every process started here carries an environment marker; after each test no process with it may be
alive (leftovers are killed and the test fails).
"""
import io
import os
import sys
import time
import uuid

import numpy as np
import pytest
from process_marks import reap_marked

from gluon_bof.engine.distributed import dmlc_env, launch, plan_processes

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "dist_worker.py")
TRAINABLE = ("body.0.weight", "body.1.gamma", "body.1.beta", "body.3.weight", "body.3.bias")


@pytest.fixture
def job_env():
    """Environment for the jobs of one test, with a marker that finds any process left behind."""
    mark = f"GLUON_BOF_TEST_MARK={uuid.uuid4().hex}"
    env = dict(os.environ, OMP_NUM_THREADS="1", GLUON_BOF_TEST_MARK=mark.split("=", 1)[1])
    yield env
    left = reap_marked(mark)
    assert not left, f"processes left behind: {left}"


def _run(args: list, env: dict, timeout: float = 120.0):
    out, err = io.StringIO(), io.StringIO()
    job = launch([sys.executable, WORKER] + args, 2, 1, env=env, timeout=timeout, stop_timeout=5.0, out=out, err=err)
    tic = time.time()
    code = job.run()
    return code, time.time() - tic, out.getvalue(), err.getvalue()


def test_dmlc_env_names_loopback_and_counts():
    env = dmlc_env("worker", 9123, num_workers=2, num_servers=1, base={})
    assert env["DMLC_ROLE"] == "worker" and env["DMLC_PS_ROOT_URI"] == "127.0.0.1"
    assert env["DMLC_PS_ROOT_PORT"] == "9123" and env["DMLC_NUM_WORKER"] == "2" and env["DMLC_NUM_SERVER"] == "1"
    with pytest.raises(ValueError, match="role"):
        dmlc_env("boss", 1, 1)


def test_plan_puts_scheduler_on_first_host_and_spreads_the_rest():
    specs = plan_processes(3, 2, [("a", None), ("u@b", 2222)])
    assert [(s.role, s.slot, s.host) for s in specs] == [
        ("scheduler", 0, "a"), ("server", 0, "a"), ("server", 1, "u@b"),
        ("worker", 0, "a"), ("worker", 1, "u@b"), ("worker", 2, "a")]
    assert specs[2].node_host == "b" and specs[2].ssh_port == 2222
    with pytest.raises(ValueError, match="at least 1 worker"):
        plan_processes(0, 1)


def test_dist_sync_two_workers_equal_one_process_two_devices(tmp_path, job_env):
    # The toy has 16-channel convolutions and BatchNorm, and gets an inference-mode forward before the
    # trainer is built: without the plain-layout broadcast the server aborted ('init 0 first').
    code, _, out, err = _run([str(tmp_path)], job_env)
    assert code == 0, err + out[-3000:]
    single = tmp_path / "single"
    single.mkdir()
    import subprocess
    subprocess.run([sys.executable, WORKER, str(single), "--kvstore", "local", "--devices", "2"], check=True,
                   env=job_env, timeout=240)
    w0, w1 = (np.load(tmp_path / f"weights_rank{r}.npz") for r in (0, 1))
    d0 = np.load(single / "weights_dev0.npz")
    assert int(w0["num_workers"]) == 2 and int(d0["num_workers"]) == 1
    # 2 epochs x 3 global batches: the LR schedule counted global steps on both workers
    assert int(w0["num_update"]) == int(w1["num_update"]) == int(d0["num_update"]) == 6
    for k in TRAINABLE:
        np.testing.assert_array_equal(w0[k], w1[k], err_msg=k)
        np.testing.assert_allclose(w0[k], d0[k], rtol=1e-5, atol=1e-6, err_msg=k)
    # BN running statistics take no gradient: rank 0 keeps those of its half of every batch, as device 0
    for k in ("body.1.running_mean", "body.1.running_var"):
        np.testing.assert_allclose(w0[k], d0[k], rtol=1e-5, atol=1e-6, err_msg=k)
        assert np.abs(w0[k] - w1[k]).max() > 1e-4, k  # ... and rank 1 those of the other half
    import mxnet as mx
    sys.path.insert(0, HERE)
    import engine_toy as toy
    init = toy.weights(toy.make_net([mx.cpu()], width=16))
    assert min(np.abs(init[k] - d0[k]).max() for k in TRAINABLE) > 1e-4  # training changed every weight
    # rank 0 alone wrote checkpoints and logs
    assert (tmp_path / "run" / "epoch0001.manifest.json").exists()
    assert "worker0@127.0.0.1" in out and "worker1@127.0.0.1" in out
    # each worker freed its kvstore when training ended (not whenever the cycle collector ran)
    assert "worker 0: kvstore released: True" in out and "worker 1: kvstore released: True" in out


def test_killed_worker_ends_job_and_resume_reaches_the_uninterrupted_weights(tmp_path, job_env):
    full, cut = tmp_path / "full", tmp_path / "cut"
    full.mkdir()
    cut.mkdir()
    code, _, out, err = _run([str(full), "--epochs", "3"], job_env)
    assert code == 0, err + out[-3000:]

    # rank 1 dies (SIGKILL) when epoch 2 starts; rank 0 has saved epoch 1 and blocks in the kvstore
    code, seconds, out, err = _run([str(cut), "--epochs", "3", "--die-rank", "1", "--die-epoch", "2"], job_env)
    assert code != 0 and seconds < 60
    assert "worker rank 1 (launch slot" in err and "exit code 137 (killed by SIGKILL)" in err, err
    assert not (cut / "weights_rank0.npz").exists()
    assert (cut / "run" / "epoch0001.manifest.json").exists() and not (cut / "run" / "epoch0002.manifest.json").exists()

    # another initialization seed: only a real resume from epoch 1's checkpoint can end at the same weights
    code, _, out, err = _run([str(cut), "--epochs", "3", "--resume", "auto", "--init-seed", "7"], job_env)
    assert code == 0, err + out[-3000:]
    a, b = np.load(full / "weights_rank0.npz"), np.load(cut / "weights_rank0.npz")
    assert int(a["num_update"]) == int(b["num_update"]) == 9
    for k in TRAINABLE + ("body.1.running_mean", "body.1.running_var"):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_worker_that_raises_ends_the_job_with_its_traceback(tmp_path, job_env):
    # rank 1 raises when epoch 1 starts; rank 0 waits for its gradients. A normal interpreter exit of
    # rank 1 would block in the kvstore's exit barrier and the job would hang until --timeout.
    code, seconds, out, err = _run([str(tmp_path), "--epochs", "3", "--raise-rank", "1", "--raise-epoch", "1"],
                                   job_env, timeout=100.0)
    assert code == 1 and seconds < 60, (code, seconds, err)
    assert "worker rank 1 (launch slot" in err and "exited with exit code 1" in err, err
    assert "[worker1@127.0.0.1] RuntimeError: worker 1 fails at epoch 1 (test)" in out
    assert not (tmp_path / "weights_rank0.npz").exists()
