"""The paper's ablation tables (1, 3, 4 and 5) as ordinary training runs, with intervals over seeds.

Usage::

    python -m gluon_bof.tools.ablation --table 3 --preset cpu --seeds 3 --jobs 2 --out runs/ablation
    python -m gluon_bof.tools.ablation --table 3 --preset paper --dry-run

Every row x seed is one run of ``train_yolo3.py`` / ``train_faster_rcnn.py`` (started from the
repository root, output in its own folder, see ``ablation_runner``). Finished runs are skipped and
cut ones resume exactly, so the same command continues after an interruption. When every run is
over, ``OUT/table<N>-<preset>/`` receives ``table.md``, ``table.csv``, ``table.png`` and
``runs.json`` (row -> run folders, read by ``gluon_bof.tools.figures``). Each row's parameter count
and inference time per image are measured on its seed-0 weights (cached in ``cost.json``).
Exit status: 0 when every run finished, 1 when some failed (the table holds the others), 143/130
when interrupted, 2 on bad arguments.
"""
import argparse
import json
import os
import platform
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from .ablation_presets import PRESETS, TABLES, TableSpec, get_table
from .ablation_runner import Run, eval_command, execute, final_params, plan_runs, run_command
from .ablation_table import collect_maps, plot_table, render_csv, render_markdown, summarize

__all__ = ["main", "measure_cost", "table_dir"]


def table_dir(out: Path, spec: TableSpec) -> Path:
    """Folder of a table's outputs inside ``--out``."""
    return Path(out) / ("table%d-%s" % (spec.number, spec.preset))


def measure_cost(run: Run, repeats: int = 20) -> Dict[str, Any]:
    """Parameter count and median inference time per image (ms, batch 1) of a run's last weights.

    Cached in ``RUN/cost.json``; ``{}`` when the run has no weights. Measured in this process,
    after the trainings, so that they do not share the cores with it.
    """
    cache = run.run_dir / "cost.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    params = final_params(run.run_dir)
    if params is None:
        return {}
    from .model_card import measure_inference, parameter_count
    from .run_model import load_run_model

    model = load_run_model(str(params))
    timing = measure_inference(model, runs=repeats, warmup=3)
    cost = {"parameters": parameter_count(str(params))["excluding_bn_statistics"],
            "ms_per_image": timing["ms_per_image_median"], "input_shape": timing["input_shape"],
            "params_file": str(params)}
    cache.write_text(json.dumps(cost, indent=1) + "\n")
    return cost


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", "r", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return "%s, %d cores" % (cpu, os.cpu_count() or 0)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gluon_bof.tools.ablation", description=__doc__.split("\n")[0])
    p.add_argument("--table", type=int, required=True, choices=TABLES, help="paper table: 1, 3, 4 or 5")
    p.add_argument("--preset", default="cpu", choices=PRESETS, help="paper (8 GPUs, VOC/COCO), cpu (Shapes, "
                   "sized for this 2-core machine) or smoke (CI) (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per row (default: 3 for cpu, 1 otherwise)")
    p.add_argument("--out", type=Path, default=Path("runs/ablation"), help="output folder (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=1, help="runs at once, each on OMP_NUM_THREADS=1 (default: 1)")
    p.add_argument("--extra-args", default="", help="flags appended to every training command, e.g. "
                   "\"--ctx cpu:0,cpu:1\" (changes the run folders)")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument("--no-cost", action="store_true", help="skip measuring parameters and inference time")
    return p


def _write_outputs(spec: TableSpec, plan: Dict[str, List[Run]], out: Path, command: str, wall: float,
                   failed: Sequence[str], measure: bool) -> Path:
    costs: Dict[str, Dict[str, Any]] = {}
    if measure:
        for key, runs in plan.items():
            if runs and runs[0].done:
                try:
                    costs[key] = measure_cost(runs[0])
                except Exception as err:  # a cost that cannot be measured must not lose the table
                    print("ablation: cost of %s not measured (%s: %s)" % (key, type(err).__name__, err))
    summary = summarize(spec, collect_maps(plan), costs)
    folder = table_dir(out, spec)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "table.md").write_text(render_markdown(spec, summary, command, wall, _machine(), failed))
    (folder / "table.csv").write_text(render_csv(summary))
    plot_table(spec, summary, folder / "table.png")
    (folder / "runs.json").write_text(json.dumps({
        "table": spec.number, "preset": spec.preset, "baseline": spec.baseline,
        "rows": [{"key": r.key, "label": r.label, "reference": r.reference,
                  "runs": {str(run.seed_index): str(run.run_dir) for run in plan[r.key]}} for r in spec.rows]},
        indent=1) + "\n")
    return folder


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run (or print) a table; see the module docstring for the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        spec = get_table(args.table, args.preset)
    except ValueError as err:
        parser.error(str(err))
    seeds = args.seeds if args.seeds is not None else spec.default_seeds
    if seeds < 1 or args.jobs < 1:
        parser.error("--seeds and --jobs must be >= 1")
    extra = shlex.split(args.extra_args)
    plan = plan_runs(spec.rows, seeds, args.out, extra)
    runs = list({(run.run_dir, run.evaluate): run for key in plan for run in plan[key]}.values())
    if args.dry_run:
        for row in spec.rows:
            print("# %s" % row.label)
            for run in plan[row.key]:
                print(" ".join(shlex.quote(w) for w in run_command(run)))
                if run.evaluate is not None:
                    print(" ".join(shlex.quote(w) for w in eval_command(run)))
        return 0
    command = "python -m gluon_bof.tools.ablation " + " ".join(
        shlex.quote(w) for w in (sys.argv[1:] if argv is None else argv))
    stop = {"signal": 0}

    def on_signal(signum: int, _frame: Any) -> None:
        stop["signal"] = signum
        print("ablation: %s received, stopping the trainings at a checkpoint; the same command resumes"
              % signal.Signals(signum).name, flush=True)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    start = time.time()
    try:
        outcomes = execute(runs, jobs=args.jobs, report=lambda m: print(m, flush=True),
                           stop=lambda: bool(stop["signal"]))
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    wall = time.time() - start
    if stop["signal"]:
        cut = [o.run.run_dir for o in outcomes if o.status == "interrupted"]
        print("ablation: interrupted; cut runs: %s" % ", ".join(map(str, cut)))
        return 128 + stop["signal"]
    failed = ["%s (exit %s, log %s)" % (o.run.run_dir, o.returncode, o.log) for o in outcomes if o.status == "failed"]
    folder = _write_outputs(spec, plan, args.out, command, wall, failed, not args.no_cost)
    ran = sum(o.status == "ran" for o in outcomes)
    skipped = sum(o.status == "skipped" for o in outcomes)
    print("ablation: %d runs trained, %d already finished, %d failed in %.1f min; wrote %s/table.md, table.csv, "
          "table.png" % (ran, skipped, len(failed), wall / 60.0, folder))
    for line in failed:
        print("FAILED %s" % line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
