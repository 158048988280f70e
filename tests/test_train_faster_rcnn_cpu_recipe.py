"""CI-sized run of the CPU Faster R-CNN recipe (docs/faster_rcnn.md, "Status of the CPU configuration").

The full recipe trains ``faster_rcnn_mobilenet0.25_shapes`` for 8000 updates; this shortened run keeps
its flags (every freebie on, hybridized net, batch 1) with 48 tiny images for 2 epochs.
"""
import json
import os

import numpy as np

import train_faster_rcnn

SHORT = ["--network", "mobilenet0.25", "--dataset", "shapes", "--shapes-train-size", "48", "--shapes-val-size", "4",
         "--shapes-image-size", "96:128", "--short", "112", "--max-size", "144", "--batch-size", "1", "-j", "0",
         "--epochs", "2", "--lr", "0.02", "--lr-mode", "cosine", "--lr-warmup", "10", "--wd", "1e-4",
         "--label-smooth", "0.1", "--mixup", "--no-mixup-epochs", "1", "--picture", "0", "--no-progress"]


def _run(save_dir):
    final_map = train_faster_rcnn.main(SHORT + ["--save-dir", save_dir])
    with open(os.path.join(save_dir, "metrics.json")) as f:
        rows = json.load(f)
    with open(os.path.join(save_dir, "results_epoch0001.json")) as f:
        results = json.load(f)
    return final_map, rows, results


def test_short_recipe_learns_writes_results_and_is_deterministic(tmp_path):
    final_map, rows, results = _run(str(tmp_path / "a"))
    assert [r["global_step"] for r in rows] == [48, 96]
    losses = ("loss_rpn_cls", "loss_rpn_box", "loss_rcnn_cls", "loss_rcnn_box")
    assert all(np.isfinite(r[k]) and r[k] > 0 for r in rows for k in losses)
    # From random weights the RPN objectness starts near ln 2 = 0.69; it must fall in epoch 1.
    assert rows[1]["loss_rpn_cls"] < 0.8 * rows[0]["loss_rpn_cls"], rows
    assert results["model"] == "faster_rcnn_mobilenet0.25_shapes" and results["num_images"] == 4
    assert 0.0 <= results["map"] <= 1.0 and results["map"] == rows[1]["mAP"] == final_map

    # Same command, same numbers: data, mixup draws, RoI sampling and MXNet's RNG are all seeded.
    again_map, again_rows, _ = _run(str(tmp_path / "b"))
    assert again_map == final_map
    for a, b in zip(rows, again_rows):
        for key in losses:
            assert a[key] == b[key], key


def test_cpu_network_names():
    from gluon_bof.recipes.faster_rcnn import model_name
    assert model_name("mobilenet0.25", "shapes") == "faster_rcnn_mobilenet0.25_shapes"
    assert model_name("mobilenet0.5", "voc") == "faster_rcnn_mobilenet0.5_shapes"
    args = train_faster_rcnn.parse_args(SHORT)
    assert (args.network, args.mixup, args.label_smooth, args.lr_mode) == ("mobilenet0.25", True, 0.1, "cosine")
