"""Deterministic, worker-safe detection data loader with random training shapes.

What a batch contains is a pure function of ``(seed, epoch, batch index)`` and the options of the
epoch, never of the number of workers, of which worker ran it, or of earlier iterations:

* order: epoch ``e`` reads positions ``[B * floor(e N / B), B * floor((e + 1) N / B))`` of the endless
  stream ``perm_0 + perm_1 + ...`` where ``perm_k`` is the shuffle of epoch ``k`` (stream
  ``STREAM_SHUFFLE``). That is GluonCV's ``last_batch='rollover'`` (the leftover of an epoch starts
  the next one) made history-free. ``'discard'`` drops the leftover, ``'keep'`` yields a short last
  batch;
* sample randomness: ``sample_rng(seed, k, index)`` where ``k`` is the epoch whose shuffle the sample
  came from, so a rolled-over sample keeps its draws;
* shape: batch ``b`` of epoch ``e`` uses ``shapes[make_rng(seed, STREAM_SHAPE, e, b // interval)
  .integers(len(shapes))]``;
* options (e.g. ``{'mixup': True}``) travel with every task to the workers, so changing them between
  epochs always takes effect (the GluonCV bug: workers keep a stale copy of the dataset's sampler).

Batches are prepared ahead of the caller: with ``num_workers=0`` by one background thread (the
OpenCV/numpy work releases the GIL), otherwise by persistent forked worker processes, each task
being one batch (sample + batchify in the worker). Batches are yielded in order; ``prefetch`` of
them are in flight, so the next batches are prepared while the network computes.

Transport: the batch is written straight into a slot of a ring of reusable buffers in anonymous
shared memory (mapped before the fork, so no file exists) and the caller gets arrays that are views
of that slot; the slot returns to the ring when the last of those arrays is freed. Reusing the
memory matters more than avoiding copies here: every 4 KiB page of fresh memory costs a page fault,
thousands of them for one batch (and workers keep freed memory in glibc for the same reason, see
``_keep_freed_memory``). When every slot is still held by the caller
(e.g. ``list(loader.iter_epoch(0))``) or a batch is larger than a slot, the batch goes through a
file in ``/dev/shm`` that the main process maps and unlinks at once (or a pickle if ``/dev/shm`` is
missing); files still unread are removed on ``close``, garbage collection, interpreter exit, and by
workers that find their parent gone.
"""
import atexit
import glob
import mmap
import multiprocessing as mp
import os
import queue
import signal
import threading
import traceback
import uuid
import weakref
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .rng import STREAM_SHAPE, STREAM_SHUFFLE, make_rng, sample_rng

Shape = Tuple[int, int]
SampleFn = Callable[[Any, int, np.random.Generator, Optional[Shape], Dict[str, Any]], tuple]
BatchifyFn = Callable[[List[tuple]], tuple]

_LAST_BATCH = ("rollover", "discard", "keep")
_POLL_SECONDS = 1.0
_SHM_DIR = "/dev/shm"
_ALIGN = 64
_PAGE = mmap.PAGESIZE
_MALLOC_KEEP = 512 << 20
ArrayMeta = Tuple[Tuple[int, ...], str, int]  # shape, dtype string, byte offset


def _shm_pack(batch: Any, path: str) -> Optional[List[ArrayMeta]]:
    """Write a tuple of numeric arrays into the new file ``path``; None if ``batch`` is not one.

    Each array starts at a 64-byte aligned offset; returns what ``_shm_unpack`` needs to view them.
    """
    if not isinstance(batch, tuple) or not all(isinstance(a, np.ndarray) and not a.dtype.hasobject
                                               for a in batch):
        return None
    metas: List[ArrayMeta] = []
    offset = 0
    with open(path, "xb") as f:
        for a in batch:
            a = a if a.flags.c_contiguous else a.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)
            pad = -offset % _ALIGN
            f.write(b"\0" * pad)
            offset += pad
            metas.append((a.shape, a.dtype.str, offset))
            f.write(memoryview(a.reshape(-1)).cast("B"))
            offset += a.nbytes
    return metas


def _shm_unpack(path: str, metas: List[ArrayMeta]) -> tuple:
    """Map the file written by ``_shm_pack`` (copy-on-write, so arrays are writable), unlink it and
    return the arrays as views of the mapping (freed when the arrays are)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            mm = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY) if size else None
    finally:
        os.unlink(path)
    out = []
    for shape, dtype, offset in metas:
        count = int(np.prod(shape))
        if count == 0 or mm is None:
            out.append(np.empty(shape, dtype))
        else:
            out.append(np.frombuffer(mm, dtype, count, offset).reshape(shape))
    return tuple(out)


def _unlink_prefix(prefix: str) -> None:
    """Remove the ``/dev/shm`` batch files of one loader that nobody mapped (best effort)."""
    for path in glob.glob(prefix + "_*"):
        try:
            os.unlink(path)
        except OSError:
            pass


_LIVE_LOADERS: "weakref.WeakSet[DetectionLoader]" = weakref.WeakSet()


@atexit.register
def _close_live_loaders() -> None:
    """At interpreter exit, stop the workers first and then remove the files they left."""
    for loader in list(_LIVE_LOADERS):
        loader.close()


class _SlotRing:
    """Reusable batch buffers in anonymous shared memory: ``groups`` rings of ``slots`` slots.

    Group ``g`` belongs to one producer (worker ``g``, or the background thread). Slot states live
    in the first page of the mapping, with one writer per transition: the producer marks a free
    slot busy (``acquire``), the consumer marks it free again once the last array viewing it dies
    (``views`` attaches a finalizer). Being ``MAP_SHARED | MAP_ANONYMOUS`` and created before the
    fork, the mapping is the same memory in every process, and is freed with the last of them.
    """

    def __init__(self, groups: int, slots: int, slot_bytes: int) -> None:
        self.groups, self.slots = groups, slots
        self.slot_bytes = -(-int(slot_bytes) // _PAGE) * _PAGE
        head = -(-groups * slots // _PAGE) * _PAGE
        self.head = head
        self.mm = mmap.mmap(-1, head + groups * slots * self.slot_bytes)
        self.busy = np.frombuffer(self.mm, np.uint8, groups * slots)
        self.data = np.frombuffer(self.mm, np.uint8, offset=head)
        self._lock = threading.Lock()  # a thread of an abandoned iteration may still be acquiring

    def acquire(self, group: int) -> Optional[int]:
        """A free slot of ``group`` (now busy), or None if the consumer still holds all of them."""
        with self._lock:
            for slot in range(group * self.slots, (group + 1) * self.slots):
                if not self.busy[slot]:
                    self.busy[slot] = 1
                    return slot
        return None

    def release(self, slot: int) -> None:
        self.busy[slot] = 0

    def region(self, slot: int) -> np.ndarray:
        return self.data[slot * self.slot_bytes:(slot + 1) * self.slot_bytes]

    def writer(self, slot: int) -> "_SlotWriter":
        return _SlotWriter(self.region(slot))

    def views(self, slot: int, metas: List[ArrayMeta]) -> tuple:
        """The batch in ``slot`` as arrays viewing it; the slot is released when all of them die."""
        base = np.frombuffer(self.mm, np.uint8, self.slot_bytes, self.head + slot * self.slot_bytes)
        weakref.finalize(base, self.release, slot)
        out = []
        for shape, dtype, offset in metas:
            dt = np.dtype(dtype)
            nbytes = int(np.prod(shape)) * dt.itemsize
            out.append(base[offset:offset + nbytes].view(dt).reshape(shape))
        return tuple(out)


class _SlotWriter:
    """Bump allocator over one slot (the ``alloc`` of ``gluon_bof.data.batchify``)."""

    def __init__(self, region: np.ndarray) -> None:
        self.region = region
        self.start = region.__array_interface__["data"][0]
        self.used = 0

    def __call__(self, shape: Tuple[int, ...], dtype: Any) -> np.ndarray:
        dt = np.dtype(dtype)
        shape = tuple(int(d) for d in shape)
        nbytes = int(np.prod(shape)) * dt.itemsize
        offset = self.used + (-self.used % _ALIGN)
        if dt.hasobject or offset + nbytes > len(self.region):
            return np.empty(shape, dt)  # does not fit: the batch will take the file/pickle path
        self.used = offset + nbytes
        return self.region[offset:offset + nbytes].view(dt).reshape(shape)

    def inside(self, a: np.ndarray) -> bool:
        """Whether ``a`` is a contiguous array within this slot."""
        offset = a.__array_interface__["data"][0] - self.start
        return a.flags.c_contiguous and 0 <= offset and offset + a.nbytes <= len(self.region)

    def finish(self, batch: Any) -> Optional[List[ArrayMeta]]:
        """Metas of ``batch`` in the slot, copying in arrays made elsewhere; None if it cannot be."""
        if not isinstance(batch, tuple):
            return None
        metas: List[ArrayMeta] = []
        for a in batch:
            if not isinstance(a, np.ndarray) or a.dtype.hasobject:
                return None
            if a.size and not self.inside(a):
                dst = self(a.shape, a.dtype)
                if not self.inside(dst):
                    return None
                dst[...] = a
                a = dst
            offset = a.__array_interface__["data"][0] - self.start if a.size else 0
            metas.append((a.shape, a.dtype.str, offset))
        return metas


class WorkerError(RuntimeError):
    """A data-loader worker failed while producing a sample; the message names the sample."""


def _normalize_shapes(shapes: Optional[Sequence[Union[int, Shape]]]) -> Optional[List[Shape]]:
    if shapes is None:
        return None
    out: List[Shape] = []
    for s in shapes:
        hw = (int(s), int(s)) if np.isscalar(s) else tuple(int(v) for v in s)
        if len(hw) != 2 or min(hw) <= 0:
            raise ValueError(f"DetectionLoader: shapes must be positive ints or (height, width) pairs, got {s!r}")
        out.append(hw)  # type: ignore[arg-type]
    if not out:
        raise ValueError("DetectionLoader: shapes must not be empty (use shapes=None for a fixed shape)")
    return out


def _describe(dataset: Any, index: int) -> str:
    """A short description of dataset item ``index`` for error messages (its file name if known)."""
    name = f"{type(dataset).__name__}[{index}]"
    for attr in ("item_name", "image_path", "filename"):
        fn = getattr(dataset, attr, None)
        if callable(fn):
            try:
                return f"{name} ({fn(index)})"
            except Exception:  # the description must never mask the real error
                pass
    return name


def _run_task(dataset: Any, sample_fn: SampleFn, batchify_fn: BatchifyFn, seed: int,
              task: Tuple[int, List[Tuple[int, int]], Optional[Shape], Dict[str, Any]],
              alloc: Optional[Callable] = None) -> tuple:
    """Produce one batch: ``task = (epoch, [(source epoch, index), ...], shape, options)``.

    ``alloc`` goes to batchify functions flagged ``accepts_alloc`` (see ``gluon_bof.data.batchify``).
    """
    epoch, items, shape, options = task
    samples = []
    for src_epoch, index in items:
        try:
            samples.append(sample_fn(dataset, index, sample_rng(seed, src_epoch, index), shape, options))
        except Exception as exc:
            raise WorkerError(f"error while producing sample index {index} = {_describe(dataset, index)} "
                              f"(epoch {epoch}, shape {shape}): {type(exc).__name__}: {exc}") from exc
    try:
        if alloc is not None and getattr(batchify_fn, "accepts_alloc", False):
            return batchify_fn(samples, alloc=alloc)
        return batchify_fn(samples)
    except Exception as exc:
        idx = [i for _, i in items]
        raise WorkerError(f"error while batching samples {idx} (epoch {epoch}, shape {shape}): "
                          f"{type(exc).__name__}: {exc}") from exc


def _produce(dataset: Any, sample_fn: SampleFn, batchify_fn: BatchifyFn, seed: int, task: tuple,
             ring: Optional[_SlotRing], group: int) -> Tuple[str, Any]:
    """Run one task into a free slot of ``ring``: ``("slot", (slot, metas))``, or ``("batch", batch)``
    (own memory) when no slot is free or the batch does not fit in one."""
    slot = ring.acquire(group) if ring is not None else None
    if slot is None:
        return "batch", _run_task(dataset, sample_fn, batchify_fn, seed, task)
    try:
        writer = ring.writer(slot)
        batch = _run_task(dataset, sample_fn, batchify_fn, seed, task, alloc=writer)
        metas = writer.finish(batch)
        if metas is not None:
            return "slot", (slot, metas)
        if writer.used and isinstance(batch, tuple):  # partly written into the slot: move it out
            batch = tuple(np.array(a) if isinstance(a, np.ndarray) else a for a in batch)
    except BaseException:
        ring.release(slot)
        raise
    ring.release(slot)
    return "batch", batch


def _keep_freed_memory() -> None:
    """Make glibc keep freed memory for reuse instead of returning it to the kernel.

    A transform allocates a few arrays of about 6 MB per image. By default glibc serves them with
    fresh pages (``mmap``, or a heap it trims on every free), so each page is faulted in again: about
    1,400 page faults per image, a third of a Faster R-CNN sample's cost. A worker process is ours,
    so it keeps up to ``_MALLOC_KEEP`` bytes of freed memory. No-op without glibc.
    """
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-1, _MALLOC_KEEP)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD (glibc's maximum): big arrays from the heap
    except (OSError, AttributeError):
        pass


def _worker_loop(dataset: Any, sample_fn: SampleFn, batchify_fn: BatchifyFn, seed: int,
                 tasks: "mp.Queue", results: "mp.Queue", active: Any, shm_prefix: Optional[str],
                 ring: Optional[_SlotRing], group: int, parent: int, busy: Any) -> None:
    """Body of worker ``group``: run tasks until the ``None`` sentinel arrives or the parent dies.

    Tasks of an iteration that is no longer ``active`` (abandoned midway) are skipped. Results are
    ``(key, "slot", (slot, metas))``, ``(key, "shm", (path, metas))``, ``(key, "pickle", batch)`` or
    ``(key, "error", message)``. ``busy[group]`` holds the batch being prepared (-1: none), so the main
    process can name it if this worker dies. SIGINT and SIGTERM are ignored: the main process owns
    the shutdown (Ctrl-C reaches the whole process group), and a worker whose parent is gone exits.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _keep_freed_memory()
    while True:
        try:
            msg = tasks.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            if os.getppid() != parent:  # orphaned (main process killed): leave no files behind
                if shm_prefix is not None:
                    _unlink_prefix(shm_prefix)
                os._exit(0)  # nobody reads the result queue any more: do not wait for its flush
            continue
        if msg is None:
            break
        key, task = msg
        if key[0] != active.value:
            continue
        busy[group] = key[1]
        try:
            kind, payload = _produce(dataset, sample_fn, batchify_fn, seed, task, ring, group)
        except Exception as exc:  # sent back and re-raised in the main process
            text = f"{exc}\n--- worker traceback (pid {os.getpid()}) ---\n{traceback.format_exc()}"
            results.put((key, "error", text))
            continue
        finally:
            busy[group] = -1
        if kind == "slot":
            results.put((key, kind, payload))
            continue
        metas = None
        if shm_prefix is not None:
            path = f"{shm_prefix}_{key[0]}_{key[1]}"
            try:
                metas = _shm_pack(payload, path)
            except OSError:  # e.g. /dev/shm full: fall back to pickling
                if os.path.exists(path):
                    os.unlink(path)
        if metas is None:
            results.put((key, "pickle", payload))
        else:
            results.put((key, "shm", (path, metas)))


class DetectionLoader:
    """Batches of ``batchify_fn([sample_fn(dataset, index, rng, shape, options), ...])``.

    Parameters
    ----------
    dataset : Sequence
        Anything with ``len``; only ``sample_fn`` reads it. Workers get a copy at fork time (the first
        ``iter_epoch``), so per-epoch changes must go through ``options``.
    sample_fn : callable
        ``sample_fn(dataset, index, rng, shape, options) -> tuple`` of numpy arrays; ``shape`` is
        ``(h, w)`` or None, ``rng`` a ``numpy.random.Generator`` owned by this sample.
    batchify_fn : callable
        ``batchify_fn(list of samples) -> tuple`` of numpy arrays (see ``gluon_bof.data.batchify``).
    batch_size : int
        Samples per batch.
    seed : int
        Root of every random choice (order, shapes, augmentation).
    shuffle : bool
        Shuffle each epoch (stream ``STREAM_SHUFFLE``) or read ``0..N-1`` in order.
    num_workers : int
        0 prepares batches in one background thread of the calling process; otherwise that many
        forked worker processes.
    shapes : sequence of int or (h, w), optional
        Random training shapes; None passes ``shape=None`` to ``sample_fn``.
    shape_interval : int
        A shape is drawn for every ``shape_interval`` consecutive batches.
    last_batch : {'rollover', 'discard', 'keep'}
        What happens to the ``N mod batch_size`` leftover samples (see the module docstring).
    prefetch : int, optional
        Batches prepared ahead of the caller; default ``2 * num_workers``, or 2 without workers.
    options : dict, optional
        Default options sent to ``sample_fn``; ``set_option`` changes them, and the ``options`` of
        ``iter_epoch`` override them for one epoch.
    timeout : float
        Seconds to wait for any worker result before declaring the workers stuck (``WorkerError``).
    shared_memory : bool
        Return worker batches through reusable shared-memory slots (default), falling back to files
        in ``/dev/shm``; False pickles every worker batch through a ``multiprocessing.Queue``.
    slot_bytes : int
        Capacity of one reusable batch buffer (address space; only the pages a batch touches take
        memory, and they stay for reuse until ``close``). A larger batch takes the file path.
        ``ceil(prefetch / num_workers) + 2`` slots per worker (``prefetch + 2`` without workers).
    """

    def __init__(self, dataset: Sequence, sample_fn: SampleFn, batchify_fn: BatchifyFn, batch_size: int,
                 seed: int, shuffle: bool = True, num_workers: int = 0,
                 shapes: Optional[Sequence[Union[int, Shape]]] = None, shape_interval: int = 10,
                 last_batch: str = "rollover", prefetch: Optional[int] = None,
                 options: Optional[Dict[str, Any]] = None, timeout: float = 300.0,
                 shared_memory: bool = True, slot_bytes: int = 64 << 20) -> None:
        n = len(dataset)
        if n <= 0:
            raise ValueError(f"DetectionLoader: dataset {type(dataset).__name__} is empty")
        if int(batch_size) < 1:
            raise ValueError(f"DetectionLoader: batch_size must be >= 1, got {batch_size}")
        if last_batch not in _LAST_BATCH:
            raise ValueError(f"DetectionLoader: last_batch must be one of {_LAST_BATCH}, got {last_batch!r}")
        if int(num_workers) < 0:
            raise ValueError(f"DetectionLoader: num_workers must be >= 0, got {num_workers}")
        if int(shape_interval) < 1:
            raise ValueError(f"DetectionLoader: shape_interval must be >= 1, got {shape_interval}")
        if not timeout > 0:
            raise ValueError(f"DetectionLoader: timeout must be > 0 seconds, got {timeout}")
        if int(slot_bytes) < 0:
            raise ValueError(f"DetectionLoader: slot_bytes must be >= 0, got {slot_bytes}")
        if prefetch is not None and int(prefetch) < 1:
            raise ValueError(f"DetectionLoader: prefetch must be >= 1, got {prefetch}")
        self.dataset = dataset
        self.sample_fn = sample_fn
        self.batchify_fn = batchify_fn
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.num_workers = int(num_workers)
        self.shapes = _normalize_shapes(shapes)
        self.shape_interval = int(shape_interval)
        self.last_batch = last_batch
        self.prefetch = int(prefetch) if prefetch is not None else max(2 * self.num_workers, 2)
        self.options: Dict[str, Any] = dict(options or {})
        self.timeout = float(timeout)
        self.shared_memory = bool(shared_memory)
        self.slot_bytes = int(slot_bytes)
        self._shm_files = self.shared_memory and os.access(_SHM_DIR, os.W_OK)
        self._ring: Optional[_SlotRing] = None  # the workers' slots (reset with the workers)
        self._local_ring: Optional[_SlotRing] = None  # the background thread's slots
        self._local_active = 0  # generation of the running thread-mode iteration, 0 if none
        self._shm_prefix: Optional[str] = None
        self._n = n
        self._workers: List[mp.Process] = []
        self._tasks: Optional["mp.Queue"] = None
        self._results: Optional["mp.Queue"] = None
        self._generation = 0
        self._active: Any = None  # shared int: generation of the running iteration, 0 if none
        self._busy: Any = None  # shared ints: batch each worker is preparing, -1 if none
        self._epoch = 0  # epoch of the running worker iteration (to name a dead worker's items)

    # ----------------------------------------------------------------------------- deterministic plan
    def _perm(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self._n)
        return make_rng(self.seed, STREAM_SHUFFLE, epoch).permutation(self._n)

    def _span(self, epoch: int) -> Tuple[int, int]:
        """Stream positions ``[start, stop)`` read by ``epoch``."""
        n, b = self._n, self.batch_size
        if self.last_batch == "rollover":
            return b * (epoch * n // b), b * ((epoch + 1) * n // b)
        stop = epoch * n + (n if self.last_batch == "keep" else b * (n // b))
        return epoch * n, stop

    def num_batches(self, epoch: int = 0) -> int:
        """Number of batches ``iter_epoch(epoch)`` yields (varies by one across epochs for 'rollover')."""
        start, stop = self._span(epoch)
        return -(-(stop - start) // self.batch_size)

    def __len__(self) -> int:
        return self.num_batches(0)

    def batch_items(self, epoch: int, batch: int) -> List[Tuple[int, int]]:
        """``[(source epoch, dataset index), ...]`` of batch ``batch`` in ``epoch``."""
        start, stop = self._span(epoch)
        lo = start + batch * self.batch_size
        hi = min(lo + self.batch_size, stop)
        items = []
        perms: Dict[int, np.ndarray] = {}
        for pos in range(lo, hi):
            src = pos // self._n
            if src not in perms:
                perms[src] = self._perm(src)
            items.append((src, int(perms[src][pos % self._n])))
        return items

    def batch_shape(self, epoch: int, batch: int) -> Optional[Shape]:
        """The ``(h, w)`` of batch ``batch`` in ``epoch`` (None without random shapes)."""
        if self.shapes is None:
            return None
        rng = make_rng(self.seed, STREAM_SHAPE, epoch, batch // self.shape_interval)
        return self.shapes[int(rng.integers(len(self.shapes)))]

    def _task(self, epoch: int, batch: int, options: Dict[str, Any]) -> tuple:
        return (epoch, self.batch_items(epoch, batch), self.batch_shape(epoch, batch), options)

    def set_option(self, key: str, value: Any) -> None:
        """Change a default option; it reaches the workers with the next task (no restart needed)."""
        self.options[key] = value

    # ----------------------------------------------------------------------------------- iteration
    def iter_epoch(self, epoch: int, start_batch: int = 0, options: Optional[Dict[str, Any]] = None
                   ) -> Iterator[tuple]:
        """Yield the batches of ``epoch`` from ``start_batch`` on (resume = same tail as a full run).

        Parameters
        ----------
        epoch : int
            Epoch number (>= 0); fixes the order, the shapes and the samples' random draws.
        start_batch : int
            First batch to produce, for resuming mid-epoch.
        options : dict, optional
            Per-epoch options handed to ``sample_fn`` (e.g. ``{'mixup': False}``), sent with each task.
        """
        if epoch < 0:
            raise ValueError(f"DetectionLoader.iter_epoch: epoch must be >= 0, got {epoch}")
        total = self.num_batches(epoch)
        if not 0 <= start_batch <= total:
            raise ValueError(f"DetectionLoader.iter_epoch: start_batch must be in [0, {total}] for epoch "
                             f"{epoch}, got {start_batch}")
        options = {**self.options, **(options or {})}
        if self.num_workers == 0:
            return self._iter_local(epoch, start_batch, total, options)
        return self._iter_workers(epoch, start_batch, total, options)

    def __iter__(self) -> Iterator[tuple]:
        return self.iter_epoch(0)

    def _iter_local(self, epoch: int, start: int, total: int, options: Dict[str, Any]) -> Iterator[tuple]:
        """Batches made by one background thread, ``prefetch`` ahead (cv2/numpy release the GIL)."""
        self._generation += 1
        gen = self._generation
        self._local_active = gen
        if self._local_ring is None and self.shared_memory and self.slot_bytes:
            self._local_ring = _SlotRing(1, self.prefetch + 2, self.slot_bytes)
        ring = self._local_ring
        results: "queue.Queue" = queue.Queue()
        room = threading.Semaphore(self.prefetch)
        stop = threading.Event()
        handoff = threading.Lock()  # a result is either queued before ``stop`` or dropped by the thread

        def produce() -> None:
            for b in range(start, total):
                while not room.acquire(timeout=_POLL_SECONDS):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                try:
                    kind, payload = _produce(self.dataset, self.sample_fn, self.batchify_fn, self.seed,
                                             self._task(epoch, b, options), ring, 0)
                except BaseException as exc:  # re-raised by the consumer, as a worker error would be
                    kind, payload = "error", exc
                with handoff:
                    if stop.is_set():
                        if kind == "slot":
                            ring.release(payload[0])  # type: ignore[union-attr]
                        return
                    results.put((kind, payload))
                if kind == "error":
                    return

        thread = threading.Thread(target=produce, name=f"DetectionLoader-epoch{epoch}", daemon=True)
        thread.start()
        try:
            for _ in range(start, total):
                if self._local_active != gen:
                    raise RuntimeError("DetectionLoader: another iteration was started (or the loader closed) "
                                       "while this one was running; run one iter_epoch at a time")
                kind, payload = results.get()
                if kind == "error":
                    raise payload
                room.release()
                yield ring.views(*payload) if kind == "slot" else payload  # type: ignore[union-attr]
        finally:
            with handoff:
                stop.set()
                while not results.empty():  # prepared but never yielded: return their slots
                    kind, payload = results.get_nowait()
                    if kind == "slot":
                        ring.release(payload[0])  # type: ignore[union-attr]
            if self._local_active == gen:
                self._local_active = 0

    def _iter_workers(self, epoch: int, start: int, total: int, options: Dict[str, Any]) -> Iterator[tuple]:
        self._ensure_workers()
        self._epoch = epoch
        self._generation += 1
        gen = self._generation
        self._active.value = gen
        done: Dict[int, tuple] = {}
        sent = start
        try:
            for b in range(start, total):
                if self._active is None or self._active.value != gen:
                    raise RuntimeError("DetectionLoader: another iteration was started (or the loader closed) "
                                       "while this one was running; run one iter_epoch at a time")
                while sent < total and sent - b < self.prefetch:
                    self._submit((gen, sent), self._task(epoch, sent, options))
                    sent += 1
                while b not in done:
                    key, kind, payload = self._receive()
                    if kind == "slot":
                        slot, metas = payload
                        if key[0] != gen:
                            self._ring.release(slot)  # type: ignore[union-attr]
                            continue
                        payload = self._ring.views(slot, metas)  # type: ignore[union-attr]
                    if kind == "shm":
                        path, metas = payload
                        if key[0] != gen:
                            os.unlink(path)
                            continue
                        payload = _shm_unpack(path, metas)
                    if key[0] != gen:
                        continue  # left over from an abandoned iteration
                    if kind == "error":
                        raise WorkerError(payload)
                    done[key[1]] = payload
                yield done.pop(b)
        finally:
            done.clear()
            if self._active is not None and self._active.value == gen:
                self._active.value = 0

    def _submit(self, key: Tuple[int, int], task: tuple) -> None:
        assert self._tasks is not None
        self._tasks.put((key, task))

    def _receive(self) -> tuple:
        assert self._results is not None
        waited = 0.0
        while True:
            try:
                key, kind, payload = self._results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                waited += _POLL_SECONDS
                if waited >= self.timeout:
                    self.close()
                    raise WorkerError(f"DetectionLoader: no batch from the workers for {self.timeout:.0f} s; "
                                      f"they are stuck (workers restart on the next iteration)")
                dead = [(w, p) for w, p in enumerate(self._workers) if not p.is_alive()]
                if dead:
                    message = "; ".join(self._describe_death(w, p) for w, p in dead)
                    self.close()
                    raise WorkerError(f"DetectionLoader: {message}; training stops (resume from the last "
                                      f"checkpoint once the cause is fixed)")
                continue
            return key, kind, payload

    def _describe_death(self, worker: int, process: mp.Process) -> str:
        """``data worker 1 (pid 123) died with signal SIGKILL while preparing batch 4 of epoch 2 (items ...)``."""
        code = process.exitcode
        if code is not None and code < 0:
            try:
                how = "signal %s" % signal.Signals(-code).name
            except ValueError:
                how = "signal %d" % -code
            hint = {-9: " (killed, e.g. by the out-of-memory killer)", -11: " (a crash, e.g. in an image decoder)"}
            how += hint.get(code, "")
        else:
            how = "exit code %s" % code
        batch = int(self._busy[worker]) if self._busy is not None else -1
        if batch < 0:
            return f"data worker {worker} (pid {process.pid}) died with {how} between batches"
        items = [int(index) for _, index in self.batch_items(self._epoch, batch)]
        return (f"data worker {worker} (pid {process.pid}) died with {how} while preparing batch {batch} of epoch "
                f"{self._epoch} (dataset items {items})")

    # ------------------------------------------------------------------------------------ processes
    def _ensure_workers(self) -> None:
        if self._workers:
            return
        ctx = mp.get_context("fork")
        self._tasks = ctx.Queue()
        self._results = ctx.Queue()
        self._active = ctx.Value("q", 0, lock=False)
        self._busy = ctx.Array("q", [-1] * self.num_workers, lock=False)
        if self._shm_files:
            self._shm_prefix = os.path.join(_SHM_DIR, f"gluon_bof_{os.getpid()}_{uuid.uuid4().hex[:12]}")
        if self.shared_memory and self.slot_bytes:
            per_worker = -(-self.prefetch // self.num_workers) + 2
            self._ring = _SlotRing(self.num_workers, per_worker, self.slot_bytes)
        # Workers get a single-threaded OpenCV (the processes already share the cores). It must be
        # set before the fork: cv2.setNumThreads in a forked child deadlocks on the parent's pool.
        cv_threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            _LIVE_LOADERS.add(self)
            for w in range(self.num_workers):
                p = ctx.Process(target=_worker_loop, daemon=True,
                                args=(self.dataset, self.sample_fn, self.batchify_fn, self.seed, self._tasks,
                                      self._results, self._active, self._shm_prefix, self._ring, w,
                                      os.getpid(), self._busy))
                p.start()
                self._workers.append(p)
        finally:
            cv2.setNumThreads(cv_threads)

    def close(self) -> None:
        """Stop the worker processes (safe to call twice; also called on garbage collection)."""
        self._local_active = 0
        workers, self._workers = self._workers, []
        if not workers:
            return
        for _ in workers:
            try:
                self._tasks.put(None)  # type: ignore[union-attr]
            except (OSError, ValueError):
                break
        for p in workers:
            p.join(timeout=2.0)
            if p.is_alive():
                p.kill()  # workers ignore SIGTERM
                p.join(timeout=2.0)
        for q in (self._tasks, self._results):
            if q is not None:
                q.cancel_join_thread()
                q.close()
        self._tasks = self._results = None
        self._ring = None  # arrays still viewing it keep the memory alive
        if self._shm_prefix is not None:  # batches produced but never received
            _unlink_prefix(self._shm_prefix)
            self._shm_prefix = None

    def __enter__(self) -> "DetectionLoader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
