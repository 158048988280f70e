"""The flags and errors a user meets first: usage errors with exit code 2 naming the flag, the same
for every script; runs that succeed stay successful; mismatched checkpoints name what differs."""
import json
import logging
import os
import subprocess
import sys

import pytest

import eval_faster_rcnn
import eval_yolo3
import train_faster_rcnn
import train_yolo3

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_YOLO = ["--network", "tiny", "--dataset", "shapes", "--shapes-train-size", "8", "--shapes-val-size", "4",
             "--shapes-image-size", "96:128", "--batch-size", "4", "-j", "0", "--data-shape", "96",
             "--random-shapes", "64:96", "--no-progress", "--picture", "0"]
SCRIPTS = {"train_yolo3.py": train_yolo3, "train_faster_rcnn.py": train_faster_rcnn}


def usage_error(capsys, parse, argv):
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
@pytest.mark.parametrize("argv, words", [
    (["--batch-size", "0"], "--batch-size: must be a positive integer, got 0"),
    (["--lr", "-1"], "--lr: must be > 0, got -1.0"),
    (["--epochs", "0"], "--epochs: must be a positive integer, got 0"),
    (["-j", "-1"], "-j/--num-workers: must be >= 0, got -1"),
    (["--mixup-alpha", "0"], "--mixup-alpha: must be > 0, got 0.0"),
    (["--resume", "/nonexistent/epoch0003.params"], "--resume /nonexistent/epoch0003.params: no checkpoint at"),
    (["--mixup", "--epochs", "20", "--no-mixup-epochs", "20"], "leaves no mixup epoch in a run of --epochs 20"),
    (["--kvstore", "horovod"], "invalid choice: 'horovod'"),
    (["--shapes-image-size", "32:16"], "--shapes-image-size: expected MIN:MAX pixels"),
])
def test_bad_shared_flags_are_usage_errors_in_every_script(capsys, script, argv, words):
    line = usage_error(capsys, SCRIPTS[script].parse_args, argv)
    assert words in line


@pytest.mark.parametrize("parse", [train_yolo3.parse_args, train_faster_rcnn.parse_args, eval_yolo3.parse_args,
                                   eval_faster_rcnn.parse_args])
@pytest.mark.parametrize("flag", ["--ctx", "--gpus"])
def test_gpus_on_the_cpu_build_say_how_to_install_the_gpu_build(capsys, parse, flag):
    extra = ["--params", __file__] if parse in (eval_yolo3.parse_args, eval_faster_rcnn.parse_args) else []
    line = usage_error(capsys, parse, extra + [flag, "gpu:0" if flag == "--ctx" else "0"])
    assert "has no GPU support" in line and '".[gpu]"' in line and "mxnet-cu112" in line


@pytest.mark.parametrize("argv, words", [
    (["--data-shape", "100"], "--data-shape 100: must be a multiple of 32"),
    (["--random-shapes", "300:200"], "--random-shapes '300:200': MIN 300 is larger than MAX 200"),
    (["--random-shapes", "300:400"], "positive multiples of 32"),
    (["--lr-decay-epoch", "20,10"], "epochs must be non-negative and increasing"),
])
def test_yolo3_shape_and_schedule_flags(capsys, argv, words):
    assert words in usage_error(capsys, train_yolo3.parse_args, argv)


def test_eval_scripts_check_their_flags_too(capsys):
    assert "--data-shape 100" in usage_error(capsys, eval_yolo3.parse_args, ["--params", __file__, "--data-shape",
                                                                              "100"])
    assert "--params /no/such.params: no such file" in usage_error(capsys, eval_faster_rcnn.parse_args,
                                                                   ["--params", "/no/such.params"])
    assert "--short: must be a positive integer" in usage_error(
        capsys, eval_faster_rcnn.parse_args, ["--params", __file__, "--short", "0"])


def test_default_step_decays_past_the_end_are_dropped_and_logged(tmp_path, caplog):
    """GluonCV's default --lr-decay-epoch 160,180 with a 1-epoch run: trains, logs the dropped decays."""
    caplog.set_level(logging.INFO, logger="gluon_bof.recipes")
    final_map = train_yolo3.main(TINY_YOLO + ["--epochs", "1", "--save-dir", str(tmp_path / "run")])
    assert 0.0 <= final_map <= 1.0
    assert any("decay epochs [160, 180] are at or past the end of training (--epochs 1)" in r.getMessage()
               and "dropped" in r.getMessage() for r in caplog.records)


def test_a_failing_picture_is_a_warning_after_a_successful_run(tmp_path, monkeypatch, caplog):
    from gluon_bof.recipes import base

    def broken_draw(*args, **kwargs):
        raise RuntimeError("Can't parse 'pt1'")

    monkeypatch.setattr(base, "draw_detections", broken_draw)
    save_dir = str(tmp_path / "run")
    final_map = train_yolo3.main(TINY_YOLO + ["--epochs", "1", "--picture", "2", "--save-dir", save_dir])
    assert 0.0 <= final_map <= 1.0
    assert os.path.isfile(os.path.join(save_dir, "epoch0000.params"))
    assert os.path.isfile(os.path.join(save_dir, "results_final.json"))
    assert any("could not be drawn (RuntimeError: Can't parse 'pt1')" in r.getMessage() for r in caplog.records)


def test_untrained_model_picture_is_drawn(tmp_path):
    """A one-epoch model predicts huge, unclipped boxes: the picture is drawn all the same."""
    save_dir = str(tmp_path / "run")
    train_yolo3.main(TINY_YOLO + ["--epochs", "1", "--picture", "3", "--lr", "0.5", "--save-dir", save_dir])
    assert os.path.getsize(os.path.join(save_dir, "detections.jpg")) > 0


def test_a_mismatched_checkpoint_names_the_arguments_that_differ(tmp_path):
    save_dir = str(tmp_path / "run")
    train_yolo3.main(TINY_YOLO + ["--epochs", "1", "--save-dir", save_dir])
    proc = subprocess.run([sys.executable, "train_yolo3.py"] + TINY_YOLO + [
        "--epochs", "2", "--save-dir", save_dir, "--resume", "auto", "--tiny-width", "0.5"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr
    assert any(line.startswith("train_yolo3.py: error: checkpoint ") for line in last)
    assert "shape mismatch" in proc.stderr
    assert "the run's arguments differ from the checkpoint's: epochs: 1 -> 2, tiny_width: 0.25 -> 0.5;" in proc.stderr


def test_usage_error_exit_code_through_the_real_script():
    proc = subprocess.run([sys.executable, "train_faster_rcnn.py", "--batch-size", "0"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == ("train_faster_rcnn.py: error: --batch-size: must be a positive "
                                                    "integer, got 0")


def test_results_of_a_short_run_are_complete(tmp_path):
    save_dir = str(tmp_path / "run")
    train_faster_rcnn.main(["--network", "mobilenet0.25", "--dataset", "shapes", "--shapes-train-size", "2",
                            "--shapes-val-size", "2", "--shapes-image-size", "96:128", "--short", "96",
                            "--max-size", "128", "-j", "0", "--epochs", "1", "--no-progress", "--picture", "1",
                            "--save-dir", save_dir])
    with open(os.path.join(save_dir, "results_final.json")) as f:
        assert json.load(f)["model"] == "faster_rcnn_mobilenet0.25_shapes"
    assert os.path.getsize(os.path.join(save_dir, "detections.jpg")) > 0
