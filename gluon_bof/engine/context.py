"""Devices: parse ``--gpus``/``--ctx`` strings, split batches, pick the norm layer, run per device.

Data parallelism follows GluonCV: the global batch is split evenly along axis 0 over a list of
contexts, every device runs forward and backward on its slice, and one ``gluon.Trainer`` reduces the
gradients through a kvstore. With ``--syncbn`` and several devices the network uses
``SyncBatchNorm(num_devices=n)`` so the batch statistics are those of the whole global batch.

MXNet detail that shapes :func:`run_per_device`: SyncBatchNorm blocks each device's engine worker
on a barrier until all devices arrive. If one Python thread pushes the forward/backward of every
device in turn, an operator that waits for its inputs while being pushed (storage fallback,
oneDNN reorders: ``relu`` or ``x*x`` right after the norm is enough on CPU) blocks the pusher, and
the other devices never get their work: a deadlock. One Python thread per device avoids it (this is
also what GluonCV's ``utils.parallel.Parallel`` does for Faster R-CNN).
"""
import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np
from mxnet import gluon

__all__ = ["parse_contexts", "split_batch", "norm_layer_for", "run_per_device", "DevicesBlockedError"]

_log = logging.getLogger("gluon_bof.engine")


def parse_contexts(spec: Optional[str]) -> List[mx.Context]:
    """Contexts from a flag value.

    Parameters
    ----------
    spec : str or None
        ``'0,1'`` (GPU ids, GluonCV's ``--gpus``), ``'cpu:0,cpu:1'`` / ``'gpu:0'`` (explicit device
        type per entry), ``'cpu'``, or ``''``/None for a single ``cpu()``.

    Returns
    -------
    list of mxnet.Context
        Without duplicates, in the given order.
    """
    if spec is None or not str(spec).strip():
        return [mx.cpu()]
    ctxs: List[mx.Context] = []
    for raw in str(spec).split(","):
        item = raw.strip().lower()
        if not item:
            raise ValueError(f"parse_contexts: empty entry in {spec!r} (expected e.g. '0,1' or 'cpu:0,cpu:1')")
        kind, _, index = item.partition(":")
        if kind.isdigit() and not index:
            kind, index = "gpu", kind
        if kind not in ("cpu", "gpu"):
            raise ValueError(f"parse_contexts: unknown device {raw!r} in {spec!r}; use an integer GPU id, "
                             f"'gpu:N' or 'cpu:N'")
        if index and not index.isdigit():
            raise ValueError(f"parse_contexts: device index of {raw!r} in {spec!r} is not a non-negative integer")
        ctx = mx.Context(kind, int(index or 0))
        if ctx in ctxs:
            raise ValueError(f"parse_contexts: device {ctx} appears twice in {spec!r}")
        ctxs.append(ctx)
    return ctxs


def split_batch(batch: Sequence[Any], ctxs: Sequence[mx.Context]) -> List[Tuple[mx.nd.NDArray, ...]]:
    """Split every array of ``batch`` evenly along axis 0 and copy slice ``i`` to ``ctxs[i]``.

    Parameters
    ----------
    batch : sequence of numpy arrays or NDArrays
        All with the same leading (batch) dimension ``B``; ``B`` must be a multiple of ``len(ctxs)``
        (GluonCV's ``split_and_load(even_split=True)`` rule).

    Returns
    -------
    list of tuple
        ``len(ctxs)`` tuples, the ``i``-th holding the ``i``-th slice of every array on ``ctxs[i]``.
    """
    if not ctxs:
        raise ValueError("split_batch: no context given")
    sizes = {int(np.shape(a)[0]) if np.ndim(a) else -1 for a in batch}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(f"split_batch: every array of the batch needs the same leading batch size, got "
                         f"shapes {[tuple(np.shape(a)) for a in batch]}")
    size = sizes.pop()
    if size % len(ctxs):
        raise ValueError(f"split_batch: batch size {size} is not divisible by the {len(ctxs)} devices "
                         f"{list(ctxs)}; choose --batch-size as a multiple of the device count")
    columns = [gluon.utils.split_and_load(a if isinstance(a, mx.nd.NDArray) else mx.nd.array(a, dtype=a.dtype),
                                          ctxs, batch_axis=0, even_split=True) for a in batch]
    return [tuple(col[i] for col in columns) for i in range(len(ctxs))]


def norm_layer_for(num_devices: int, syncbn: bool = True) -> Tuple[type, Dict[str, Any]]:
    """``(norm_layer, norm_kwargs)``: the package's one rule for synchronized BatchNorm.

    * ``syncbn`` and several devices: ``SyncBatchNorm(num_devices=n)``, so the statistics are those
      of the whole batch of this process (MXNet synchronizes within one process, never across the
      machines of a ``dist_sync`` job).
    * ``syncbn`` and one device: that device already sees the whole batch, so SyncBatchNorm and
      BatchNorm compute the same numbers; the BatchNorm kernel is used (MXNet's SyncBatchNorm is far
      slower on the CPU) and the log says so.
    * no ``syncbn``: per-device ``BatchNorm``.

    Parameter names are the same for both layers, so weights move freely between them.
    """
    if int(num_devices) < 1:
        raise ValueError(f"norm_layer_for: num_devices must be >= 1, got {num_devices}")
    if syncbn and num_devices > 1:
        _log.info("synchronized BatchNorm over %d devices", int(num_devices))
        return gluon.contrib.nn.SyncBatchNorm, {"num_devices": int(num_devices)}
    if syncbn:
        _log.info("synchronized BatchNorm on one device: its BatchNorm already normalizes over the whole "
                  "batch, so the BatchNorm kernel is used (same numbers as SyncBatchNorm, faster)")
    return gluon.nn.BatchNorm, {}


class DevicesBlockedError(RuntimeError):
    """A device thread failed and the others did not finish: they are blocked (in SyncBatchNorm)."""


def run_per_device(fn: Callable[[int], Any], n: int, on_error: Optional[Callable[[int, BaseException], None]] = None,
                   abandon_after: float = 120.0) -> List[Any]:
    """``[fn(0), ..., fn(n - 1)]``, each call in its own thread when ``n > 1`` (see module docstring).

    ``autograd.record()`` is thread-local, so ``fn`` must open its own recording scope.

    Parameters
    ----------
    fn : callable
        ``fn(device_index)``.
    n : int
        Number of devices.
    on_error : callable, optional
        ``on_error(i, exc)``, run in device ``i``'s thread right after ``fn(i)`` raised ``exc``. With
        SyncBN the other devices wait at barriers for device ``i``; this hook can make it arrive
        there. Its own exceptions are ignored.
    abandon_after : float
        Seconds to wait for the remaining threads once one has failed.

    Returns
    -------
    list
        The ``n`` results.

    Raises
    ------
    Exception
        The first exception raised by a call (annotated with its device index), once every thread has
        finished.
    DevicesBlockedError
        A call failed and other threads were still running ``abandon_after`` seconds later (typically
        blocked inside MXNet waiting for the failed device); they are abandoned (daemon threads).
    """
    if n == 1:
        return [fn(0)]
    results: List[Any] = [None] * n
    errors: List[Tuple[int, BaseException]] = []
    state = threading.Condition()
    finished = [0]

    def target(i: int) -> None:
        try:
            results[i] = fn(i)
        except BaseException as exc:  # re-raised below, in the caller's thread
            with state:
                errors.append((i, exc))
                state.notify_all()
            if on_error is not None:
                try:
                    on_error(i, exc)
                except BaseException:  # the original error is the one to report
                    pass
        finally:
            with state:
                finished[0] += 1
                state.notify_all()

    threads = [threading.Thread(target=target, args=(i,), name=f"gluon_bof-device-{i}", daemon=True)
               for i in range(n)]
    for t in threads:
        t.start()
    with state:
        state.wait_for(lambda: finished[0] == n or bool(errors))
    deadline = time.monotonic() + float(abandon_after)
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if errors:
        i, exc = errors[0]
        blocked = [k for k, t in enumerate(threads) if t.is_alive()]
        if blocked:
            raise DevicesBlockedError(
                f"device {i} failed ({type(exc).__name__}: {exc}) and devices {blocked} were still running "
                f"{abandon_after:g} s later, most likely blocked in SyncBatchNorm waiting for device {i}; MXNet "
                f"cannot cancel them, so restart the process (resume from the last checkpoint)") from exc
        exc.add_note(f"(raised on device {i} of {n}, in thread {threads[i].name})")
        raise exc
    return results
