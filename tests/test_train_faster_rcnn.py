"""End-to-end smoke runs of train_faster_rcnn.py on ShapesDetection (tiny images, a few iterations)."""
import glob
import json
import os
import shutil

import mxnet as mx
import numpy as np
import pytest

import train_faster_rcnn
from gluon_bof.recipes.cli import parse_decay_epochs

# 2 train images at batch 1: 2 iterations per epoch at short side 96.
TINY = ["--network", "resnet18_v1b", "--dataset", "shapes", "--shapes-train-size", "2", "--shapes-val-size", "1",
        "--short", "96", "--max-size", "128", "--batch-size", "1", "-j", "0", "--no-progress", "--lr", "0.01"]
FREEBIES = ["--lr-mode", "cosine", "--lr-warmup", "2", "--label-smooth", "0.1", "--mixup", "--mixup-mode",
            "weighted", "--no-mixup-epochs", "1"]


def test_every_freebie_trains_evaluates_and_resumes_exactly(tmp_path):
    full = str(tmp_path / "full")
    final_map = train_faster_rcnn.main(TINY + FREEBIES + ["--epochs", "2", "--save-dir", full, "--picture", "1"])
    assert 0.0 <= final_map <= 1.0
    for name in ("train.log", "metrics.json", "results_epoch0001.json", "detections.jpg", "best_map.log",
                 "epoch0000.manifest.json", "epoch0001.manifest.json", "epoch0001.params", "epoch0001.states"):
        assert os.path.isfile(os.path.join(full, name)), name
    with open(os.path.join(full, "results_epoch0001.json")) as f:
        results = json.load(f)
    assert results["protocol"] == "voc07" and results["iou_thresh"] == 0.5
    assert results["model"] == "faster_rcnn_resnet18_v1b_shapes"
    with open(os.path.join(full, "results_final.json")) as f:
        final = json.load(f)
    assert final["map"] == pytest.approx(final_map) and final["model"] == "faster_rcnn_resnet18_v1b_shapes"
    assert results["classes"] == ["circle", "rectangle", "triangle", "star", "cross", "ring"]
    rows = json.load(open(os.path.join(full, "metrics.json")))
    assert [r["epoch"] for r in rows] == [0, 1]
    assert [r["global_step"] for r in rows] == [2, 4]
    assert rows[-1]["lr"] == 0  # cosine ends at exactly 0 on the last update
    assert all(np.isfinite(r[k]) for r in rows for k in ("loss_rpn_cls", "loss_rpn_box", "loss_rcnn_cls",
                                                          "loss_rcnn_box"))

    # Exact resume: epoch 0's checkpoint alone, then --resume auto runs epoch 1 again.
    part = str(tmp_path / "part")
    os.makedirs(part)
    for path in glob.glob(os.path.join(full, "epoch0000.*")):
        shutil.copy(path, part)
    train_faster_rcnn.main(TINY + FREEBIES + ["--epochs", "2", "--save-dir", part, "--picture", "0",
                                              "--val-interval", "5", "--resume", "auto"])
    a = mx.nd.load(os.path.join(full, "epoch0001.params"))
    b = mx.nd.load(os.path.join(part, "epoch0001.params"))
    assert sorted(a) == sorted(b)
    changed = 0
    c = mx.nd.load(os.path.join(full, "epoch0000.params"))
    for key in a:
        np.testing.assert_allclose(a[key].asnumpy(), b[key].asnumpy(), rtol=1e-5, atol=1e-6, err_msg=key)
        changed += not np.array_equal(a[key].asnumpy(), c[key].asnumpy())
    assert changed > 0  # epoch 1 did train


def test_gluoncv_even_mixup_mode_runs(tmp_path, monkeypatch):
    seen = []
    from gluon_bof.recipes.faster_rcnn.task import FasterRCNNTrainTask
    original = FasterRCNNTrainTask.set_mixup

    def spy(self, enabled):
        original(self, enabled)
        seen.append(self.mix_ratio)

    monkeypatch.setattr(FasterRCNNTrainTask, "set_mixup", spy)
    final_map = train_faster_rcnn.main(TINY + ["--epochs", "2", "--mixup", "--mixup-mode", "even",
                                               "--no-mixup-epochs", "1", "--val-interval", "5", "--picture", "0",
                                               "--save-dir", str(tmp_path / "even")])
    assert 0.0 <= final_map <= 1.0
    assert seen == [0.5, 1.0]  # GluonCV: losses x0.5 during mixup epochs, x1 after


def test_help_lists_gluoncv_flags(capsys):
    with pytest.raises(SystemExit):
        train_faster_rcnn.parse_args(["--help"])
    text = capsys.readouterr().out
    for flag in ("--network", "--dataset", "--num-workers", "--batch-size", "--gpus", "--epochs", "--resume",
                 "--start-epoch", "--lr", "--lr-decay", "--lr-decay-epoch", "--lr-warmup", "--lr-warmup-factor",
                 "--momentum", "--wd", "--log-interval", "--save-prefix", "--save-interval", "--val-interval",
                 "--seed", "--mixup", "--no-mixup-epochs", "--norm-layer", "--rpn-smoothl1-rho",
                 "--rcnn-smoothl1-rho", "--lr-mode", "--label-smooth", "--mixup-alpha", "--mixup-beta",
                 "--mixup-mode", "--ctx", "--kvstore", "--save-dir"):
        assert flag in text, flag


@pytest.mark.parametrize("dataset, expected, decays", [
    ("voc", dict(epochs=20, lr=0.001, lr_decay_epoch="14,20", lr_warmup=-1, wd=5e-4), [14]),
    ("coco", dict(epochs=26, lr=0.00125, lr_decay_epoch="17,23", lr_warmup=1000, wd=1e-4), [17, 23])])
def test_gluoncv_defaults_per_dataset(dataset, expected, decays):
    args = train_faster_rcnn.parse_args(["--dataset", dataset])
    for key, value in expected.items():
        assert getattr(args, key) == value, key
    assert (args.network, args.batch_size, args.lr_decay, args.momentum, args.save_interval, args.seed,
            args.no_mixup_epochs) == ("resnet50_v1b", 1, 0.1, 0.9, 1, 233, 20)
    assert args.lr_warmup_factor == pytest.approx(1 / 3) and args.rpn_smoothl1_rho == pytest.approx(1 / 9)
    # GluonCV's VOC 14,20 with 20 epochs decays once (epoch 20 is never reached)
    assert parse_decay_epochs(args.lr_decay_epoch, args.epochs) == decays


def test_bad_flags_are_refused(capsys):
    with pytest.raises(SystemExit):
        train_faster_rcnn.parse_args(["--label-smooth", "1.5"])
    assert "--label-smooth" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_faster_rcnn.parse_args(["--start-epoch", "3"])
    assert "--resume" in capsys.readouterr().err


def test_two_cpu_contexts_with_syncbn(tmp_path):
    save_dir = str(tmp_path / "sync")
    final_map = train_faster_rcnn.main(TINY + ["--epochs", "1", "--batch-size", "2", "--ctx", "cpu:0,cpu:1",
                                               "--norm-layer", "syncbn", "--picture", "0", "--save-dir", save_dir])
    assert 0.0 <= final_map <= 1.0
    rows = json.load(open(os.path.join(save_dir, "metrics.json")))
    assert rows[-1]["global_step"] == 1  # 2 images, one per device, one update


def test_network_names_and_batchnorm_choice():
    import argparse
    from gluon_bof.recipes.faster_rcnn import FasterRCNNRecipe, model_name
    assert model_name("resnet50_v1b", "voc") == "faster_rcnn_resnet50_v1b_voc"
    assert model_name("resnet50_v1b", "custom") == "faster_rcnn_resnet50_v1b_voc"
    assert model_name("resnet50_v1b", "coco") == "faster_rcnn_resnet50_v1b_coco"
    assert model_name("resnet101_v1d", "coco") == "faster_rcnn_resnet101_v1d_coco"
    assert model_name("resnet18_v1b", "voc") == "faster_rcnn_resnet18_v1b_shapes"
    recipe = FasterRCNNRecipe()
    args = argparse.Namespace(network="resnet50_v1b", dataset="voc", short=None, max_size=None, norm_layer=None)
    frozen = recipe.build_net(args, ["a", "b"], mx.gluon.nn.BatchNorm, {}, per_device_batch=2)
    args.norm_layer = "syncbn"
    sync = recipe.build_net(args, ["a", "b"], mx.gluon.contrib.nn.SyncBatchNorm, {"num_devices": 4})
    assert frozen.num_class == 2 and frozen._batch_size == 2
    assert not any("batchnorm" in k for k in frozen.collect_train_params().keys())  # GluonCV: BN frozen
    assert any("batchnorm" in k for k in sync.collect_train_params().keys())
    with pytest.raises(ValueError, match="--network"):
        model_name("vgg16", "voc")
