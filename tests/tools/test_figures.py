import json

import numpy as np
import pytest

from gluon_bof.tools import figures

CLASSES = ["circle", "rectangle"]


def _run(folder, maps_per_epoch, ap, lr_mode):
    folder.mkdir(parents=True)
    lines = ["epoch,lr,mAP"] + ["%d,0.01,%s" % (e, "" if m is None else m) for e, m in enumerate(maps_per_epoch)]
    (folder / "metrics.csv").write_text("\n".join(lines) + "\n")
    results = {"format": "gluon_bof.eval_results", "version": 1, "protocol": "voc07", "iou_thresh": 0.5,
               "difficult": "ignored", "dataset": "shapes", "split": "val", "model": "yolo3_tiny_shapes",
               "checkpoint": None, "classes": CLASSES, "per_class_ap": ap, "map": float(np.mean(ap))}
    (folder / "results_final.json").write_text(json.dumps(results))
    args = {"batch_size": 4, "num_samples": -1, "shapes_train_size": 40, "epochs": 4, "lr": 0.01,
            "warmup_epochs": 1, "lr_decay_epoch": [3], "lr_mode": lr_mode}
    (folder / "epoch0003.manifest.json").write_text(json.dumps({"meta": {"args": args}}))
    return str(folder)


def test_validation_curve_keeps_validated_epochs(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,lr,mAP\n0,0.1,\n1,0.1,0.25\n2,0.1,\n3,0.1,0.5\n")
    epochs, maps = figures.validation_curve(path)
    assert epochs.tolist() == [2, 4] and maps.tolist() == [0.25, 0.5]


def test_figures_from_an_ablation_folder(tmp_path, capsys):
    runs = tmp_path / "abl" / "runs"
    step = _run(runs / "train_yolo3-aaa" / "seed0", [None, 0.1, None, 0.2], [0.2, 0.2], "step")
    cos = _run(runs / "train_yolo3-bbb" / "seed0", [None, 0.15, None, 0.3], [0.5, 0.1], "cosine")
    table = {"table": 3, "preset": "smoke", "baseline": "baseline",
             "rows": [{"key": "baseline", "label": "baseline", "reference": None, "runs": {"0": step}},
                      {"key": "cosine", "label": "+ cosine", "reference": "baseline", "runs": {"0": cos}}]}
    (tmp_path / "abl" / "table3-smoke").mkdir()
    (tmp_path / "abl" / "table3-smoke" / "runs.json").write_text(json.dumps(table))
    out = tmp_path / "figs"
    assert figures.main(["--runs", str(tmp_path / "abl"), "--out", str(out)]) == 0
    for name in ("fig6b_table3_smoke.png", "fig6a_table3_smoke.png", "fig7_table3_smoke.png", "fig6a_paper.png",
                 "mixup_example.png", "mixup_beta.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG", name
    printed = capsys.readouterr().out
    assert "mAP delta (B - A): +10.00 points" in printed  # (0.5+0.1)/2 - 0.2
    index = (out / "figures.md").read_text()
    assert "python -m gluon_bof.tools.figures --runs" in index and "fig7_table3_smoke.png" in index


def test_no_ablation_folder_is_an_error(tmp_path):
    assert figures.main(["--runs", str(tmp_path), "--out", str(tmp_path / "f")]) == 2
