"""Reports of evaluation results: per-class AP tables, precision-recall curves, per-class AP deltas.

Plots use matplotlib's Agg backend (files only, no display). AP values are fractions in [0, 1] in
the results files and are shown in percent (as the paper and GluonCV print them).
"""
import csv
import io
import math
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = ["ap_table_markdown", "ap_table_csv", "ap_deltas", "plot_ap_delta", "plot_pr_curves", "summary_line"]

# Figures 7 and 8 of the paper: red for gains, blue for drops.
GAIN_COLOR = "#d62728"
DROP_COLOR = "#1f77b4"


def _percent(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else "%.1f" % (100.0 * value)


def ap_table_markdown(results: Mapping[str, Any]) -> str:
    """Markdown table of per-class AP (percent) with the mAP as last row.

    Parameters
    ----------
    results : mapping
        A results document (:mod:`gluon_bof.metrics.results`).
    """
    lines = ["| class | AP (%) |", "|---|---:|"]
    for name, ap in zip(results["classes"], results["per_class_ap"]):
        lines.append("| %s | %s |" % (name, _percent(ap)))
    lines.append("| **mAP** | **%s** |" % _percent(results["map"]))
    return "\n".join(lines) + "\n"


def ap_table_csv(results: Mapping[str, Any], path: Optional[str] = None) -> str:
    """CSV ``class,ap`` (fractions, empty when undefined) plus a final ``mAP`` row.

    Returns the CSV text; writes it to ``path`` too when given.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["class", "ap"])
    rows = list(zip(results["classes"], results["per_class_ap"])) + [("mAP", results["map"])]
    for name, ap in rows:
        writer.writerow([name, "" if ap is None or math.isnan(ap) else repr(float(ap))])
    text = out.getvalue()
    if path is not None:
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return text


def ap_deltas(before: Mapping[str, Any], after: Mapping[str, Any]) -> List[Tuple[str, float]]:
    """Per-class ``AP(after) - AP(before)``, sorted from the largest drop to the largest gain.

    Classes are matched by name; classes whose AP is undefined in either file are left out.

    Raises
    ------
    ValueError
        If the two documents use different protocols or class sets.
    """
    if before["protocol"] != after["protocol"]:
        raise ValueError("cannot compare a %r result with a %r result" % (before["protocol"], after["protocol"]))
    a = dict(zip(before["classes"], before["per_class_ap"]))
    b = dict(zip(after["classes"], after["per_class_ap"]))
    if set(a) != set(b):
        raise ValueError("the results have different classes: only in the first %s, only in the second %s"
                         % (sorted(set(a) - set(b)), sorted(set(b) - set(a))))
    deltas = [(name, float(b[name]) - float(a[name])) for name in before["classes"]
              if not (math.isnan(float(a[name])) or math.isnan(float(b[name])))]
    return sorted(deltas, key=lambda item: item[1])


def plot_ap_delta(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    path: str,
    title: Optional[str] = None,
) -> List[Tuple[str, float]]:
    """Bar chart of per-class AP changes (percentage points), as Figures 7 and 8 of the paper.

    Bars are sorted by change, gains in red and drops in blue; the title gives the mAP change.

    Returns
    -------
    list of (str, float)
        The sorted deltas (fractions), as :func:`ap_deltas`.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    deltas = ap_deltas(before, after)
    names = [n for n, _ in deltas]
    values = np.array([d for _, d in deltas]) * 100.0
    width = max(6.0, 0.18 * len(names) + 2.0)
    fig, ax = plt.subplots(figsize=(width, 4.8))
    colors = [GAIN_COLOR if v > 0 else DROP_COLOR for v in values]
    ax.bar(np.arange(len(values)), values, color=colors, width=0.8)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(values)))
    ax.set_xticklabels(names, rotation=90, fontsize=8 if len(names) > 30 else 10)
    ax.set_xlim(-0.6, len(values) - 0.4)
    ax.set_ylabel("AP change (percentage points)")
    map_delta = 100.0 * (float(after["map"]) - float(before["map"]))
    default = "%s vs %s (%s): mAP %+.2f points, %d gains, %d drops" % (
        after.get("model", "B"), before.get("model", "A"), before["protocol"], map_delta,
        int(np.sum(values > 0)), int(np.sum(values < 0)))
    ax.set_title(title or default, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return deltas


def plot_pr_curves(
    curves: Mapping[Any, Tuple[np.ndarray, np.ndarray]],
    path: str,
    class_names: Optional[Sequence[str]] = None,
    aps: Optional[Sequence[float]] = None,
    columns: int = 5,
) -> str:
    """One precision-recall panel per class (from ``VOCMApMetric.pr_curves()``), saved to ``path``.

    Parameters
    ----------
    curves : mapping class id -> (recall, precision)
        Cumulative curves, as returned by the VOC metrics' ``pr_curves``.
    class_names : sequence of str, optional
        Panel titles, indexed by class id.
    aps : sequence of float, optional
        AP per class id, shown in the titles.
    columns : int
        Panels per row.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ids = sorted(curves)
    if not ids:
        raise ValueError("plot_pr_curves: no class has ground truth, nothing to plot")
    rows = int(math.ceil(len(ids) / float(columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.4 * rows), squeeze=False)
    for ax in axes.flat[len(ids):]:
        ax.axis("off")
    for ax, cid in zip(axes.flat, ids):
        recall, precision = curves[cid]
        ax.plot(recall, precision, linewidth=1.2)
        name = class_names[cid] if class_names is not None else str(cid)
        if aps is not None and not math.isnan(aps[cid]):
            name = "%s (AP %.1f)" % (name, 100.0 * aps[cid])
        ax.set_title(name, fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.supxlabel("recall")
    fig.supylabel("precision")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def summary_line(results: Mapping[str, Any]) -> str:
    """One line: protocol, model, data set and mAP in percent."""
    return "%s %s on %s/%s: mAP %s" % (results["protocol"], results["model"], results["dataset"],
                                       results["split"], _percent(results["map"]))

