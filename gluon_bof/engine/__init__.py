"""Model-agnostic training engine: devices and kvstores, SyncBN, the train loop, atomic checkpoints.

It knows no detector and imports nothing from ``data``, ``model`` or ``metrics``: a detector plugs in
through a :class:`TrainTask`, a loader and a validation function (``gluon_bof.recipes`` builds them).

Modules: ``context`` (``--gpus``/``--ctx`` parsing, batch splitting, the SyncBN rule, per-device threads),
``optim`` (Trainer over a kvstore, ``--no-wd``, update counters), ``checkpoint`` (atomic save, verify,
exact resume), ``logger`` (log file, CSV/JSON metrics, TensorBoard, tqdm), ``loop`` (:func:`fit`),
``evaluate`` (the evaluation loop), ``distributed`` (``dist_sync`` jobs on one machine or over ssh). See docs/engine.md.
"""
from .checkpoint import (CheckpointError, check_architecture, find_latest, load_checkpoint, resolve_resume,
                         save_checkpoint, verify_checkpoint)
from .context import DevicesBlockedError, norm_layer_for, parse_contexts, run_per_device, split_batch
from .logger import RunLogger
from .interrupt import TrainingInterrupted
from .loop import FitResult, NonFiniteLossError, TrainTask, batch_seed, dist_info, fit
from .optim import NO_WD_PATTERN, apply_no_wd, build_trainer, release_kvstore, set_update_count, update_count

__all__ = ["CheckpointError", "check_architecture", "find_latest", "load_checkpoint", "resolve_resume",
           "save_checkpoint", "verify_checkpoint", "DevicesBlockedError", "norm_layer_for", "parse_contexts", "run_per_device",
           "split_batch", "RunLogger", "FitResult", "NonFiniteLossError", "TrainTask", "dist_info", "batch_seed", "TrainingInterrupted",
           "fit", "NO_WD_PATTERN", "apply_no_wd", "build_trainer", "release_kvstore", "set_update_count", "update_count"]
