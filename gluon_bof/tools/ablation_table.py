"""The ablation table from finished runs: mean mAP with 95% intervals, paired deltas, the paper beside.

Values are read from each run's results file (mAP as a fraction) and shown in percent, like the
paper. A row's delta is paired by seed against its reference row (the previous row, or the
baseline for '- data augmentation'); the cumulative delta is paired against the table's baseline.
A delta is called distinguishable from seed noise only when its 95% interval excludes 0.
"""
import csv
import io
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..metrics.intervals import Interval, format_interval, mean_interval, paired_delta
from ..metrics.results import load_results_json
from .ablation_presets import TableSpec
from .ablation_runner import Run

__all__ = ["collect_maps", "summarize", "render_markdown", "render_csv", "plot_table"]


def collect_maps(plan: Mapping[str, Sequence[Run]]) -> Dict[str, Dict[int, float]]:
    """``{row key: {seed index: mAP fraction}}`` of the runs whose results file exists."""
    maps: Dict[str, Dict[int, float]] = {}
    for key, runs in plan.items():
        maps[key] = {}
        for run in runs:
            if run.done:
                maps[key][run.seed_index] = float(load_results_json(str(run.results_path))["map"])
    return maps


def _try(fn, *args) -> Optional[Interval]:
    try:
        return fn(*args)
    except ValueError:
        return None


def summarize(spec: TableSpec, maps: Mapping[str, Mapping[int, float]],
              costs: Optional[Mapping[str, Mapping[str, Any]]] = None) -> List[Dict[str, Any]]:
    """One dict per row: label, paper values, measured mean/interval, paired deltas, cost, verdict."""
    costs = costs or {}
    out: List[Dict[str, Any]] = []
    paper = {r.key: r.paper for r in spec.rows}
    for row in spec.rows:
        values = maps.get(row.key, {})
        mean = _try(mean_interval, list(values.values())) if values else None
        delta = _try(paired_delta, values, maps.get(row.reference, {})) if row.reference else None
        cumulative = None
        if spec.baseline and row.key != spec.baseline and row.reference != spec.baseline:
            cumulative = _try(paired_delta, values, maps.get(spec.baseline, {}))
        elif row.reference == spec.baseline:
            cumulative = delta
        ref_paper = paper.get(row.reference) if row.reference else None
        identical = (bool(values) and row.reference is not None and
                     set(values) == set(maps.get(row.reference, {})) and
                     all(values[k] == maps[row.reference][k] for k in values))
        out.append({"key": row.key, "label": row.label, "seeds": sorted(values), "maps": dict(values),
                    "paper": row.paper,
                    "paper_delta": None if ref_paper is None or row.paper is None else row.paper - ref_paper,
                    "mean": mean, "delta": delta, "cumulative": cumulative, "reference": row.reference,
                    "identical_to_reference": identical, "cost": dict(costs.get(row.key, {}))})
    return out


def _verdict(r: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    d: Optional[Interval] = r["delta"]
    ref = labels.get(r["reference"], r["reference"])
    if d is None:
        return ""
    if r["identical_to_reference"]:
        return "identical to '%s' for every seed" % ref
    if math.isnan(d.half):
        return "%d seed pair: no interval, cannot tell from seed noise" % d.n
    if d.excludes_zero:
        return "%s than '%s', distinguishable from seed noise" % ("better" if d.mean > 0 else "worse", ref)
    return "not distinguishable from seed noise (interval includes 0)"


def _cell(value: Optional[float], fmt: str = "%.2f") -> str:
    return "-" if value is None else fmt % value


def render_markdown(spec: TableSpec, summary: Sequence[Mapping[str, Any]], command: str,
                    wall_seconds: Optional[float] = None, machine: str = "", failed: Sequence[str] = ()) -> str:
    """``table.md``: the table, a sentence per row about seed noise, the notes, command and wall time."""
    labels = {r["key"]: r["label"] for r in summary}
    lines = ["### %s (%s preset)" % (spec.title, spec.preset), "",
             "Measured: %s, percent; mean over seeds with its 95%% t-interval; deltas paired by seed. "
             "Paper: %s." % (spec.metric, _PAPER_METRIC.get(spec.number, "")), "",
             "| row | paper mAP | paper Δ | mAP (95% CI) | Δ vs reference (95% CI) | cumulative Δ (95% CI) | seeds "
             "| parameters | ms / image |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in summary:
        cost = r["cost"]
        lines.append("| %s | %s | %s | %s | %s | %s | %d | %s | %s |" % (
            r["label"], _cell(r["paper"]), _cell(r["paper_delta"], "%+.2f"),
            "not yet run" if r["mean"] is None else format_interval(r["mean"]),
            format_interval(r["delta"], signed=True), format_interval(r["cumulative"], signed=True),
            len(r["seeds"]), "{:,}".format(cost["parameters"]) if "parameters" in cost else "-",
            "%.1f" % cost["ms_per_image"] if "ms_per_image" in cost else "-"))
    lines += ["", "In words (a delta counts only when its 95% interval excludes 0):", ""]
    for r in summary:
        text = _verdict(r, labels)
        if text:
            lines.append("* %s: %s." % (r["label"], text))
    stacked = [r for r in summary if r["cumulative"] is not None and r["reference"] != spec.baseline]
    if stacked:
        base = labels.get(spec.baseline, spec.baseline)
        lines += ["", "Cumulative, each row (its freebie and all above it) against '%s':" % base, ""]
        for r in stacked:
            lines.append("* %s: %s." % (r["label"], _verdict(dict(r, delta=r["cumulative"], reference=spec.baseline,
                                                                    identical_to_reference=False), labels)))
    costs = [r["cost"].get("parameters") for r in summary if r["cost"].get("parameters") is not None]
    if costs:
        lines += ["", "Inference cost, measured on the final weights of seed 0 (batch 1, median of timed "
                  "forwards, this machine): %s." % ("every row has the same parameter count" if len(set(costs)) == 1
                                                    else "parameter counts differ between rows")]
    for note in spec.notes:
        lines += ["", note]
    if failed:
        lines += ["", "Failed runs (not in the table): " + "; ".join(failed)]
    lines += ["", "Command: `%s`" % command]
    if wall_seconds is not None:
        lines.append("Wall time of this invocation: %.1f min%s." % (wall_seconds / 60.0,
                                                                    (" on " + machine) if machine else ""))
    return "\n".join(lines) + "\n"


_PAPER_METRIC = {1: "VOC07 test mAP (Table 1)", 3: "VOC07 test mAP at 416x416 (Table 3)",
                 4: "VOC07 test mAP at 600x1000 (Table 4)", 5: "COCO 2017 val mAP 0.5:0.95 (Table 5)"}


def render_csv(summary: Sequence[Mapping[str, Any]]) -> str:
    """``table.csv``: one line per row, values in percent; per-seed mAPs in ``seed_maps``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row", "label", "paper_map", "paper_delta", "n_seeds", "map_mean", "map_ci_half", "delta_mean",
                "delta_ci_half", "delta_n", "delta_excludes_zero", "cumulative_mean", "cumulative_ci_half",
                "parameters", "ms_per_image", "seed_maps"])

    def pct(v: Optional[float]) -> str:
        return "" if v is None or math.isnan(v) else "%.4f" % (100.0 * v)

    for r in summary:
        m, d, c = r["mean"], r["delta"], r["cumulative"]
        w.writerow([r["key"], r["label"], "" if r["paper"] is None else r["paper"],
                    "" if r["paper_delta"] is None else "%.2f" % r["paper_delta"], len(r["seeds"]),
                    pct(m and m.mean), pct(m and m.half), pct(d and d.mean), pct(d and d.half), d.n if d else "",
                    "" if d is None else int(d.excludes_zero), pct(c and c.mean), pct(c and c.half),
                    r["cost"].get("parameters", ""), r["cost"].get("ms_per_image", ""),
                    " ".join("%d:%.4f" % (k, 100 * v) for k, v in sorted(r["maps"].items()))])
    return buf.getvalue()


def plot_table(spec: TableSpec, summary: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Bar chart: measured mAP with 95% intervals (left), paired deltas with intervals beside the
    paper's deltas (right), both in percent."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.8), dpi=100, constrained_layout=True)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    labels = [r["label"] for r in summary]
    ys = list(range(len(summary)))
    means = [100 * r["mean"].mean if r["mean"] else 0.0 for r in summary]
    errs = [100 * r["mean"].half if r["mean"] and not math.isnan(r["mean"].half) else 0.0 for r in summary]
    left.barh(ys, means, xerr=errs, color="tab:blue", alpha=0.8, capsize=3)
    left.set_yticks(ys)
    left.set_yticklabels(labels)
    left.invert_yaxis()
    left.set_xlabel("measured mAP (%%): %s" % spec.metric)
    left.set_title("mean over seeds, 95% interval")
    d_mean = [100 * r["delta"].mean if r["delta"] else 0.0 for r in summary]
    d_err = [100 * r["delta"].half if r["delta"] and not math.isnan(r["delta"].half) else 0.0 for r in summary]
    colors = ["tab:red" if r["delta"] and r["delta"].excludes_zero else "0.6" for r in summary]
    right.barh([y - 0.18 for y in ys], d_mean, height=0.35, xerr=d_err, color=colors, capsize=3,
               label="measured Δ (red: interval excludes 0)")
    right.barh([y + 0.18 for y in ys], [r["paper_delta"] or 0.0 for r in summary], height=0.35,
               color="tab:orange", alpha=0.7, label="paper Δ")
    right.axvline(0.0, color="k", linewidth=0.8)
    right.set_yticks(ys)
    right.set_yticklabels(labels)
    right.invert_yaxis()
    right.set_xlabel("Δ vs reference row (percentage points)")
    right.set_title("paired by seed")
    right.legend(fontsize=8, loc="lower right")
    fig.suptitle("%s, %s preset" % (spec.title, spec.preset))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(str(path), format="png")
