"""Per-class AP tables, precision-recall curves and AP delta charts."""
import math

import numpy as np
import pytest

from gluon_bof.metrics import VOCMApMetric
from gluon_bof.metrics.report import ap_deltas, ap_table_csv, ap_table_markdown, plot_ap_delta, plot_pr_curves


def results(aps, model="m", protocol="voc07", classes=("a", "b", "c", "d")):
    finite = [a for a in aps if not math.isnan(a)]
    return {"protocol": protocol, "model": model, "dataset": "voc", "split": "test", "classes": list(classes),
            "per_class_ap": list(aps), "map": sum(finite) / len(finite)}


def test_tables():
    r = results([0.5, 0.25, float("nan"), 1.0])
    md = ap_table_markdown(r)
    assert "| a | 50.0 |" in md and "| c | n/a |" in md and "| **mAP** | **58.3** |" in md
    csv_text = ap_table_csv(r)
    assert csv_text.splitlines() == ["class,ap", "a,0.5", "b,0.25", "c,", "d,1.0", "mAP,0.5833333333333334"]


def test_deltas_sorted_and_checked():
    deltas = ap_deltas(results([0.5, 0.5, 0.5, float("nan")]), results([0.7, 0.2, 0.5, 0.9]))
    assert [n for n, _ in deltas] == ["b", "c", "a"]  # NaN class left out, drops first
    assert deltas[0][1] == pytest.approx(-0.3) and deltas[-1][1] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="cannot compare a 'voc07' result with a 'coco' result"):
        ap_deltas(results([0.1] * 4), results([0.1] * 4, protocol="coco"))
    with pytest.raises(ValueError, match="only in the first \\['d'\\], only in the second \\['e'\\]"):
        ap_deltas(results([0.1] * 4), results([0.1] * 4, classes=("a", "b", "c", "e")))


def test_delta_chart_colours(tmp_path):
    import matplotlib.image

    path = str(tmp_path / "delta.png")
    plot_ap_delta(results([0.5, 0.5, 0.5, 0.5]), results([0.9, 0.1, 0.6, 0.5]), path)
    pixels = matplotlib.image.imread(path)[..., :3]
    red = np.all(np.abs(pixels - np.array([0xd6, 0x27, 0x28]) / 255.0) < 0.02, axis=-1).sum()
    blue = np.all(np.abs(pixels - np.array([0x1f, 0x77, 0xb4]) / 255.0) < 0.02, axis=-1).sum()
    assert red > 500 and blue > 500  # two gains (red) and one drop (blue) drawn


def test_pr_curves_file(tmp_path):
    metric = VOCMApMetric(class_names=["a", "b"])
    metric.update(np.array([[[0, 0, 9, 9], [0, 0, 8, 8]]], np.float32), np.array([[0, 0]], np.float32),
                  np.array([[0.9, 0.8]], np.float32), np.array([[[0, 0, 9, 9], [30, 30, 40, 40]]], np.float32),
                  np.array([[0, 1]], np.float32))
    curves = metric.pr_curves()
    assert set(curves) == {0, 1}
    np.testing.assert_allclose(curves[0][0], [1.0, 1.0])
    np.testing.assert_allclose(curves[0][1], [1.0, 0.5])
    path = plot_pr_curves(curves, str(tmp_path / "pr.png"), class_names=["a", "b"], aps=metric.class_aps())
    assert (tmp_path / "pr.png").stat().st_size > 5000 and path.endswith("pr.png")
    with pytest.raises(ValueError, match="no class has ground truth"):
        plot_pr_curves({}, str(tmp_path / "none.png"))
