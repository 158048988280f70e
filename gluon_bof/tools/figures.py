"""Regenerate the paper's figures from finished ablation runs.

Usage::

    python -m gluon_bof.tools.figures --runs runs/ablation [--out docs/figures]

``--runs`` takes ablation output folders (``gluon_bof.tools.ablation`` writes
``table<N>-<preset>/runs.json`` in them; folders are searched recursively). Written into ``--out``:

* ``fig6b_table<N>_<preset>.png``: validation mAP per epoch of the step row against the cosine row
  of each table (per seed thin, mean thick), read from the runs' ``metrics.csv``;
* ``fig6a_table<N>_<preset>.png``: those runs' step and cosine LR schedules (``plot_lr``), YOLOv3
  only (Faster R-CNN's warmup is counted in iterations), and ``fig6a_paper.png`` (the paper's
  setting);
* ``fig7_table<N>_<preset>.png`` (YOLOv3) / ``fig8_table<N>_<preset>.png`` (Faster R-CNN): per-class
  AP change from the baseline row to the last row, seed 0 (``compare_results``);
* ``mixup_example.png`` and ``mixup_beta.png``: Figures 3 and 4 (``show_mixup``);
* ``figures.md``: what each file shows and the command that made it.
"""
import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import compare_results, plot_lr, show_mixup

__all__ = ["main", "find_tables", "validation_curve", "plot_map_curves"]


def find_tables(paths: Sequence[Path]) -> List[Path]:
    """Every ``runs.json`` under the given folders (or the files themselves), sorted."""
    found: List[Path] = []
    for p in map(Path, paths):
        found += [p] if p.is_file() else sorted(p.rglob("runs.json"))
    return found


def validation_curve(metrics_csv: Path) -> Tuple[np.ndarray, np.ndarray]:
    """``(epochs, mAP)`` of the validated epochs of a run (epochs 1-based, mAP as a fraction)."""
    epochs, maps = [], []
    with open(metrics_csv, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row.get("mAP") not in (None, ""):
                epochs.append(int(row["epoch"]) + 1)
                maps.append(float(row["mAP"]))
    return np.asarray(epochs, dtype=np.int64), np.asarray(maps, dtype=np.float64)


def plot_map_curves(curves: Dict[str, List[Tuple[np.ndarray, np.ndarray]]], title: str, path: Path) -> None:
    """Figure 6b: validation mAP (percent) per epoch; one colour per schedule, thin lines per seed,
    a thick line for the mean over the seeds validated at the same epochs."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=100, constrained_layout=True)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for (name, runs), color in zip(curves.items(), ("tab:blue", "tab:orange", "tab:green")):
        for epochs, maps in runs:
            ax.plot(epochs, 100 * maps, color=color, alpha=0.3, linewidth=1)
        lengths = {len(e) for e, _ in runs}
        if runs and len(lengths) == 1:
            ax.plot(runs[0][0], 100 * np.mean([m for _, m in runs], axis=0), color=color, linewidth=2.2,
                    label="%s (mean of %d seeds)" % (name, len(runs)))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation mAP (%)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.savefig(str(path), format="png", bbox_inches="tight")


def _args_of(run_dir: Path) -> Optional[Dict[str, Any]]:
    manifests = sorted(run_dir.glob("*.manifest.json"), key=lambda p: p.stat().st_mtime)
    if not manifests:
        return None
    return json.loads(manifests[-1].read_text())["meta"]["args"]


def _table_figures(table_json: Path, out: Path) -> List[Tuple[str, str]]:
    """Figures 6a, 6b and 7/8 of one ablation table; returns ``(file, description)`` pairs."""
    doc = json.loads(table_json.read_text())
    tag = "table%d_%s" % (doc["table"], doc["preset"])
    rows = {r["key"]: r for r in doc["rows"]}
    made: List[Tuple[str, str]] = []
    cosine = rows.get("cosine")
    step = rows.get(cosine["reference"]) if cosine else None
    if cosine and step:
        curves = {}
        for name, row in (("step", step), ("cosine", cosine)):
            curves[name] = [validation_curve(Path(d) / "metrics.csv") for d in row["runs"].values()
                            if (Path(d) / "metrics.csv").is_file()]
        if all(curves.values()):
            name = "fig6b_%s.png" % tag
            plot_map_curves(curves, "Validation mAP: '%s' (step) vs '%s' (cosine)" % (step["label"], cosine["label"]),
                            out / name)
            made.append((name, "Figure 6b: validation mAP per epoch, step vs cosine (%s)" % tag))
        args = _args_of(Path(cosine["runs"]["0"]))
        if args and "warmup_epochs" in args:
            name = "fig6a_%s.png" % tag
            num = args.get("num_samples", -1)
            num = num if num and num > 0 else args.get("shapes_train_size", 16551)
            plot_lr.main(["--batch-size", str(args["batch_size"]), "--num-samples", str(num), "--epochs",
                          str(args["epochs"]), "--lr", str(args["lr"]), "--warmup-epochs", str(args["warmup_epochs"]),
                          "--lr-decay-epoch", str(args["lr_decay_epoch"]).strip("[]").replace(" ", ""),
                          "--output", str(out / name)])
            made.append((name, "Figure 6a: the LR schedules of these runs (%s)" % tag))
    first, last = doc["rows"][0], doc["rows"][-1]
    base = rows.get(doc.get("baseline") or "", first)
    a, b = Path(base["runs"]["0"]) / "results_final.json", Path(last["runs"]["0"]) / "results_final.json"
    if a.is_file() and b.is_file() and base is not last:
        fig = 7 if "yolo3" in str(Path(last["runs"]["0"]).parent.name) else 8
        name = "fig%d_%s.png" % (fig, tag)
        compare_results.main([str(a), str(b), "-o", str(out / name), "--title",
                              "AP change: '%s' -> '%s' (%s, seed 0)" % (base["label"], last["label"], tag)])
        made.append((name, "Figure %d: per-class AP change '%s' -> '%s' (%s)" % (fig, base["label"], last["label"], tag)))
    return made


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Write every figure that the given runs allow; returns 0, or 2 when no table was found."""
    p = argparse.ArgumentParser(prog="python -m gluon_bof.tools.figures", description=__doc__.split("\n")[0])
    p.add_argument("--runs", nargs="+", type=Path, required=True, help="ablation output folders or runs.json files")
    p.add_argument("--out", type=Path, default=Path("docs/figures"), help="output folder (default: %(default)s)")
    args = p.parse_args(argv)
    tables = find_tables(args.runs)
    if not tables:
        print("figures: no runs.json under %s (run gluon_bof.tools.ablation first)"
              % ", ".join(map(str, args.runs)), file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    made: List[Tuple[str, str]] = []
    for table_json in tables:
        made += _table_figures(table_json, args.out)
    plot_lr.main(["--output", str(args.out / "fig6a_paper.png")])
    made.append(("fig6a_paper.png", "Figure 6a: step and cosine schedules, the paper's setting (YOLOv3, VOC, batch 64)"))
    show_mixup.main(["--out", str(args.out)])
    made += [("mixup_example.png", "Figure 3: a mixed Shapes image with per-box weights"),
             ("mixup_beta.png", "Figure 4: Beta densities of the mixup ratio")]
    command = "python -m gluon_bof.tools.figures " + " ".join(
        sys.argv[1:] if argv is None else list(argv))
    lines = ["# Figures", "", "Made by `%s`." % command, ""] + ["* `%s`: %s" % m for m in made]
    (args.out / "figures.md").write_text("\n".join(lines) + "\n")
    print("figures: wrote %d files in %s" % (len(made), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
