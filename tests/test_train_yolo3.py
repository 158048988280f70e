"""End-to-end smoke runs of the YOLOv3 scripts, as a user runs them (shortened demo of the README)."""
import json
import os

import numpy as np
import pytest

import eval_yolo3
import train_yolo3

TINY = ["--network", "tiny", "--dataset", "shapes", "--shapes-train-size", "16", "--shapes-val-size", "8",
        "--batch-size", "4", "-j", "0", "--data-shape", "128", "--random-shapes", "96:160",
        "--random-shape-interval", "2", "--no-progress", "--picture", "2", "--lr", "0.001"]
FREEBIES = ["--syncbn", "--mixup", "--no-mixup-epochs", "1", "--label-smooth", "--lr-mode", "cosine",
            "--warmup-epochs", "1", "--no-wd"]


def test_demo_with_every_freebie_trains_evaluates_and_draws(tmp_path):
    save_dir = str(tmp_path / "run")
    final_map = train_yolo3.main(TINY + FREEBIES + ["--tiny-backbone", "plain", "--epochs", "2",
                                                    "--save-dir", save_dir])
    assert 0.0 <= final_map <= 1.0
    for name in ("train.log", "metrics.csv", "metrics.json", "results_epoch0001.json", "detections.jpg",
                 "epoch0001.manifest.json", "epoch0001.params", "epoch0001.states"):
        assert os.path.isfile(os.path.join(save_dir, name)), name
    with open(os.path.join(save_dir, "results_epoch0001.json")) as f:
        results = json.load(f)
    assert results["protocol"] == "voc07" and results["iou_thresh"] == 0.5
    assert results["classes"] == ["circle", "rectangle", "triangle", "star", "cross", "ring"]
    with open(os.path.join(save_dir, "results_final.json")) as f:
        final = json.load(f)
    assert final["map"] == pytest.approx(final_map) and final["epoch"] == 1
    rows = json.load(open(os.path.join(save_dir, "metrics.json")))
    assert [r["epoch"] for r in rows] == [0, 1]
    # cosine ends at exactly 0 at the last update
    assert rows[-1]["lr"] == 0


def test_two_epochs_equal_one_plus_exact_resume(tmp_path):
    args = TINY + FREEBIES + ["--epochs", "2", "--picture", "0", "--val-interval", "5"]
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    train_yolo3.main(args + ["--save-dir", full, "--save-interval", "1"])
    train_yolo3.main(args + ["--save-dir", part, "--save-interval", "1", "--seed", "233"] + [])
    os.remove(os.path.join(part, "epoch0001.manifest.json"))  # as if killed during epoch 1
    train_yolo3.main(args + ["--save-dir", part, "--save-interval", "1", "--resume", "auto"])
    import mxnet as mx
    a = mx.nd.load(os.path.join(full, "epoch0001.params"))
    b = mx.nd.load(os.path.join(part, "epoch0001.params"))
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_allclose(a[key].asnumpy(), b[key].asnumpy(), rtol=1e-5, atol=1e-6, err_msg=key)


def test_two_cpu_contexts_with_syncbn(tmp_path):
    final_map = train_yolo3.main(TINY + FREEBIES + ["--epochs", "2", "--ctx", "cpu:0,cpu:1",
                                                    "--save-dir", str(tmp_path / "run")])
    assert 0.0 <= final_map <= 1.0


def test_eval_script_reads_the_trained_weights(tmp_path):
    save_dir = str(tmp_path / "run")
    train_yolo3.main(TINY + ["--tiny-backbone", "plain", "--epochs", "1", "--lr-mode", "cosine", "--save-dir",
                             save_dir, "--picture", "0"])
    out = str(tmp_path / "eval.json")
    args = ["--params", os.path.join(save_dir, "epoch0000.params"), "--network", "tiny", "--dataset", "shapes",
            "--shapes-val-size", "8", "--data-shape", "128", "-j", "0", "--results", out]
    value = eval_yolo3.main(args + ["--tiny-backbone", "plain"])
    with open(out) as f:
        assert json.load(f)["map"] == pytest.approx(value)
    with pytest.raises(SystemExit, match="epoch0000.params does not fit YOLOV3 with 6 classes"):
        eval_yolo3.main(args)                                  # the default MobileNet backbone


def test_start_epoch_is_refused_with_the_resume_hint(capsys):
    with pytest.raises(SystemExit):
        train_yolo3.parse_args(["--start-epoch", "5"])
    assert "--resume" in capsys.readouterr().err


def test_help_lists_every_gluoncv_flag(capsys):
    with pytest.raises(SystemExit):
        train_yolo3.parse_args(["--help"])
    text = capsys.readouterr().out
    for flag in ("--network", "--data-shape", "--batch-size", "--dataset", "--num-workers", "--gpus", "--epochs",
                 "--resume", "--start-epoch", "--lr", "--lr-mode", "--lr-decay", "--lr-decay-period",
                 "--lr-decay-epoch", "--warmup-lr", "--warmup-epochs", "--momentum", "--wd", "--log-interval",
                 "--save-prefix", "--save-interval", "--val-interval", "--seed", "--num-samples", "--syncbn",
                 "--no-random-shape", "--no-wd", "--mixup", "--no-mixup-epochs", "--label-smooth"):
        assert flag in text, flag
