import csv
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gluon_bof.tools import ablation
from gluon_bof.tools.ablation_presets import PAPER_COMMANDS, Row, get_table
from gluon_bof.tools.ablation_runner import execute, plan_runs, repo_root
from gluon_bof.tools.ablation_table import render_markdown, summarize

ROOT = repo_root()


def _readme_commands():
    """The ``python train_*.py`` commands of the README's code blocks, continuation lines joined."""
    text = (ROOT / "README.md").read_text().replace("\\\n", " ")
    return [shlex.split(line.strip())[1:] for line in text.splitlines()
            if line.strip().startswith("python train_")]


def _dry_run(capsys, table):
    assert ablation.main(["--table", str(table), "--preset", "paper", "--dry-run", "--out", "OUT"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines()
             if not line.startswith(("#", "python eval_"))]
    commands = []
    for line in lines:
        words = shlex.split(line)
        assert words[0] == "python" and words[-2] == "--save-dir"
        commands.append(words[1:-2])
    return commands


def test_paper_dry_run_prints_the_readme_paper_commands(capsys):
    readme = _readme_commands()
    for name, command in PAPER_COMMANDS.items():
        assert list(command) in readme, name
    table3 = _dry_run(capsys, 3)
    assert len(table3) == 7 and table3[-1] == list(PAPER_COMMANDS["yolo3_voc"])
    table4 = _dry_run(capsys, 4)
    assert len(table4) == 5 and table4[-1] == list(PAPER_COMMANDS["faster_rcnn_voc"])
    table1 = _dry_run(capsys, 1)
    assert table1[-1] == list(PAPER_COMMANDS["yolo3_voc"]) and table1[0] == table3[-2]
    assert list(PAPER_COMMANDS["yolo3_coco"]) in _dry_run(capsys, 5)


@pytest.mark.parametrize("table", [1, 3, 4])
@pytest.mark.parametrize("preset", ["paper", "cpu"])
def test_each_row_adds_only_its_freebie(table, preset):
    rows = get_table(table, preset).rows
    added = {"syncbn": {"--syncbn"}, "cosine": {"cosine"}, "label_smooth": {"--label-smooth", "0.1"},
             "mixup": {"--mixup", "--no-mixup-epochs", "2", "3"}, "random_shapes": set(),
             "even": {"--mixup", "--no-mixup-epochs", "3", "--mixup-mode", "even"},
             "beta1": {"--mixup", "--no-mixup-epochs", "3", "--mixup-alpha", "--mixup-beta", "1.0"},
             "beta15": {"--mixup", "--no-mixup-epochs", "3"}}
    for prev, row in zip(rows, rows[1:]):
        ref = next(r for r in rows if r.key == row.reference) if row.reference else prev
        if row.key in added:
            new, gone = set(row.flags) - set(ref.flags), set(ref.flags) - set(row.flags)
            assert (new or gone) and new <= added[row.key], (row.key, new)
            assert gone <= {"step", "--no-random-shape"}, (row.key, gone)
    if table == 3:
        by = {r.key: r for r in rows}
        assert set(by["no_augment"].flags) - set(by["baseline"].flags) == {"--no-augment"}
        assert set(by["syncbn"].flags) - set(by["random_shapes"].flags) == {"--no-random-shape"}


def test_interval_table_words_and_identity():
    spec = get_table(3, "cpu")
    base = {0: 0.40, 1: 0.45, 2: 0.50}
    maps = {"no_augment": {0: 0.20, 1: 0.26, 2: 0.31}, "baseline": base, "syncbn": dict(base),
            "random_shapes": {0: 0.41, 1: 0.44, 2: 0.52}, "cosine": {0: 0.421, 1: 0.452, 2: 0.531},
            "label_smooth": {0: 0.42}, "mixup": {}}
    summary = {r["key"]: r for r in summarize(spec, maps)}
    assert summary["no_augment"]["delta"].mean == pytest.approx(-0.19333, abs=1e-5)
    assert summary["no_augment"]["paper_delta"] == pytest.approx(-15.99)
    assert summary["syncbn"]["identical_to_reference"]
    assert summary["cosine"]["delta"].mean == pytest.approx(0.034 / 3)
    assert summary["cosine"]["delta"].excludes_zero
    assert summary["cosine"]["cumulative"].mean == pytest.approx((0.021 + 0.002 + 0.031) / 3)
    assert not summary["random_shapes"]["delta"].excludes_zero
    assert summary["label_smooth"]["delta"].n == 1 and summary["mixup"]["mean"] is None
    md = render_markdown(spec, list(summary.values()), "CMD", 61.0, "test machine", ["X (exit 2, log L)"])
    assert "* + synchronized BN: identical to 'baseline' for every seed." in md
    assert "* + cosine lr schedule: better than '+ random training shapes', distinguishable from seed noise." in md
    assert "* + random training shapes: not distinguishable from seed noise (interval includes 0)." in md
    assert "| + mixup | 83.68 | +1.54 | not yet run |" in md
    assert "Cumulative, each row (its freebie and all above it) against 'baseline':" in md
    assert "* + cosine lr schedule: not distinguishable from seed noise (interval includes 0)." in md.split("Cumulative")[1]
    assert "Failed runs (not in the table): X (exit 2, log L)" in md and "1.0 min on test machine" in md


def test_smoke_preset_end_to_end_then_skips_finished_runs(tmp_path, capsys):
    out = tmp_path / "abl"
    assert ablation.main(["--table", "3", "--preset", "smoke", "--out", str(out), "--jobs", "2"]) == 0
    folder = out / "table3-smoke"
    for name in ("table.md", "table.csv", "table.png", "runs.json"):
        assert (folder / name).stat().st_size > 0
    with open(folder / "table.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["row"] for r in rows] == ["baseline", "cosine"]
    plan = plan_runs(get_table(3, "smoke").rows, 1, out)
    import json
    for r in rows:
        final = json.loads((plan[r["row"]][0].run_dir / "results_final.json").read_text())
        assert float(r["map_mean"]) == pytest.approx(100 * final["map"], abs=1e-4)
        assert int(r["parameters"]) > 0 and float(r["ms_per_image"]) > 0
    assert rows[0]["parameters"] == rows[1]["parameters"]
    assert "| + cosine lr schedule | 81.69 | +1.44 |" in (folder / "table.md").read_text()
    logs = {r: (plan[r][0].run_dir / "run.log").stat().st_mtime for r in plan}
    capsys.readouterr()
    assert ablation.main(["--table", "3", "--preset", "smoke", "--out", str(out)]) == 0
    assert "0 runs trained, 2 already finished" in capsys.readouterr().out
    assert {r: (plan[r][0].run_dir / "run.log").stat().st_mtime for r in plan} == logs


def test_crashed_run_is_reported_with_its_log_and_others_finish(tmp_path):
    good = get_table(3, "smoke").rows[0]
    bad = Row("bad", "bad", good.script, good.flags + ("--lr-mode", "bogus"))
    plan = plan_runs([bad, good], 1, tmp_path)
    outcomes = execute([plan["bad"][0], plan["baseline"][0]], jobs=1, report=lambda m: None)
    assert [o.status for o in outcomes] == ["failed", "ran"]
    assert outcomes[0].returncode == 2 and "invalid choice: 'bogus'" in outcomes[0].log.read_text()
    assert (plan["baseline"][0].run_dir / "results_final.json").is_file()


def test_killed_runner_resumes_cut_run_and_skips_finished(tmp_path):
    out = tmp_path / "abl"
    cmd = [sys.executable, "-m", "gluon_bof.tools.ablation", "--table", "3", "--preset", "smoke", "--out", str(out),
           "--no-cost", "--extra-args", "--epochs 24 --val-interval 12"]
    plan = plan_runs(get_table(3, "smoke").rows, 1, out, ["--epochs", "24", "--val-interval", "12"])
    first, second = plan["baseline"][0], plan["cosine"][0]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        metrics = second.run_dir / "metrics.csv"
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 3:
            break
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, output
    assert first.done and not second.done
    first_log = (first.run_dir / "run.log").read_text()
    result = subprocess.run(cmd, cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout
    assert "1 runs trained, 1 already finished" in result.stdout
    assert (first.run_dir / "run.log").read_text() == first_log
    log = (second.run_dir / "run.log").read_text()
    assert "--resume auto" in log and re.search(r"resumed from .*epoch \d+", log)
    with open(second.run_dir / "metrics.csv", newline="") as f:
        epochs = [int(r["epoch"]) for r in csv.DictReader(f)]
    assert epochs == list(range(24))
