"""Training records: plain log file, per-epoch CSV/JSON metrics, TensorBoard events, tqdm bars.

Files in ``save_dir``:

``train.log``       human-readable log (also echoed to the ``gluon_bof.engine`` logger).
``metrics.csv``     one row per epoch: epoch, lr, images/s, mean loss components, validation metrics.
``metrics.json``    the same rows as a JSON list (rewritten atomically each epoch).
``tb/``             TensorBoard event files, when ``tensorboardX`` is installed.

On resume, rows of epochs at or after the resumed epoch are dropped so the files describe one run.
"""
import csv
import json
import logging
import math
import os
from typing import Any, Dict, List, Mapping, Optional

from tqdm import tqdm

from .checkpoint import atomic_write

__all__ = ["RunLogger"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunLogger:
    """Writes the records of one training run (or of one resumed run, appended).

    Parameters
    ----------
    save_dir : str
        Output directory.
    start_epoch : int
        First epoch this run trains; rows from it on are removed from earlier files.
    tensorboard : bool
        Write TensorBoard events if ``tensorboardX`` imports.
    progress : bool
        Show a tqdm bar per epoch.
    enabled : bool
        False on non-zero ranks of a distributed run: nothing is written.
    """

    def __init__(self, save_dir: str, start_epoch: int = 0, tensorboard: bool = True, progress: bool = True,
                 enabled: bool = True) -> None:
        self.save_dir = os.fspath(save_dir)
        self.enabled = enabled
        self.progress = progress and enabled
        self.logger = logging.getLogger("gluon_bof.engine")
        self.logger.setLevel(logging.INFO)
        self._handler: Optional[logging.Handler] = None
        self._tb = None
        self.rows: List[Dict[str, Any]] = []
        self._bar: Optional[tqdm] = None
        if not enabled:
            return
        os.makedirs(self.save_dir, exist_ok=True)
        self._handler = logging.FileHandler(os.path.join(self.save_dir, "train.log"), encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self.logger.addHandler(self._handler)
        json_path = os.path.join(self.save_dir, "metrics.json")
        if os.path.exists(json_path):
            with open(json_path, "r", encoding="utf-8") as f:
                self.rows = [r for r in json.load(f) if int(r["epoch"]) < start_epoch]
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                self.logger.info("tensorboardX is not installed: no TensorBoard events")
            else:
                self._tb = SummaryWriter(os.path.join(self.save_dir, "tb"), purge_step=None)

    # ---------------------------------------------------------------------------- messages
    def info(self, msg: str, *args: Any) -> None:
        if self.enabled:
            self.logger.info(msg, *args)

    def warning(self, msg: str, *args: Any) -> None:
        if self.enabled:
            self.logger.warning(msg, *args)

    def error(self, msg: str, *args: Any) -> None:
        if self.enabled:
            self.logger.error(msg, *args)

    # ---------------------------------------------------------------------------- progress bar
    def start_epoch(self, epoch: int, total: int, initial: int = 0) -> None:
        if self.progress:
            self._bar = tqdm(total=total, initial=initial, desc=f"epoch {epoch}", leave=False, dynamic_ncols=True)

    def step(self, global_step: int, losses: Mapping[str, float], lr: float, speed: float) -> None:
        """One iteration: update the bar and the per-iteration TensorBoard scalars."""
        if self._bar is not None:
            self._bar.set_postfix({**{k: f"{v:.3f}" for k, v in losses.items()}, "lr": f"{lr:.2e}",
                                   "img/s": f"{speed:.1f}"}, refresh=False)
            self._bar.update(1)
        if self._tb is not None:
            for name, value in losses.items():
                self._tb.add_scalar(f"train/{name}", value, global_step)
            self._tb.add_scalar("train/lr", lr, global_step)

    def end_epoch(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # ---------------------------------------------------------------------------- per-epoch rows
    def epoch_row(self, row: Mapping[str, Any]) -> None:
        """Record the metrics of one epoch (``row['epoch']`` required) in CSV, JSON and TensorBoard."""
        if not self.enabled:
            return
        row = {k: _jsonable(v) for k, v in row.items()}
        self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]
        atomic_write(os.path.join(self.save_dir, "metrics.json"), lambda tmp: self._dump_json(tmp))
        atomic_write(os.path.join(self.save_dir, "metrics.csv"), lambda tmp: self._dump_csv(tmp))
        if self._tb is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)) and value is not None:
                    self._tb.add_scalar(f"epoch/{key}", value, row["epoch"])
            self._tb.flush()

    def _dump_json(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.rows, f, indent=1, allow_nan=False)

    def _dump_csv(self, path: str) -> None:
        fields: List[str] = []
        for r in self.rows:
            fields += [k for k in r if k not in fields]
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(self.rows)

    def close(self) -> None:
        self.end_epoch()
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._handler is not None:
            self._handler.flush()
            self.logger.removeHandler(self._handler)
            self._handler.close()
            self._handler = None
