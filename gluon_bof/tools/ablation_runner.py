"""Run the training commands of an ablation table as subprocesses: skip, resume, run in parallel.

Each run (row x seed) has its own folder ``OUT/runs/<script>-<hash>/seed<k>``, where the hash is
of the script and its flags: the same configuration in two tables (Table 1's 'no mixup' row is
Table 3's '+ class label smoothing' row) is trained once. A folder with ``results_final.json``
(or, for a row with an evaluation step, its evaluation results) is finished and skipped; any
other is started with ``--resume auto``, which continues a cut run exactly. Each run's output goes
to its own ``run.log``. A run that fails is reported with its exit code and log and does not
stop the others. SIGTERM/SIGINT to the runner are passed on to the trainings, which write a
checkpoint and exit; the children also receive SIGTERM if the runner dies without passing it on.
"""
import ctypes
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .ablation_presets import DEFAULT_SEED, Row

__all__ = ["Run", "plan_runs", "run_command", "eval_command", "execute", "repo_root", "final_params", "RunOutcome"]

RESULTS_FINAL = "results_final.json"
RUN_LOG = "run.log"
_PID_FILE = "run.pid"
_COMMAND_FILE = "command.json"


def repo_root() -> Path:
    """The folder holding the training scripts (the repository root of an editable install)."""
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Run:
    """One training run: ``script flags --seed S --save-dir run_dir``, plus an optional evaluation."""

    script: str
    flags: Tuple[str, ...]
    seed_index: int
    run_dir: Path
    evaluate: Optional[Tuple[str, Tuple[str, ...]]] = None

    @property
    def seed(self) -> int:
        return DEFAULT_SEED + self.seed_index

    @property
    def results_path(self) -> Path:
        """The results file that holds this run's measured mAP."""
        if self.evaluate is None:
            return self.run_dir / RESULTS_FINAL
        return self.run_dir / ("results_%s.json" % _digest(self.evaluate[0], self.evaluate[1]))

    @property
    def done(self) -> bool:
        return self.results_path.is_file()


def _digest(script: str, flags: Sequence[str]) -> str:
    return hashlib.sha1(" ".join((script,) + tuple(flags)).encode("utf-8")).hexdigest()[:10]


def plan_runs(rows: Sequence[Row], seeds: int, out_dir: Path, extra_args: Sequence[str] = ()) -> Dict[str, List[Run]]:
    """``{row key: [Run per seed]}``; ``extra_args`` are appended to every training command."""
    plan: Dict[str, List[Run]] = {}
    for row in rows:
        flags = tuple(row.flags) + tuple(extra_args)
        folder = Path(out_dir) / "runs" / ("%s-%s" % (Path(row.script).stem, _digest(row.script, flags)))
        plan[row.key] = [Run(row.script, flags, k, folder / ("seed%d" % k), row.evaluate) for k in range(seeds)]
    return plan


def run_command(run: Run, python: str = "python") -> List[str]:
    """The training command of ``run`` (seed index 0 keeps the script's default seed, unspelled)."""
    seed = ["--seed", str(run.seed)] if run.seed_index else []
    return [python, run.script, *run.flags, *seed, "--save-dir", str(run.run_dir)]


def final_params(run_dir: Path) -> Optional[Path]:
    """The weights of the last epoch (the highest ``epochNNNN.params``), or None."""
    found = sorted(Path(run_dir).glob("epoch[0-9][0-9][0-9][0-9].params"))
    return found[-1] if found else None


def eval_command(run: Run, python: str = "python") -> List[str]:
    """The evaluation command of a run with an ``evaluate`` step (weights of its last epoch)."""
    assert run.evaluate is not None
    script, flags = run.evaluate
    params = final_params(run.run_dir) or (run.run_dir / "epochNNNN.params")
    return [python, script, "--params", str(params), *flags, "--results", str(run.results_path)]


@dataclass
class RunOutcome:
    """What happened to one run: 'skipped' (already finished), 'ran', 'failed' or 'interrupted'."""

    run: Run
    status: str
    returncode: Optional[int] = None
    seconds: float = 0.0

    @property
    def log(self) -> Path:
        return self.run.run_dir / RUN_LOG


def _set_parent_death_signal() -> None:
    """In the child: receive SIGTERM when the runner dies, so no training outlives it (Linux only)."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _wait_for_stale(run_dir: Path, timeout: float = 120.0) -> None:
    """Wait until a training left by an earlier runner in ``run_dir`` has exited (it checkpoints)."""
    pid_file = run_dir / _PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    end = time.time() + timeout
    while time.time() < end:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.5)
    pid_file.unlink(missing_ok=True)


class _Slot:
    """A run in progress: its process and the steps still to do (training, then evaluation)."""

    def __init__(self, run: Run, steps: List[List[str]], env: Dict[str, str], cwd: Path):
        self.run, self.steps, self.env, self.cwd = run, steps, env, cwd
        self.start = time.time()
        self.proc: Optional[subprocess.Popen] = None
        self._next()

    def _next(self) -> None:
        cmd = self.steps.pop(0)
        self.run.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run.run_dir / RUN_LOG, "a", encoding="utf-8") as log:
            log.write("\n$ %s\n" % " ".join(shlex.quote(w) for w in cmd))
            log.flush()
            self.proc = subprocess.Popen(cmd, cwd=str(self.cwd), env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, preexec_fn=_set_parent_death_signal)
        (self.run.run_dir / _PID_FILE).write_text("%d\n" % self.proc.pid)

    def poll(self) -> Optional[int]:
        """None while running; the exit code when every step is over (the first failing one's)."""
        assert self.proc is not None
        code = self.proc.poll()
        if code is None:
            return None
        if code == 0 and self.steps:
            self.steps[0] = [w if w != str(self.run.run_dir / "epochNNNN.params") else
                             str(final_params(self.run.run_dir)) for w in self.steps[0]]
            self._next()
            return None
        (self.run.run_dir / _PID_FILE).unlink(missing_ok=True)
        return code


def execute(runs: Sequence[Run], jobs: int = 1, python: str = sys.executable,
            cwd: Optional[Path] = None, threads: int = 1,
            report: Callable[[str], None] = print, stop: Optional[Callable[[], bool]] = None) -> List[RunOutcome]:
    """Run every unfinished run, ``jobs`` at a time; returns one outcome per run, in input order.

    Each child gets ``OMP_NUM_THREADS=threads`` unless the environment sets it. ``stop()`` (polled
    twice a second) returning True sends SIGTERM to the running trainings, waits for their
    checkpoints and returns them as 'interrupted'; nothing new is started.
    """
    cwd = cwd or repo_root()
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(threads))
    outcomes: Dict[int, RunOutcome] = {}
    queue: List[int] = []
    for i, run in enumerate(runs):
        if run.done:
            outcomes[i] = RunOutcome(run, "skipped")
        else:
            queue.append(i)
    active: Dict[int, _Slot] = {}
    stopping = False
    while queue or active:
        if stop is not None and stop() and not stopping:
            stopping = True
            queue.clear()
            for slot in active.values():
                if slot.proc is not None and slot.proc.poll() is None:
                    slot.proc.send_signal(signal.SIGTERM)
        busy = {slot.run.run_dir for slot in active.values()}
        while len(active) < max(1, jobs):
            # runs sharing a folder (one training, several evaluations) go one after the other
            i = next((j for j in queue if runs[j].run_dir not in busy), -1)
            if i < 0:
                break
            queue.remove(i)
            run = runs[i]
            busy.add(run.run_dir)
            _wait_for_stale(run.run_dir)
            if run.done:
                outcomes[i] = RunOutcome(run, "skipped")
                continue
            train = run_command(run, python)
            if run.run_dir.is_dir() and any(run.run_dir.glob("*.manifest.json")):
                train += ["--resume", "auto"]
            steps = [] if (run.run_dir / RESULTS_FINAL).is_file() else [train]
            if run.evaluate is not None:
                steps.append(eval_command(run, python))
            run.run_dir.mkdir(parents=True, exist_ok=True)
            (run.run_dir / _COMMAND_FILE).write_text(json.dumps(
                {"script": run.script, "flags": list(run.flags), "seed": run.seed}, indent=1) + "\n")
            report("start  %s" % " ".join(shlex.quote(w) for w in run_command(run)))
            active[i] = _Slot(run, steps, env, cwd)
        for i in list(active):
            code = active[i].poll()
            if code is None:
                continue
            slot = active.pop(i)
            seconds = time.time() - slot.start
            if code == 0 and runs[i].done:
                status = "ran"
            elif stopping:
                status = "interrupted"
            else:
                status = "failed"
            outcomes[i] = RunOutcome(runs[i], status, code, seconds)
            report("%-6s %s (exit %s, %.0f s, log %s)" % (status, runs[i].run_dir, code, seconds, outcomes[i].log))
        time.sleep(0.5)
    return [outcomes[i] for i in range(len(runs))]
