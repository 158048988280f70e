"""python -m gluon_bof.tools.compare_results A.json B.json: chart file, printed mAP delta, errors."""
import subprocess
import sys

import numpy as np

from gluon_bof.metrics.results import FORMAT, VERSION, save_results_json
from gluon_bof.tools.compare_results import main


def write(path, model, aps, protocol="coco"):
    classes = ["class%02d" % i for i in range(len(aps))]
    finite = [a for a in aps if a == a]
    save_results_json(str(path), {
        "format": FORMAT, "version": VERSION, "protocol": protocol, "iou_thresh": "0.50:0.95",
        "difficult": "n/a", "dataset": "coco", "split": "val2017", "model": model, "checkpoint": None,
        "classes": classes, "per_class_ap": list(aps), "map": float(np.mean(finite)), "metrics": {}})
    return str(path)


def test_writes_chart_and_prints_map_delta(tmp_path, capsys):
    rng = np.random.default_rng(0)
    base = rng.uniform(0.1, 0.6, 80)
    a = write(tmp_path / "a.json", "yolo3_darknet53_coco", base)
    after = np.clip(base + rng.normal(0.02, 0.02, 80), 0, 1)
    b = write(tmp_path / "b.json", "yolo3_darknet53_coco_bof", after)
    out = tmp_path / "delta.png"
    assert main([a, b, "-o", str(out), "--top", "3"]) == 0
    text = capsys.readouterr().out
    assert "mAP delta (B - A): %+.2f points (coco)" % (100 * (after.mean() - base.mean())) in text
    assert "largest gains:" in text and "wrote" in text
    assert out.stat().st_size > 20000


def test_delta_value_printed(tmp_path, capsys):
    a = write(tmp_path / "a.json", "A", [0.5, 0.5], protocol="voc07")
    b = write(tmp_path / "b.json", "B", [0.6, 0.45], protocol="voc07")
    assert main([a, b, "-o", str(tmp_path / "d.png")]) == 0
    assert "mAP delta (B - A): +2.50 points (voc07)" in capsys.readouterr().out


def test_incompatible_files_exit_2(tmp_path, capsys):
    a = write(tmp_path / "a.json", "A", [0.5, 0.5], protocol="voc07")
    b = write(tmp_path / "b.json", "B", [0.5, 0.5], protocol="coco")
    assert main([a, b, "-o", str(tmp_path / "d.png")]) == 2
    assert "cannot compare a 'voc07' result with a 'coco' result" in capsys.readouterr().err
    assert main([a, str(tmp_path / "missing.json"), "-o", str(tmp_path / "d.png")]) == 2


def test_runs_as_module(tmp_path):
    a = write(tmp_path / "a.json", "A", [0.5, 0.5, 0.2])
    b = write(tmp_path / "b.json", "B", [0.4, 0.6, 0.3])
    done = subprocess.run([sys.executable, "-m", "gluon_bof.tools.compare_results", a, b, "-o",
                           str(tmp_path / "m.png")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "mAP delta (B - A): +3.33 points" in done.stdout and (tmp_path / "m.png").exists()
