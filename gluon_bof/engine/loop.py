"""The training loop shared by the detectors: :func:`fit`.

A detector plugs in through a small task object (:class:`TrainTask`): how to split a batch over the
devices and which per-image loss vectors the network produces. :func:`fit` does the rest, the same
way for YOLOv3 and Faster R-CNN:

* per epoch: options (mixup on/off) from ``epoch_options(epoch)``, batches from
  ``loader.iter_epoch(epoch, start_batch, options)``;
* per batch: ``mx.random`` reseeded from ``(seed, epoch, batch)`` when the task's forward draws
  random numbers (in-graph random draws are then the same after a resume at any batch); one thread
  per device runs forward under ``autograd.record()`` and backward of the sum of the loss
  components; while the engine computes them, this thread receives the next batch and copies it to
  the devices (a loader error is raised after the batch in flight, where it would have been met);
  non-finite losses stop training *before* the update; then
  ``trainer.step(global_batch)``; a rolling ``last`` checkpoint every ``checkpoint_minutes``, and
  one at once on SIGINT/SIGTERM (then :class:`TrainingInterrupted`);
* per epoch end: metrics rows, periodic checkpoints every ``save_interval`` epochs and at the end
  (written *before* validation, so a failing validation loses no training), validation every
  ``val_interval`` epochs (results file, ``best`` checkpoint, ``best_map.log``).

Resuming (``resume='auto'`` or a path) restores weights, ``lr_mult``/``wd_mult``, momentum, the
update count (so the LR schedule continues), the epoch/batch position (mid-epoch included, with the
epoch's running loss sums) and the best mAP. Because the loader is a pure function of ``(seed,
epoch, batch)``, a resumed run trains on exactly the batches an uninterrupted one would have seen.
"""
import glob
import json
import math
import os
import platform
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from .checkpoint import (MANIFEST_SUFFIX, CheckpointError, atomic_write, load_checkpoint, read_manifest,
                         remove_checkpoint, resolve_resume, save_checkpoint)
from .context import DevicesBlockedError, run_per_device
from .interrupt import StopRequest, TrainingInterrupted
from .logger import RunLogger
from .optim import param_multipliers, update_count

# Seconds to wait for the devices after one failed before declaring them blocked.
DRAIN_SECONDS = 120.0

__all__ = ["TrainTask", "NonFiniteLossError", "FitResult", "fit", "batch_seed", "dist_info", "TrainingInterrupted"]


class TrainTask(Protocol):
    """What :func:`fit` needs to know about a detector.

    Attributes
    ----------
    loss_names : sequence of str
        Names of the loss components, e.g. ``('obj', 'center', 'scale', 'cls')``.
    draws_random : bool
        Whether the training forward draws from ``mx.random`` (e.g. Faster R-CNN's RoI sampling).
        Only then is ``mx.random`` reseeded before every batch: a reseed is an engine operation of
        its own, serialized with the network's operators. A task without the attribute is taken to
        draw.
    """

    loss_names: Sequence[str]
    draws_random: bool

    def split(self, batch: tuple, ctxs: Sequence[mx.Context]) -> List[tuple]:
        """Per-device tuples of NDArrays (usually :func:`gluon_bof.engine.split_batch`)."""

    def losses(self, net: gluon.Block, device_batch: tuple) -> Sequence[mx.nd.NDArray]:
        """Loss components for one device, each of shape ``(per-device batch,)``; called while recording."""


class NonFiniteLossError(FloatingPointError):
    """A loss component became NaN or infinite; training stopped before applying the update."""


@dataclass
class FitResult:
    """Where :func:`fit` stopped: next epoch to run, update count, best metric, and the epoch rows."""

    next_epoch: int
    global_step: int
    best_map: float
    rows: List[Dict[str, Any]] = field(default_factory=list)


def batch_seed(seed: int, epoch: int, batch: int) -> int:
    """Seed of ``mx.random`` for one batch: a pure function of ``(seed, epoch, batch)``, so a run resumed
    at any batch draws the same in-graph random numbers (e.g. Faster R-CNN's RoI sampling)."""
    return (int(seed) * 1_000_003 + int(epoch) * 100_003 + int(batch)) % (2 ** 31 - 1)


def dist_info(trainer: gluon.Trainer) -> Tuple[int, int]:
    """``(rank, num_workers)`` of the trainer's kvstore: ``(0, 1)`` unless it is a dist kvstore."""
    kv = trainer._kvstore_params.get("kvstore")
    if isinstance(kv, mx.kvstore.KVStore) and kv.type.startswith("dist"):
        return int(kv.rank), int(kv.num_workers)
    return 0, 1


def _versions() -> Dict[str, str]:
    from .. import __version__
    return {"gluon_bof": __version__, "mxnet": mx.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def write_json(path: str, results: Any) -> None:
    """Default writer of a validation's results: plain JSON, written atomically."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
            f.write("\n")
    atomic_write(path, write)


def _check_inputs(loader: Any, task: Any, ctxs: Sequence[mx.Context], epochs: int, val_interval: int,
                  save_interval: int) -> None:
    for name in ("iter_epoch", "num_batches"):
        if not callable(getattr(loader, name, None)):
            raise TypeError(f"fit: train_loader {type(loader).__name__} has no {name}() (expected the "
                            f"gluon_bof.data.loader.DetectionLoader interface)")
    for name in ("split", "losses"):
        if not callable(getattr(task, name, None)):
            raise TypeError(f"fit: task {type(task).__name__} has no {name}() (see gluon_bof.engine.TrainTask)")
    if not getattr(task, "loss_names", None):
        raise TypeError(f"fit: task {type(task).__name__} has no loss_names")
    if not ctxs:
        raise ValueError("fit: ctxs is empty")
    if int(epochs) < 1:
        raise ValueError(f"fit: epochs must be >= 1, got {epochs}")
    if int(val_interval) < 1 or int(save_interval) < 0:
        raise ValueError(f"fit: val_interval must be >= 1 and save_interval >= 0, got {val_interval}, "
                         f"{save_interval}")


def fit(net: gluon.Block, task: TrainTask, train_loader: Any, trainer: gluon.Trainer, ctxs: Sequence[mx.Context],
        epochs: int, save_dir: str, *, resume: Optional[str] = None,
        validate_fn: Optional[Callable[[gluon.Block, int], Tuple[Sequence[str], Sequence[float], Any]]] = None,
        val_interval: int = 1, save_interval: int = 10, keep_last: int = 0,
        epoch_options: Optional[Callable[[int], Dict[str, Any]]] = None, seed: int = 233,
        args: Optional[Mapping[str, Any]] = None, stop_epoch: Optional[int] = None, progress: bool = True,
        tensorboard: bool = True, log_interval: int = 0,
        write_results: Callable[[str, Any], None] = write_json, checkpoint_minutes: float = 0.0,
        resume_command: Optional[str] = None, amp_loss_scaling: bool = False) -> FitResult:
    """Train ``net`` for ``epochs`` epochs (GluonCV's loop, plus exact resume and safety checks).

    Parameters
    ----------
    net : gluon.Block
        Initialized on ``ctxs``; ``trainer`` built over its parameters (:func:`build_trainer`).
    task : TrainTask
        Splits batches and computes the per-image loss components.
    train_loader :
        ``iter_epoch(epoch, start_batch, options)`` and ``num_batches(epoch)``; batches are tuples of
        numpy arrays whose first array holds the images (its length is the batch size). In a dist
        run each worker takes rows ``[rank*B/n, (rank+1)*B/n)`` of the global batch, unless the loader
        has ``set_shard(rank, num_workers)``, which is then called and whose batches are the local part.
    trainer : gluon.Trainer
        Its optimizer carries the LR scheduler (``num_update`` starts at 1, counts global steps).
    ctxs : list of Context
        Devices of this process.
    epochs : int
        Total epochs of the run (not of this call).
    save_dir : str
        Checkpoints, logs, metrics and results files.
    resume : str, optional
        ``'auto'`` (latest complete checkpoint in ``save_dir``, or a fresh start if there is none), a
        checkpoint path, or None.
    validate_fn : callable, optional
        ``validate_fn(net, epoch) -> (metric_names, values, results)``; ``values[-1]`` is the mAP used
        for ``best``. ``results`` goes to ``results_epoch{E}.json``.
    val_interval, save_interval : int
        Validate when ``(epoch + 1) % val_interval == 0``; checkpoint when ``(epoch + 1) %
        save_interval == 0`` (0: only at the end) and after the last epoch of this call.
    keep_last : int
        Keep only the newest ``keep_last`` periodic checkpoints (0 keeps all; ``best`` is never removed).
    epoch_options : callable, optional
        ``epoch -> options`` for the loader, e.g. ``{'mixup': epoch < epochs - 20}``.
    seed : int
        Seed of ``mx.random`` (reseeded before every batch with :func:`batch_seed` when
        ``task.draws_random``).
    args : mapping, optional
        Resolved command-line arguments, stored in every checkpoint.
    stop_epoch : int, optional
        Return after this epoch index is done and checkpointed (a planned stop; continue with
        ``resume``). The LR schedule still spans ``epochs``.
    log_interval : int
        Also write a log line every ``log_interval`` batches (GluonCV's ``--log-interval``; 0: off).
    write_results : callable
        ``write_results(path, results)`` stores a validation's ``results`` (default: plain JSON); the
        recipes pass the results-file writer of ``gluon_bof.metrics``.
    checkpoint_minutes : float
        Also write a rolling ``last`` checkpoint at batch granularity whenever this many minutes passed
        since the previous checkpoint (0: off), so a crash loses at most that much work.
    resume_command : str, optional
        The command that continues the run, printed when a signal stops it.
    amp_loss_scaling : bool
        Backward through ``mxnet.contrib.amp.scale_loss`` (mixed precision: the trainer must have been
        passed to ``amp.init_trainer``; GPU only).

    Returns
    -------
    FitResult

    Raises
    ------
    TrainingInterrupted
        SIGINT or SIGTERM arrived: the current batch was finished and a checkpoint written at the
        next batch position; ``exit_code`` is 130 / 143.
    NonFiniteLossError
        A loss component is NaN/inf; the message has the epoch, batch, update index and every
        component. The update is not applied and nothing is saved.
    CheckpointError
        ``resume`` names a missing, incomplete, corrupt or architecture-mismatched checkpoint, or a
        checkpoint could not be written (disk full, read-only folder): training stops with the path
        and the OS error, the previous checkpoints stay intact.
    """
    _check_inputs(train_loader, task, ctxs, epochs, val_interval, save_interval)
    ctxs = list(ctxs)
    save_dir = os.fspath(save_dir)
    rank, num_workers = dist_info(trainer)
    if num_workers > 1 and callable(getattr(train_loader, "set_shard", None)):
        train_loader.set_shard(rank, num_workers)
        slice_batches = False
    else:
        slice_batches = num_workers > 1
    loss_names = list(task.loss_names)
    reseed = bool(getattr(task, "draws_random", True))
    threaded = len(ctxs) > 1 and _has_syncbn(net)

    manifest_path = resolve_resume(resume, save_dir)
    start_epoch, start_batch, best_map = 0, 0, -math.inf
    if manifest_path is not None:
        try:
            meta = load_checkpoint(manifest_path, net, trainer, ctxs)
        except CheckpointError as err:
            saved_args = (read_manifest(manifest_path).get("meta") or {}).get("args") or {}
            changed = _changed_args(saved_args, args)
            if changed:
                raise CheckpointError(f"{err}\n  the run's arguments differ from the checkpoint's: {changed}; resume "
                                      f"with the checkpoint's arguments or start a new --save-dir") from None
            raise
        start_epoch, start_batch = int(meta["epoch"]), int(meta.get("batch", 0))
        best_map = _best_map_so_far(save_dir, meta)
    log = RunLogger(save_dir, start_epoch=start_epoch, tensorboard=tensorboard, progress=progress,
                    enabled=(rank == 0))
    if manifest_path is not None:
        log.info("resumed from %s: epoch %d, batch %d, update %d, best mAP %s", manifest_path, start_epoch,
                 start_batch, update_count(trainer), best_map)
        changed = _changed_args(meta.get("args") or {}, args)
        if changed:
            log.warning("resuming with arguments that differ from the checkpoint's (%s); the LR schedule, "
                        "momentum and lr/wd multipliers are the checkpoint's", changed)
    if num_workers > 1:
        log.info("distributed: rank %d of %d workers", rank, num_workers)

    def meta_for(next_epoch: int, options: Dict[str, Any], batch: int = 0,
                 partial: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        meta = {"epoch": next_epoch, "batch": batch, "global_step": update_count(trainer),
                "iters_per_epoch": int(train_loader.num_batches(max(next_epoch - (0 if batch else 1), 0))),
                "best_map": None if not math.isfinite(best_map) else best_map, "seed": int(seed),
                "loader": {k: getattr(train_loader, k) for k in ("seed", "batch_size", "shape_interval")
                           if isinstance(getattr(train_loader, k, None), int)},
                "epoch_options": {k: v for k, v in options.items() if isinstance(v, (bool, int, float, str))},
                "multipliers": param_multipliers(net), "num_devices": len(ctxs), "num_workers": num_workers,
                "args": dict(args) if args is not None else None, "versions": _versions()}
        if partial is not None:
            meta["partial_epoch"] = partial
        return meta

    def save(tag: str, meta: Dict[str, Any]) -> str:
        """Write a checkpoint (rank 0); a failure stops training with the path and the OS error."""
        try:
            return save_checkpoint(save_dir, tag, net, trainer, meta)
        except CheckpointError as err:
            log.error("%s; training stopped: the previous checkpoints and every logged row are intact", err)
            raise

    partial = (meta.get("partial_epoch") if manifest_path is not None else None) or {}
    if manifest_path is not None and start_batch:
        log.info("resuming inside epoch %d at batch %d", start_epoch, start_batch)
    last_epoch = epochs - 1 if stop_epoch is None else min(int(stop_epoch), epochs - 1)
    checkpoint_seconds = 60.0 * float(checkpoint_minutes)
    last_save = time.time()
    try:
        with StopRequest() as stop:
            for epoch in range(start_epoch, last_epoch + 1):
                options = dict(epoch_options(epoch)) if epoch_options is not None else {}
                total = int(train_loader.num_batches(epoch))
                first = start_batch if epoch == start_epoch else 0
                sums = np.zeros(len(loss_names))
                images, tic = 0, time.time()
                if first and partial:
                    sums = np.asarray(partial["loss_sums"], dtype=np.float64)
                    images, tic = int(partial["images"]), tic - float(partial["time_sec"])
                log.start_epoch(epoch, total, first)
                batches = enumerate(train_loader.iter_epoch(epoch, first, options), start=first)
                upcoming, deferred = _next_prepared(batches, task, ctxs, rank, num_workers, slice_batches)
                while upcoming is not None:
                    b, batch, device_batches, global_bs = upcoming
                    if reseed:
                        mx.random.seed(batch_seed(seed, epoch, b))
                    pushed = _push_forward_backward(net, task, device_batches, ctxs, len(loss_names), threaded,
                                                    trainer if amp_loss_scaling else None)
                    # While the engine computes this batch, this thread receives and copies the next one
                    # (an error doing so is raised after this batch, where the loop would have met it).
                    upcoming, deferred = _next_prepared(batches, task, ctxs, rank, num_workers, slice_batches)
                    values = _loss_sums(pushed)
                    local_bs = int(np.shape(batch[0])[0])
                    per_image = values / local_bs
                    step = update_count(trainer) + 1
                    if not np.all(np.isfinite(per_image)):
                        comps = ", ".join(f"{n}={v:.6g}" for n, v in zip(loss_names, per_image))
                        msg = (f"non-finite loss at iteration {step} (epoch {epoch}, batch {b}): {comps}; "
                               f"training stopped before this update, nothing saved after it")
                        log.error(msg)
                        raise NonFiniteLossError(msg)
                    trainer.step(global_bs)
                    sums += values
                    images += local_bs
                    speed = images / max(time.time() - tic, 1e-9)
                    log.step(step, dict(zip(loss_names, per_image)), float(trainer.learning_rate), speed)
                    if log_interval and (b + 1) % log_interval == 0:
                        log.info("[epoch %d][batch %d] %s, lr=%.6g, %.1f img/s", epoch, b,
                                 ", ".join(f"{n}={s / images:.4g}" for n, s in zip(loss_names, sums)),
                                 float(trainer.learning_rate), speed)
                    timed = checkpoint_seconds > 0 and time.time() - last_save >= checkpoint_seconds
                    if (stop.signum is not None or timed) and b + 1 < total:
                        partial_state = {"loss_sums": [float(v) for v in sums], "images": images,
                                         "time_sec": time.time() - tic}
                        if rank == 0:
                            path = save("last", meta_for(epoch, options, b + 1, partial_state))
                            log.info("[epoch %d][batch %d] saved %s", epoch, b, path)
                        last_save = time.time()
                    if stop.signum is not None and b + 1 < total:
                        raise _interrupted(stop, log, epoch, b + 1, resume_command)
                if deferred is not None:
                    raise deferred
                log.end_epoch()
                elapsed = time.time() - tic
                row: Dict[str, Any] = {"epoch": epoch, "lr": float(trainer.learning_rate),
                                       "global_step": update_count(trainer),
                                       "images_per_sec": images / max(elapsed, 1e-9), "time_sec": elapsed}
                row.update({f"loss_{n}": (s / images if images else float("nan"))
                            for n, s in zip(loss_names, sums)})
                log.info("[epoch %d] %s", epoch, ", ".join(
                    f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items() if k != "epoch"))
                periodic = save_interval and (epoch + 1) % save_interval == 0
                must_save = periodic or epoch == last_epoch or stop.signum is not None
                if rank == 0 and must_save:
                    try:
                        path = save(f"epoch{epoch:04d}", meta_for(epoch + 1, options))
                    except CheckpointError:
                        log.epoch_row(row)
                        raise
                    log.info("[epoch %d] saved %s", epoch, path)
                    last_save = time.time()
                    if keep_last:
                        _prune(save_dir, keep_last)
                if validate_fn is not None and (epoch + 1) % val_interval == 0 and rank == 0:
                    try:
                        names, vals, results = validate_fn(net, epoch)
                    except Exception as err:  # the trained epoch is saved: report, keep training
                        log.error("[epoch %d] validation failed (%s: %s); the epoch's training is saved, training "
                                  "continues", epoch, type(err).__name__, err)
                        row["validation_error"] = f"{type(err).__name__}: {err}"
                    else:
                        write_results(os.path.join(save_dir, f"results_epoch{epoch:04d}.json"), results)
                        row.update({str(n): float(v) for n, v in zip(names, vals)})
                        current = float(vals[-1]) if len(vals) else float("nan")
                        log.info("[epoch %d] validation: %s", epoch, ", ".join(
                            f"{n}={float(v):.4f}" for n, v in zip(names, vals)))
                        if math.isfinite(current) and current > best_map:
                            best_map = current
                            save("best", meta_for(epoch + 1, options))
                            with open(os.path.join(save_dir, "best_map.log"), "a", encoding="utf-8") as f:
                                f.write(f"{epoch:04d}:\t{current:.4f}\n")
                log.epoch_row(row)
                if stop.signum is not None and epoch < last_epoch:
                    raise _interrupted(stop, log, epoch + 1, 0, resume_command)
    finally:
        log.close()
    return FitResult(next_epoch=last_epoch + 1, global_step=update_count(trainer),
                     best_map=best_map, rows=list(log.rows))


def _interrupted(stop: StopRequest, log: RunLogger, epoch: int, batch: int,
                 resume_command: Optional[str]) -> TrainingInterrupted:
    """The exception that ends an interrupted run, after logging where it stopped and how to resume."""
    name = signal.Signals(stop.signum).name
    how = resume_command or "the same command with --resume auto"
    message = (f"{name}: stopped at epoch {epoch}, batch {batch}, checkpoint written; resume exactly with:\n  "
               f"{how}")
    log.info(message)
    return TrainingInterrupted(message, stop.exit_code)


def _best_map_so_far(save_dir: str, meta: Mapping[str, Any]) -> float:
    """Best validation mAP of the run: the resumed checkpoint's, or the ``best`` checkpoint's when higher
    (epoch checkpoints are written before their epoch's validation)."""
    values = [meta.get("best_map")]
    best = os.path.join(save_dir, "best" + MANIFEST_SUFFIX)
    if os.path.exists(best):
        try:
            values.append(read_manifest(best)["meta"].get("best_map"))
        except CheckpointError:
            pass
    values = [float(v) for v in values if v is not None]
    return max(values) if values else -math.inf


def _changed_args(saved: Mapping[str, Any], current: Optional[Mapping[str, Any]]) -> str:
    """``"name: saved -> current, ..."`` for the arguments that differ (``resume`` and the raw command
    line ``argv`` left aside: they change with every resume)."""
    current = current or {}
    keys = sorted(k for k in set(saved) & set(current) if k not in ("resume", "argv") and saved[k] != current[k])
    return ", ".join(f"{k}: {saved[k]!r} -> {current[k]!r}" for k in keys)


def _has_syncbn(net: gluon.Block) -> bool:
    found = []
    net.apply(lambda block: found.append(isinstance(block, gluon.contrib.nn.SyncBatchNorm)))
    return any(found)


def _next_prepared(batches: Any, task: TrainTask, ctxs: List[mx.Context], rank: int, num_workers: int,
                   slice_batches: bool) -> Tuple[Optional[tuple], Optional[Exception]]:
    """The next batch made ready for the devices: ``((b, batch, device_batches, global_bs), None)``.

    ``batch`` is this process's part (its slice of the global batch when ``slice_batches``) and
    ``device_batches`` what ``task.split`` made of it. ``(None, None)`` at the end of the epoch;
    ``(None, error)`` when receiving or preparing it failed, so that the caller can finish the
    batch in flight first.
    """
    try:
        b, batch = next(batches)
    except StopIteration:
        return None, None
    except Exception as err:  # e.g. a data worker died: reported after the batch in flight
        return None, err
    try:
        global_bs = int(np.shape(batch[0])[0])
        if slice_batches:
            if global_bs % num_workers:
                raise ValueError(f"fit: global batch {global_bs} not divisible by {num_workers} workers")
            part = global_bs // num_workers
            batch = tuple(a[rank * part:(rank + 1) * part] for a in batch)
        elif num_workers > 1:
            global_bs *= num_workers
        device_batches = task.split(batch, ctxs)
        if len(device_batches) != len(ctxs):
            raise ValueError(f"fit: task.split returned {len(device_batches)} parts for {len(ctxs)} devices")
    except Exception as err:
        return None, err
    return (b, batch, device_batches, global_bs), None


def _push_forward_backward(net: gluon.Block, task: TrainTask, device_batches: List[tuple], ctxs: List[mx.Context],
                           n_losses: int, threaded: bool,
                           amp_trainer: Optional[gluon.Trainer] = None) -> List[mx.nd.NDArray]:
    """Push forward + backward on every device; per device, its ``(n_losses,)`` loss sums (not waited for).

    With SyncBN on several devices each device runs in its own thread (see ``context`` module);
    otherwise all devices are pushed from this thread, as GluonCV does (MXNet runs them in parallel).
    """

    def work(i: int) -> mx.nd.NDArray:
        with autograd.record():
            losses = list(task.losses(net, device_batches[i]))
            if len(losses) != n_losses:
                raise ValueError(f"fit: task.losses returned {len(losses)} components, loss_names has {n_losses}")
            head = losses[0] if n_losses == 1 else mx.nd.add_n(*losses)
            if amp_trainer is not None:
                from mxnet.contrib import amp
                with amp.scale_loss(head, amp_trainer) as scaled:
                    head = scaled
        head.backward()
        return mx.nd.concat(*[loss.sum().reshape((1,)) for loss in losses], dim=0)

    if not threaded:
        return [work(i) for i in range(len(ctxs))]
    try:
        return run_per_device(work, len(ctxs))
    except DevicesBlockedError:
        raise
    except BaseException as exc:
        if not _engine_drains(DRAIN_SECONDS):
            raise DevicesBlockedError(
                f"{type(exc).__name__}: {exc} {' '.join(getattr(exc, '__notes__', []))}; the other devices "
                f"are still blocked in SyncBatchNorm {DRAIN_SECONDS:g} s later, waiting for the failed one; "
                f"MXNet cannot cancel them, so restart the process (resume from the last checkpoint)") from exc
        raise


def _loss_sums(per_device: List[mx.nd.NDArray]) -> np.ndarray:
    """Wait for the pushed batch; the per-component loss sums over this process's images (float64)."""
    return np.sum([v.asnumpy().astype(np.float64) for v in per_device], axis=0)


def _engine_drains(timeout: float) -> bool:
    """True when ``mx.nd.waitall()`` returns within ``timeout`` seconds (no device is stuck)."""
    waiter = threading.Thread(target=mx.nd.waitall, name="gluon_bof-drain", daemon=True)
    waiter.start()
    waiter.join(timeout)
    return not waiter.is_alive()


def _prune(save_dir: str, keep_last: int) -> None:
    """Remove periodic checkpoints beyond the newest ``keep_last`` (by update count)."""
    manifests = []
    for path in glob.glob(os.path.join(glob.escape(save_dir), "epoch*" + MANIFEST_SUFFIX)):
        try:
            manifests.append((int(read_manifest(path)["meta"].get("global_step", 0)), path))
        except CheckpointError:
            continue
    for _, path in sorted(manifests)[:-keep_last]:
        remove_checkpoint(path)
