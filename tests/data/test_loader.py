"""Tests of gluon_bof.data.loader.DetectionLoader: determinism, workers, resume, shapes, errors."""
import os
import signal
import time

import numpy as np
import pytest

from gluon_bof.data.batchify import Group, pad, stack
from gluon_bof.data.loader import DetectionLoader, WorkerError
from gluon_bof.data.mixup import MixupDetection


class _Toy:
    def __init__(self, n=23):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        img = np.full((6 + i % 3, 5, 3), i, dtype=np.uint8)
        label = np.array([[0, 0, 2, 2, i % 4, 0]] * (1 + i % 2), dtype=np.float32)
        return img, label

    def item_name(self, i):
        return f"toy_{i:03d}.jpg"


def _draw_sample(dataset, index, rng, shape, options):
    """Stand-in augmentation: four draws, the index, the shape and the pid of the process."""
    h, w = shape if shape is not None else (0, 0)
    return (rng.random(4), np.array([index, h, w], np.int64), np.array(os.getpid()))


_BATCH = Group(stack, stack, stack)


def _mixup_sample(mixer):
    def fn(dataset, index, rng, shape, options):
        img, label = mixer.sample(index, rng, options.get("mixup", False))
        return img[:6, :5].astype(np.float32), label
    return fn


def _collect(loader, epoch, start=0, options=None):
    return [tuple(a.copy() for a in b[:2]) for b in loader.iter_epoch(epoch, start, options)]


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            np.testing.assert_array_equal(u, v)


def test_workers_match_single_process_and_resume_matches_tail():
    kw = dict(batch_size=4, seed=7, shapes=[320, (352, 416), 608], shape_interval=2, last_batch="rollover")
    ref = DetectionLoader(_Toy(), _draw_sample, _BATCH, num_workers=0, **kw)
    with DetectionLoader(_Toy(), _draw_sample, _BATCH, num_workers=2, **kw) as par:
        for epoch in (0, 3):
            full = _collect(ref, epoch)
            assert len(full) == ref.num_batches(epoch)
            _same(full, _collect(par, epoch))
            _same(full[4:], _collect(par, epoch, start=4))  # resume mid-epoch
            _same(full[4:], _collect(ref, epoch, start=4))
        # abandon an iteration midway; the next one is unaffected by its in-flight batches
        it = par.iter_epoch(1)
        next(it)
        it.close()
        _same(_collect(ref, 2), _collect(par, 2))


def test_no_two_samples_share_draws_and_both_workers_work():
    with DetectionLoader(_Toy(40), _draw_sample, _BATCH, batch_size=2, seed=0, num_workers=2) as loader:
        batches = list(loader.iter_epoch(0))
    draws = np.concatenate([b[0] for b in batches])
    pids = {int(p) for b in batches for p in b[2]}
    assert len(pids) == 2 and os.getpid() not in pids
    assert len({tuple(d) for d in draws}) == len(draws) == 40
    assert len(set(draws[:, 0].tolist())) == 40  # not even one coordinate repeats


def test_mixup_toggle_reaches_workers():
    ds = _Toy(16)
    sample = _mixup_sample(MixupDetection(ds))
    batchify = Group(stack, pad)
    with DetectionLoader(ds, sample, batchify, batch_size=4, seed=3, num_workers=2) as loader:
        def weights(epoch, on):
            w = np.concatenate([b[1][..., -1].ravel() for b in loader.iter_epoch(epoch, options={"mixup": on})])
            return w[w >= 0]  # drop padding
        on0, off1, on2 = weights(0, True), weights(1, False), weights(2, True)
    assert np.all(off1 == 1.0)
    for w in (on0, on2):
        assert np.mean(w < 1.0) > 0.9  # mixed boxes carry lambda or 1 - lambda
        assert len(np.unique(w)) > 8


@pytest.mark.parametrize("mode,n,b,expect", [("rollover", 23, 4, [5, 6, 6, 6, 5]),
                                             ("discard", 23, 4, [5] * 5),
                                             ("keep", 23, 4, [6] * 5)])
def test_last_batch_modes(mode, n, b, expect):
    loader = DetectionLoader(_Toy(n), _draw_sample, _BATCH, batch_size=b, seed=1, last_batch=mode)
    assert [loader.num_batches(e) for e in range(5)] == expect
    seen = []
    for e in range(5):
        for batch in loader.iter_epoch(e):
            seen.extend(batch[1][:, 0].tolist())
            if mode != "keep":
                assert len(batch[1]) == b
    counts = np.bincount(seen, minlength=n)
    if mode == "rollover":  # 5 epochs = 115 samples -> 28 full batches; nothing lost or repeated
        assert len(seen) == 112 and counts.max() - counts.min() <= 1
    elif mode == "keep":
        assert np.all(counts == 5)
    # epoch order depends on the seed and epoch, not on history
    a = DetectionLoader(_Toy(n), _draw_sample, _BATCH, batch_size=b, seed=1, last_batch=mode)
    _same(_collect(a, 3), _collect(loader, 3))


def test_random_shapes_change_every_interval_only():
    loader = DetectionLoader(_Toy(200), _draw_sample, _BATCH, batch_size=2, seed=5,
                             shapes=range(320, 609, 32), shape_interval=10)
    shapes = [loader.batch_shape(0, b) for b in range(100)]
    for k in range(10):
        assert len(set(shapes[10 * k: 10 * k + 10])) == 1
    assert len(set(shapes)) >= 5 and all(h == w and h % 32 == 0 and 320 <= h <= 608 for h, w in shapes)
    batch = next(iter(loader.iter_epoch(0, start_batch=10)))
    assert tuple(batch[1][0, 1:]) == shapes[10]
    assert [loader.batch_shape(1, b) for b in range(0, 100, 10)] != shapes[::10]  # redrawn per epoch


def _failing(dataset, index, rng, shape, options):
    if index == 5:
        raise KeyError("broken annotation")
    return _draw_sample(dataset, index, rng, shape, options)


@pytest.mark.parametrize("workers", [0, 2])
def test_worker_error_names_the_sample(workers):
    loader = DetectionLoader(_Toy(12), _failing, _BATCH, batch_size=3, seed=0, shuffle=False,
                             num_workers=workers)
    with pytest.raises(WorkerError, match=r"sample index 5 = _Toy\[5\] \(toy_005.jpg\).*KeyError"):
        list(loader.iter_epoch(0))
    # still usable afterwards, then shuts down without hanging
    assert len(list(loader.iter_epoch(0, start_batch=2))) == 2
    loader.close()
    loader.close()


def test_bad_arguments():
    with pytest.raises(ValueError, match="last_batch"):
        DetectionLoader(_Toy(), _draw_sample, _BATCH, 2, 0, last_batch="drop")
    with pytest.raises(ValueError, match="batch_size"):
        DetectionLoader(_Toy(), _draw_sample, _BATCH, 0, 0)
    with pytest.raises(ValueError, match="shapes"):
        DetectionLoader(_Toy(), _draw_sample, _BATCH, 2, 0, shapes=[])
    loader = DetectionLoader(_Toy(), _draw_sample, _BATCH, 2, 0)
    with pytest.raises(ValueError, match="start_batch"):
        loader.iter_epoch(0, start_batch=99)
    with pytest.raises(ValueError, match="same shape"):
        stack([np.zeros(2), np.zeros(3)])


def _dies(dataset, index, rng, shape, options):
    if index == 3:
        os._exit(3)
    return _draw_sample(dataset, index, rng, shape, options)


def _stuck(dataset, index, rng, shape, options):
    import time
    time.sleep(30)


def _segfaults(dataset, index, rng, shape, options):
    if index == 5:
        os.kill(os.getpid(), signal.SIGKILL)  # what the out-of-memory killer does
    return _draw_sample(dataset, index, rng, shape, options)


def test_dead_or_stuck_workers_raise_instead_of_hanging():
    loader = DetectionLoader(_Toy(8), _dies, _BATCH, batch_size=2, seed=0, shuffle=False, num_workers=2)
    with pytest.raises(WorkerError, match=r"data worker [01] \(pid \d+\) died with exit code 3 while preparing "
                                          r"batch 1 of epoch 0 \(dataset items \[2, 3\]\)"):
        list(loader.iter_epoch(0))
    assert len(list(loader.iter_epoch(0, start_batch=2))) == 2  # fresh workers afterwards
    loader.close()
    stuck = DetectionLoader(_Toy(4), _stuck, _BATCH, batch_size=2, seed=0, num_workers=1, timeout=1)
    with pytest.raises(WorkerError, match="no batch from the workers for 1 s"):
        next(iter(stuck.iter_epoch(0)))
    assert not stuck._workers


def test_a_killed_worker_is_named_with_its_batch_and_items_within_seconds():
    loader = DetectionLoader(_Toy(8), _segfaults, _BATCH, batch_size=2, seed=0, shuffle=False, num_workers=2)
    start = time.monotonic()
    with pytest.raises(WorkerError) as info:
        list(loader.iter_epoch(1))
    assert time.monotonic() - start < 15
    text = str(info.value)
    assert "died with signal SIGKILL (killed, e.g. by the out-of-memory killer) while preparing batch" in text
    assert "while preparing batch 2 of epoch 1 (dataset items [4, 5])" in text
    loader.close()


def test_shared_memory_transport_matches_pickle_and_cleans_up():
    import glob
    kw = dict(batch_size=4, seed=2, num_workers=2, shapes=[32, 64])
    with DetectionLoader(_Toy(), _draw_sample, _BATCH, shared_memory=True, **kw) as a, \
            DetectionLoader(_Toy(), _draw_sample, _BATCH, shared_memory=False, **kw) as b:
        assert a.shared_memory and not b.shared_memory
        batches = list(a.iter_epoch(0))
        _same([x[:2] for x in batches], _collect(b, 0))
        batches[0][0][...] = 0  # arrays are ordinary writable arrays
        prefix = a._shm_prefix
        it = a.iter_epoch(1)
        next(it)  # abandon with batches in flight
        del it
    assert prefix and not glob.glob(prefix + "*")


def test_shm_pack_roundtrip_odd_arrays(tmp_path):
    from gluon_bof.data.loader import _shm_pack, _shm_unpack
    batch = (np.zeros((0, 4), np.float32), np.array(3.5), np.array([True, False]),
             np.arange(7, dtype=np.int16)[::2], np.ones((2, 3), np.float64))
    path = str(tmp_path / "b")
    metas = _shm_pack(batch, path)
    assert all(off % 64 == 0 for _, _, off in metas)
    out = _shm_unpack(path, metas)
    assert not os.path.exists(path)
    for x, y in zip(batch, out):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)
    assert _shm_pack([np.zeros(2)], str(tmp_path / "c")) is None  # not a tuple: pickled instead


@pytest.mark.parametrize("workers", [0, 1])
def test_overlapping_iterations_fail_loudly(workers):
    with DetectionLoader(_Toy(), _draw_sample, _BATCH, batch_size=2, seed=0, num_workers=workers) as loader:
        first = loader.iter_epoch(0)
        next(first)
        second = loader.iter_epoch(1)
        next(second)
        with pytest.raises(RuntimeError, match="one iter_epoch at a time"):
            next(first)
        assert len(list(second)) == loader.num_batches(1) - 1


def _logged_sample(dataset, index, rng, shape, options):
    dataset.log.append(index)
    return _draw_sample(dataset, index, rng, shape, options)


class _LoggedToy(_Toy):
    def __init__(self, n=23):
        super().__init__(n)
        self.log = []


def test_no_workers_prepares_next_batches_in_background():
    import time
    ds = _LoggedToy(24)
    loader = DetectionLoader(ds, _logged_sample, _BATCH, batch_size=4, seed=9, num_workers=0, prefetch=2)
    it = loader.iter_epoch(0)
    first = next(it)
    deadline = time.monotonic() + 10
    while len(ds.log) < 12 and time.monotonic() < deadline:  # 1 yielded + 2 prefetched batches
        time.sleep(0.01)
    time.sleep(0.1)
    assert len(ds.log) == 12  # made while the caller was busy, and no further than `prefetch`
    rest = list(it)
    assert len(rest) == 5 and tuple(first[1][:, 0]) == tuple(ds.log[:4])


def test_batches_are_views_of_reused_slots_released_when_dropped():
    kw = dict(batch_size=4, seed=4, shapes=[320, 352])
    ref = _collect(DetectionLoader(_Toy(), _draw_sample, _BATCH, shared_memory=False, **kw), 0)
    for workers in (0, 2):
        with DetectionLoader(_Toy(), _draw_sample, _BATCH, num_workers=workers, **kw) as loader:
            got, views = [], 0
            for batch in loader.iter_epoch(0):  # each batch dropped before the next: slots recycle
                ring = loader._ring if workers else loader._local_ring
                views += all(np.shares_memory(a, np.frombuffer(ring.mm, np.uint8)) for a in batch)
                got.append(tuple(a.copy() for a in batch[:2]))
            del batch
            _same(ref, got)
            assert views == len(got)  # every batch came through a slot
            assert not ring.busy.any()  # and every slot went back to the ring
            held = list(loader.iter_epoch(1))  # holding all batches: more than the slots, still correct
            _same(_collect(DetectionLoader(_Toy(), _draw_sample, _BATCH, **kw), 1), [b[:2] for b in held])


def test_no_workers_error_and_abandon_behave_like_workers():
    import time
    loader = DetectionLoader(_Toy(12), _failing, _BATCH, batch_size=3, seed=0, shuffle=False)
    it = loader.iter_epoch(0)
    next(it)  # batch 0 fine; batch 1 holds sample 5
    with pytest.raises(WorkerError, match=r"sample index 5 = _Toy\[5\]"):
        next(it)
    ok = DetectionLoader(_Toy(), _draw_sample, _BATCH, batch_size=2, seed=0)
    full = _collect(ok, 0)
    it = ok.iter_epoch(0)
    next(it)
    it.close()  # abandoned with batches prepared: their slots come back (the one being made, soon)
    deadline = time.monotonic() + 10
    while ok._local_ring.busy.any() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not ok._local_ring.busy.any()
    _same(full, _collect(ok, 0))


def test_no_shm_file_left_after_end_abandon_or_error():
    import glob
    # slot_bytes=0: every worker batch goes through a /dev/shm file, the path that can leave files
    loader = DetectionLoader(_Toy(12), _failing, _BATCH, batch_size=2, seed=0, shuffle=False,
                             num_workers=2, slot_bytes=0, prefetch=4)
    with pytest.raises(WorkerError):
        list(loader.iter_epoch(0))
    prefix = loader._shm_prefix
    assert prefix
    list(loader.iter_epoch(0, start_batch=3))  # normal end: every file was unlinked when mapped
    assert not glob.glob(prefix + "*")
    it = loader.iter_epoch(0, start_batch=3)
    next(it)
    it.close()  # abandoned: files of in-flight batches go with close()
    loader.close()
    assert not glob.glob(prefix + "*")


def test_orphaned_workers_remove_their_files(tmp_path):
    """Main process killed: workers notice, delete unread batch files, and exit."""
    import glob
    import subprocess
    import sys
    import time
    script = tmp_path / "orphan.py"
    script.write_text(
        "import os, signal, sys, time\n"
        f"sys.path.insert(0, {os.path.dirname(__file__)!r})\n"
        "from test_loader import _Toy, _draw_sample, _BATCH\n"
        "from gluon_bof.data.loader import DetectionLoader\n"
        "loader = DetectionLoader(_Toy(40), _draw_sample, _BATCH, batch_size=2, seed=0, num_workers=2,\n"
        "                         slot_bytes=0, prefetch=6)\n"
        "it = loader.iter_epoch(0)\n"
        "next(it)\n"
        "import glob\n"
        "deadline = time.monotonic() + 20  # wait until prefetched batches sit unread (slow under load)\n"
        "while not glob.glob(loader._shm_prefix + '*') and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "print(loader._shm_prefix, len(glob.glob(loader._shm_prefix + '*')),\n"
        "      ' '.join(str(p.pid) for p in loader._workers), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    # (run returns once the workers, which share its stdout, have exited too)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    prefix, files, *pids = out.stdout.split()
    assert int(files) > 0  # the kill left unread batches behind ...
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (glob.glob(prefix + "*") or any(os.path.exists(f"/proc/{p}")
                                                                             for p in pids)):
        time.sleep(0.2)
    assert not glob.glob(prefix + "*")  # ... which the orphaned workers removed before exiting
    assert not any(os.path.exists(f"/proc/{p}") for p in pids)


def test_batchify_into_alloc_equals_fresh_arrays():
    from gluon_bof.data.batchify import pad_images
    from gluon_bof.data.loader import _SlotRing
    rng = np.random.default_rng(0)
    imgs = [rng.random((3, h, w), dtype=np.float32) for h, w in [(5, 7), (6, 4), (2, 2)]]
    labels = [rng.random((n, 6)).astype(np.float32) for n in (0, 3, 1)]
    scalars = [np.float32(0.5), np.float32(2.0), np.float32(1.5)]
    group = Group(pad_images, pad, stack)
    samples = list(zip(imgs, labels, scalars))
    ring = _SlotRing(1, 2, 4096)
    slot = ring.acquire(0)
    writer = ring.writer(slot)
    region = writer.region.copy()
    writer.region[:] = 77  # stale bytes from an earlier batch must not leak into padding
    into = group(samples, alloc=writer)
    metas = writer.finish(into)
    out = ring.views(slot, metas)
    for x, y in zip(group(samples), out):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)
    assert out[0][2, :, 2:, :].max() == 0 and np.all(out[1][0] == -1)
    del out, into, region, x, y
    assert ring.busy[slot] == 0  # released with its last view
    small = _SlotRing(1, 1, 64)  # one page: a 19 KB image falls outside, and finish says so
    w2 = small.writer(small.acquire(0))
    assert w2.finish(group([(np.zeros((3, 40, 40), np.float32), labels[1], scalars[0])], alloc=w2)) is None
