"""Training that survives interruption: a signal or a kill at any batch, then ``--resume auto``, ends
bitwise equal to the uninterrupted run, for both detectors, with and without loader workers."""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

import train_faster_rcnn
import train_yolo3
from gluon_bof.engine import CheckpointError, TrainingInterrupted

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
YOLO = ["--network", "tiny", "--dataset", "shapes", "--shapes-train-size", "24", "--shapes-val-size", "4",
        "--shapes-image-size", "96:128", "--batch-size", "4", "--data-shape", "96", "--random-shapes", "64:96",
        "--random-shape-interval", "2", "--epochs", "3", "--lr", "0.01", "--lr-mode", "cosine", "--warmup-epochs",
        "1", "--mixup", "--no-mixup-epochs", "1", "--label-smooth", "--syncbn", "--no-progress", "--picture", "0",
        "--val-interval", "2", "--save-interval", "1"]
FRCNN = ["--network", "mobilenet0.25", "--dataset", "shapes", "--shapes-train-size", "6", "--shapes-val-size", "2",
         "--shapes-image-size", "96:128", "--short", "96", "--max-size", "128", "--epochs", "3", "--lr", "0.01",
         "--lr-mode", "cosine", "--lr-warmup", "3", "--label-smooth", "0.1", "--mixup", "--no-mixup-epochs", "1",
         "--no-progress", "--picture", "0", "--val-interval", "2"]
DETECTORS = {"yolo3": (train_yolo3, YOLO, "gluon_bof.recipes.yolo3.task.YOLO3TrainTask"),
             "faster_rcnn": (train_faster_rcnn, FRCNN, "gluon_bof.recipes.faster_rcnn.task.FasterRCNNTrainTask")}


def _params(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(path).items()}


def _assert_bitwise_equal(a_path, b_path):
    a, b = _params(a_path), _params(b_path)
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _signal_at(monkeypatch, dotted, call_index, signum=signal.SIGTERM):
    """Make the ``call_index``-th loss computation send ``signum`` to this process (a real signal)."""
    module_name, _, cls_name = dotted.rpartition(".")
    cls = getattr(__import__(module_name, fromlist=[cls_name]), cls_name)
    original = cls.losses
    calls = [0]

    def losses(self, net, device_batch):
        calls[0] += 1
        if calls[0] == call_index:
            os.kill(os.getpid(), signum)
        return original(self, net, device_batch)

    monkeypatch.setattr(cls, "losses", losses)


@pytest.mark.parametrize("detector", sorted(DETECTORS))
@pytest.mark.parametrize("workers", ["0", "2"])
def test_sigterm_in_epoch_2_then_resume_is_bitwise_equal(tmp_path, monkeypatch, detector, workers):
    script, flags, task = DETECTORS[detector]
    flags = flags + ["-j", workers]
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    full_map = script.main(flags + ["--save-dir", full])
    per_epoch = json.load(open(os.path.join(full, "metrics.json")))[0]["global_step"]
    stop_at = 2 * per_epoch + int(np.random.default_rng(int(workers)).integers(1, per_epoch))  # inside epoch 2
    with monkeypatch.context() as patch:
        _signal_at(patch, task, stop_at)
        with pytest.raises(TrainingInterrupted) as info:
            script.main(flags + ["--save-dir", part])
    assert info.value.exit_code == 143
    assert "SIGTERM: stopped at epoch 2, batch %d" % (stop_at - 2 * per_epoch) in str(info.value)
    assert "--resume auto" in str(info.value)
    meta = json.load(open(os.path.join(part, "last.manifest.json")))["meta"]
    assert (meta["epoch"], meta["batch"]) == (2, stop_at - 2 * per_epoch)
    resumed_map = script.main(flags + ["--save-dir", part, "--resume", "auto"])
    _assert_bitwise_equal(os.path.join(full, "epoch0002.params"), os.path.join(part, "epoch0002.params"))
    assert resumed_map == full_map
    rows = json.load(open(os.path.join(part, "metrics.json")))
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    full_rows = json.load(open(os.path.join(full, "metrics.json")))
    assert rows[2]["loss_" + ("obj" if detector == "yolo3" else "rpn_cls")] == pytest.approx(
        full_rows[2]["loss_" + ("obj" if detector == "yolo3" else "rpn_cls")], rel=1e-9)


def _run(args, **kwargs):
    return subprocess.Popen([sys.executable] + args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), **kwargs)


def test_sigkill_after_a_time_based_checkpoint_then_resume(tmp_path):
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    flags = YOLO + ["-j", "0", "--checkpoint-minutes", "0.0001"]
    assert train_yolo3.main(flags + ["--save-dir", full]) >= 0
    proc = _run(["train_yolo3.py"] + flags + ["--save-dir", part])
    try:
        deadline = time.time() + 240
        while time.time() < deadline:  # wait for a rolling checkpoint inside epoch 1
            manifest = os.path.join(part, "last.manifest.json")
            if os.path.exists(manifest):
                try:
                    meta = json.load(open(manifest))["meta"]
                except (OSError, ValueError):  # rewritten or removed while being read
                    meta = {}
                if meta.get("epoch") == 1:
                    break
            time.sleep(0.05)
        proc.kill()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    train_yolo3.main(flags + ["--save-dir", part, "--resume", "auto"])
    _assert_bitwise_equal(os.path.join(full, "epoch0002.params"), os.path.join(part, "epoch0002.params"))


def test_sigterm_to_the_script_exits_143_with_the_resume_command(tmp_path):
    save_dir = str(tmp_path / "run")
    flags = YOLO + ["-j", "2", "--epochs", "30", "--save-dir", save_dir]
    proc = _run(["train_yolo3.py"] + flags)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not glob.glob(os.path.join(save_dir, "epoch0000.manifest.json")):
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, out[-3000:]
    assert "SIGTERM: finishing the current batch" in out and "Traceback" not in out
    command = [line for line in out.splitlines() if line.strip().startswith("python train_yolo3.py")]
    assert command and command[-1].strip().endswith("--save-dir %s --resume auto" % save_dir)
    assert os.path.exists(os.path.join(save_dir, "last.manifest.json")) or \
        len(glob.glob(os.path.join(save_dir, "epoch*.manifest.json"))) >= 2


def test_an_unwritable_checkpoint_stops_training_and_keeps_the_logs(tmp_path, monkeypatch):
    from gluon_bof.engine import checkpoint
    save_dir = str(tmp_path / "run")
    real = checkpoint.atomic_write
    writes = [0]

    def failing_after_first_checkpoint(path, write):
        if path.endswith(".params"):
            writes[0] += 1
            if writes[0] > 1:
                raise OSError(28, "No space left on device")
        return real(path, write)

    monkeypatch.setattr(checkpoint, "atomic_write", failing_after_first_checkpoint)
    with pytest.raises(CheckpointError, match=r"could not write checkpoint .*epoch0001 \(No space left on device\)"):
        train_yolo3.main(YOLO + ["-j", "0", "--val-interval", "5", "--save-dir", save_dir])
    log = open(os.path.join(save_dir, "train.log")).read()
    assert "No space left on device" in log and "training stopped" in log
    rows = json.load(open(os.path.join(save_dir, "metrics.json")))
    assert [r["epoch"] for r in rows] == [0, 1]  # the failed epoch's row is logged too
    assert os.path.exists(os.path.join(save_dir, "epoch0000.manifest.json"))


def test_a_failing_validation_keeps_the_trained_epoch_and_continues(tmp_path, monkeypatch, caplog):
    from gluon_bof.recipes import base

    def unreadable(*args, **kwargs):
        raise OSError("val image 7 is unreadable")

    monkeypatch.setattr(base, "evaluate", unreadable)
    save_dir = str(tmp_path / "run")
    with pytest.raises(OSError, match="val image 7"):  # the final evaluation reports it at the end
        train_yolo3.main(YOLO + ["-j", "0", "--val-interval", "1", "--save-dir", save_dir])
    for epoch in range(3):  # every epoch trained and saved
        assert os.path.exists(os.path.join(save_dir, "epoch%04d.manifest.json" % epoch))
    rows = json.load(open(os.path.join(save_dir, "metrics.json")))
    assert [r["validation_error"] for r in rows] == ["OSError: val image 7 is unreadable"] * 3
    assert "validation failed (OSError: val image 7 is unreadable)" in open(os.path.join(save_dir, "train.log")).read()
