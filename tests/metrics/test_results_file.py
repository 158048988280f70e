"""Results JSON: schema, NaN handling, round trip, and clear errors on foreign files."""
import json
import math

import numpy as np
import pytest

from gluon_bof.metrics import VOC07MApMetric, build_results, load_results_json, save_results_json
from gluon_bof.metrics.results import FORMAT, VERSION, per_class_ap


def small_metric():
    metric = VOC07MApMetric(iou_thresh=0.5, class_names=["cat", "dog", "bird"])
    metric.update(np.array([[[0, 0, 9, 9], [20, 20, 30, 30]]], np.float32), np.array([[0, 2]], np.float32),
                  np.array([[0.9, 0.4]], np.float32), np.array([[[0, 0, 9, 9], [50, 50, 60, 60]]], np.float32),
                  np.array([[0, 1]], np.float32), np.array([[0, 0]], np.float32))
    return metric


def test_round_trip_with_nan_as_null(tmp_path):
    results = build_results(small_metric(), dataset="voc", split="2007_test", model="yolo3_darknet53_voc",
                            checkpoint="run/yolo3_0199.params", epoch=199, extra={"note": "test"})
    path = save_results_json(str(tmp_path / "sub" / "eval.json"), results)
    raw = json.loads(open(path).read())
    assert raw["format"] == FORMAT and raw["version"] == VERSION
    assert raw["protocol"] == "voc07" and raw["iou_thresh"] == 0.5 and raw["difficult"] == "ignored"
    assert raw["classes"] == ["cat", "dog", "bird"]
    assert raw["per_class_ap"][0] == pytest.approx(1.0) and raw["per_class_ap"][1] == 0.0
    assert raw["per_class_ap"][2] is None  # bird: detections but no ground truth -> NaN -> null
    assert raw["map"] == pytest.approx(0.5) and raw["num_images"] == 1 and raw["epoch"] == 199
    loaded = load_results_json(path)
    assert math.isnan(loaded["per_class_ap"][2]) and loaded["map"] == pytest.approx(0.5)
    assert per_class_ap(loaded)["cat"] == pytest.approx(1.0)
    assert loaded["checkpoint"] == "run/yolo3_0199.params" and loaded["extra"] == {"note": "test"}


def test_foreign_or_broken_files_are_rejected(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        load_results_json(str(bad))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something", "version": 1}))
    with pytest.raises(ValueError, match="other.json: not a gluon_bof results file"):
        load_results_json(str(other))
    results = build_results(small_metric(), dataset="voc", split="t", model="m")
    newer = dict(results, version=VERSION + 1, map=0.5, per_class_ap=[0.1, 0.2, 0.3])
    (tmp_path / "newer.json").write_text(json.dumps(newer))
    with pytest.raises(ValueError, match="version 2 is not supported"):
        load_results_json(str(tmp_path / "newer.json"))
    with pytest.raises(ValueError, match="same length"):
        save_results_json(str(tmp_path / "x.json"), dict(results, per_class_ap=[0.1]))
    assert not (tmp_path / "x.json").exists()
