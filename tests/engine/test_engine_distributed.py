"""dist_sync on loopback: scheduler + server + 2 workers == one process on the whole batch."""
import os
import subprocess
import sys

import numpy as np
import pytest

from gluon_bof.engine.distributed import dmlc_env, launch_local, main

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "dist_worker.py")


def test_dmlc_env_names_loopback_and_counts():
    env = dmlc_env("worker", 9123, num_workers=2, num_servers=1, base={})
    assert env["DMLC_ROLE"] == "worker" and env["DMLC_PS_ROOT_URI"] == "127.0.0.1"
    assert env["DMLC_PS_ROOT_PORT"] == "9123" and env["DMLC_NUM_WORKER"] == "2" and env["DMLC_NUM_SERVER"] == "1"
    with pytest.raises(ValueError, match="role"):
        dmlc_env("boss", 1, 1)


def test_launcher_requires_a_command():
    with pytest.raises(SystemExit):
        main(["--workers", "2"])


def test_dist_sync_two_workers_equal_single_process(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    codes = launch_local([sys.executable, WORKER, str(tmp_path)], num_workers=2, num_servers=1, timeout=240,
                         env=env)
    assert codes == [0, 0]
    single = tmp_path / "single"
    single.mkdir()
    subprocess.run([sys.executable, WORKER, str(single), "local"], check=True, env=env, timeout=240)
    w0, w1 = (np.load(tmp_path / f"weights_rank{r}.npz") for r in (0, 1))
    ref = np.load(single / "weights_rank0.npz")
    assert int(w0["num_workers"]) == 2 and int(ref["num_workers"]) == 1
    # 2 epochs x 3 global batches: the LR schedule counted global steps on both workers
    assert int(w0["num_update"]) == int(w1["num_update"]) == int(ref["num_update"]) == 6
    names = [k for k in ref.files if k not in ("num_workers", "num_update")]
    assert names
    for k in names:
        np.testing.assert_array_equal(w0[k], w1[k], err_msg=k)
        np.testing.assert_allclose(w0[k], ref[k], rtol=1e-5, atol=1e-6, err_msg=k)
    # the run changed the weights (the comparison is not vacuous)
    import mxnet as mx
    import engine_toy as toy
    init = toy.weights(toy.make_net([mx.cpu()], norm_layer=None))
    assert sorted(init) == sorted(names)
    assert min(np.abs(init[k] - ref[k]).max() for k in names) > 1e-4
    # only rank 0 wrote checkpoints and logs
    assert (tmp_path / "run" / "epoch0001.manifest.json").exists()
