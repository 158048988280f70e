"""Parity of the VOC metrics with GluonCV's (the oracle) on randomized data, to 1e-9.

The data stresses what changes the numbers: many true, duplicate and false positives, difficult
objects, scores rounded so that ties are frequent (including tied groups of more than 16
detections of one class in one image, where numpy's argsort stops being stable), empty images,
classes without ground truth and classes without detections.
"""
import warnings

import mxnet as mx
import numpy as np
import pytest

from gluon_bof.metrics import VOC07MApMetric, VOCMApMetric

gluoncv_voc = pytest.importorskip("gluoncv.utils.metrics.voc_detection")

NUM_CLASSES = 8
NO_GT_CLASS = 7      # detections only: AP NaN
NEVER_DETECTED = 5   # ground truth only: AP 0


def make_data(rng, images=120, max_gt=6, max_det=40, decimals=1):
    """Padded (B, N, ...) arrays: pred boxes, labels, scores, gt boxes, labels, difficult."""
    gt_boxes = -np.ones((images, max_gt, 4), np.float32)
    gt_labels = -np.ones((images, max_gt), np.float32)
    gt_diff = -np.ones((images, max_gt), np.float32)
    boxes = -np.ones((images, max_det, 4), np.float32)
    labels = -np.ones((images, max_det), np.float32)
    scores = -np.ones((images, max_det), np.float32)
    gt_classes = [c for c in range(NUM_CLASSES) if c != NO_GT_CLASS]
    det_classes = [c for c in range(NUM_CLASSES) if c != NEVER_DETECTED]
    for i in range(images):
        m = int(rng.integers(0, max_gt + 1))
        xy = rng.uniform(0, 300, (m, 2))
        gt_boxes[i, :m] = np.concatenate([xy, xy + rng.uniform(3, 120, (m, 2))], axis=1)
        if rng.random() < 0.3:
            gt_boxes[i, :m] = np.round(gt_boxes[i, :m])
        gt_labels[i, :m] = rng.choice(gt_classes, m)
        gt_diff[i, :m] = rng.random(m) < 0.15
        n = int(rng.integers(0, max_det + 1))
        near = (rng.random(n) < 0.6) & (m > 0)
        if m > 0 and n >= 17 and rng.random() < 0.3:
            near[:] = True  # a large same-object group: > 16 detections of one class
            src = np.full(n, rng.integers(0, m))
        else:
            src = rng.integers(0, max(m, 1), n)
        for j in range(n):
            if near[j]:
                box = gt_boxes[i, src[j]] + rng.normal(0, 5, 4)
                label = gt_labels[i, src[j]] if rng.random() < 0.9 else rng.choice(det_classes)
            else:
                x, y = rng.uniform(0, 300, 2)
                box = np.array([x, y, x + rng.uniform(3, 120), y + rng.uniform(3, 120)])
                label = rng.choice(det_classes)
            boxes[i, j] = np.r_[np.minimum(box[:2], box[2:]), np.maximum(box[:2], box[2:])]
            labels[i, j] = label if label != NEVER_DETECTED else 0
        scores[i, :n] = np.round(rng.random(n), decimals) if decimals else rng.random(n)
        perm = rng.permutation(max_det)  # padding rows anywhere, as after NMS
        boxes[i], labels[i], scores[i] = boxes[i, perm], labels[i, perm], scores[i, perm]
    return boxes, labels, scores, gt_boxes, gt_labels, gt_diff


def run_both(ours, theirs, data, batch):
    for start in range(0, data[0].shape[0], batch):
        chunk = [a[start:start + batch] for a in data]
        ours.update(*chunk)
        theirs.update(*chunk)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return ours.get(), theirs.get()


def assert_same(ours, theirs):
    (names_o, values_o), (names_t, values_t) = ours, theirs
    assert names_o == names_t
    values_o, values_t = np.array(values_o), np.array(values_t)
    np.testing.assert_array_equal(np.isnan(values_o), np.isnan(values_t))
    np.testing.assert_allclose(values_o, values_t, rtol=0, atol=1e-9, equal_nan=True)


CLASS_NAMES = ["c%d" % i for i in range(NUM_CLASSES)]


@pytest.mark.oracle
@pytest.mark.parametrize("seed,decimals", [(0, 1), (1, 2), (2, 0), (3, 1)])
@pytest.mark.parametrize("iou_thresh", [0.5, 0.7])
@pytest.mark.parametrize("ours_cls,theirs_name", [(VOC07MApMetric, "VOC07MApMetric"), (VOCMApMetric, "VOCMApMetric")])
def test_parity_with_gluoncv(seed, decimals, iou_thresh, ours_cls, theirs_name):
    data = make_data(np.random.default_rng(seed), decimals=decimals)
    theirs_cls = getattr(gluoncv_voc, theirs_name)
    ours, theirs = run_both(ours_cls(iou_thresh, CLASS_NAMES), theirs_cls(iou_thresh, CLASS_NAMES), data, 16)
    assert_same(ours, theirs)
    values = np.array(ours[1])
    assert np.isnan(values[NO_GT_CLASS]) and values[NEVER_DETECTED] == 0.0
    assert 0.0 < values[-1] < 1.0


@pytest.mark.oracle
def test_large_tied_groups_follow_numpys_argsort(monkeypatch):
    """Sanity of the test data: sorting the (image, class) groups stably changes the numbers."""
    import gluon_bof.metrics.voc as voc

    data = make_data(np.random.default_rng(5), decimals=1)
    theirs = gluoncv_voc.VOC07MApMetric(0.5, CLASS_NAMES)
    theirs.update(*data)
    expected = np.array(theirs.get()[1])
    monkeypatch.setattr(voc, "_GROUP_SORT_KIND", "stable")
    naive = VOC07MApMetric(0.5, CLASS_NAMES)
    naive.update(*data)
    assert np.nanmax(np.abs(np.array(naive.get()[1]) - expected)) > 1e-6
    monkeypatch.undo()
    exact = VOC07MApMetric(0.5, CLASS_NAMES)
    exact.update(*data)
    np.testing.assert_allclose(exact.get()[1], expected, atol=1e-9, rtol=0)


@pytest.mark.oracle
def test_parity_with_ndarray_lists_and_no_class_names():
    data = make_data(np.random.default_rng(7), images=64)
    ours, theirs = VOC07MApMetric(), gluoncv_voc.VOC07MApMetric()
    for start in range(0, 64, 8):
        chunk = [a[start:start + 8] for a in data]
        theirs.update(*chunk)
        # Two "devices" of 4 images each, as mx.nd arrays, with 3 (B, M, 1)-shaped inputs.
        per_device = [[mx.nd.array(a[:4]), mx.nd.array(a[4:])] for a in chunk]
        per_device[1] = [x.expand_dims(2) for x in per_device[1]]
        ours.update(*per_device)
    names, values = ours.get()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        their_name, their_map = theirs.get()  # GluonCV without names returns only the mAP
    assert names == [str(c) for c in range(NUM_CLASSES)] + ["mAP"]
    assert values[-1] == pytest.approx(their_map, abs=1e-9)


@pytest.mark.oracle
def test_parity_without_difficult_flags_and_ragged_device_batches():
    # Two devices whose detectors pad to different sizes (40 and 25 rows); GluonCV gets the second
    # one padded to 40 rows with -1, which must not change anything.
    a = make_data(np.random.default_rng(9), images=20, max_det=40)[:5]
    b = make_data(np.random.default_rng(10), images=20, max_det=25)[:5]
    padded = [np.concatenate([x, np.full((20, 15) + x.shape[2:], -1, x.dtype)], axis=1) if k < 3 else x
              for k, x in enumerate(b)]
    ours, theirs = VOCMApMetric(0.5, CLASS_NAMES), gluoncv_voc.VOCMApMetric(0.5, CLASS_NAMES)
    theirs.update(*[np.concatenate([x, y]) for x, y in zip(a, padded)])
    ours.update(*[[x, y] for x, y in zip(a, b)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert_same(ours.get(), theirs.get())


def test_pr_curves_end_at_the_final_recall_and_precision():
    data = make_data(np.random.default_rng(3), images=30)
    metric = VOCMApMetric(0.5, CLASS_NAMES)
    metric.update(*data)
    curves = metric.pr_curves()
    assert NO_GT_CLASS not in curves and set(curves) <= set(range(NUM_CLASSES))
    for rec, prec in curves.values():
        assert np.all(np.diff(rec) >= 0) and np.all((prec >= 0) & (prec <= 1))


@pytest.mark.slow
@pytest.mark.oracle
@pytest.mark.parametrize("ours_cls,theirs_name", [(VOC07MApMetric, "VOC07MApMetric"), (VOCMApMetric, "VOCMApMetric")])
def test_parity_on_a_large_set(ours_cls, theirs_name):
    """3,000 images (~60,000 detections); also covered by benchmarks/bench_metrics.py (5,000 images)."""
    data = make_data(np.random.default_rng(11), images=3000, max_det=60, decimals=2)
    theirs_cls = getattr(gluoncv_voc, theirs_name)
    ours, theirs = run_both(ours_cls(0.5, CLASS_NAMES), theirs_cls(0.5, CLASS_NAMES), data, 32)
    assert_same(ours, theirs)


@pytest.mark.oracle
def test_parity_on_many_tiny_sets():
    """Tiny sets hit the edge cases (one image, no detection, no object, a single class...)."""
    for trial in range(60):
        rng = np.random.default_rng(1000 + trial)
        data = make_data(rng, images=int(rng.integers(1, 6)), max_gt=int(rng.integers(1, 4)),
                         max_det=int(rng.integers(1, 25)), decimals=int(rng.integers(0, 2)))
        ours, theirs = VOC07MApMetric(0.5, CLASS_NAMES), gluoncv_voc.VOC07MApMetric(0.5, CLASS_NAMES)
        ours.update(*data)
        theirs.update(*data)
        if not (data[1] >= 0).any() and not (data[4] >= 0).any():
            # GluonCV fails (max() of an empty dict) when nothing was seen; ours gives NaN.
            assert np.isnan(ours.get()[1]).all()
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            assert_same(ours.get(), theirs.get())


@pytest.mark.oracle
@pytest.mark.parametrize("ours_cls,theirs_name", [(VOC07MApMetric, "VOC07MApMetric"), (VOCMApMetric, "VOCMApMetric")])
def test_parity_when_updates_differ_in_rows_flags_and_dtypes(ours_cls, theirs_name):
    """Updates with different row counts, with and without difficult flags, and other dtypes."""
    ours, theirs = ours_cls(0.5, CLASS_NAMES), getattr(gluoncv_voc, theirs_name)(0.5, CLASS_NAMES)
    for k, (max_det, max_gt) in enumerate([(40, 6), (25, 3), (40, 6), (17, 9), (33, 1)]):
        data = list(make_data(np.random.default_rng(20 + k), images=12, max_gt=max_gt, max_det=max_det))
        if k == 1:
            data[5] = None  # no difficult flags
        if k == 2:
            data[2] = data[2].astype(np.float64)  # float64 scores, int labels
            data[1], data[4] = data[1].astype(np.int64), data[4].astype(np.int32)
        if k == 3:
            data[3] = data[3].astype(np.float64)  # float64 ground-truth boxes
        ours.update(*data)
        theirs.update(*data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert_same(ours.get(), theirs.get())


@pytest.mark.oracle
def test_parity_across_get_chunks(monkeypatch):
    """get() handles images in runs of rows; runs of a few images must give the same numbers."""
    import gluon_bof.metrics.voc as voc

    data = make_data(np.random.default_rng(31), images=90, decimals=1)
    theirs = gluoncv_voc.VOC07MApMetric(0.5, CLASS_NAMES)
    theirs.update(*data)
    monkeypatch.setattr(voc, "_CHUNK_ROWS", 7 * 40)  # 7 images per run, the last one shorter
    ours = VOC07MApMetric(0.5, CLASS_NAMES)
    ours.update(*data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert_same(ours.get(), theirs.get())


def unpadded_images(rng, images, dets, classes, decimals=2, max_gt=6):
    """Per image, unpadded float32 arrays (pred boxes, labels, scores, gt boxes, labels, difficult).

    ``dets`` is an inclusive (lo, hi) range of detections per image; 60% lie near an object.
    """
    out = []
    for _ in range(images):
        m = int(rng.integers(1, max_gt + 1))
        xy = rng.uniform(0, 300, (m, 2))
        gt_boxes = np.concatenate([xy, xy + rng.uniform(3, 120, (m, 2))], axis=1)
        gt_labels = rng.integers(0, classes, 3)[rng.integers(0, 3, m)]
        n = int(rng.integers(dets[0], dets[1] + 1))
        src = rng.integers(0, m, n)
        xy = rng.uniform(0, 300, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(3, 120, (n, 2))], axis=1)
        jitter = gt_boxes[src] + rng.normal(0, 5, (n, 4))
        jitter = np.concatenate([np.minimum(jitter[:, :2], jitter[:, 2:]), np.maximum(jitter[:, :2], jitter[:, 2:])], 1)
        near = rng.random(n) < 0.6
        boxes = np.where(near[:, None], jitter, boxes)
        labels = np.where(near, gt_labels[src], rng.integers(0, classes, n))
        scores = np.round(rng.random(n), decimals) if decimals else rng.random(n)
        out.append(tuple(a.astype(np.float32) for a in
                         (boxes, labels, scores, gt_boxes, gt_labels, rng.random(m) < 0.15)))
    return out


def padded_batches(images, batch, rows=None):
    """Batches padded with -1 to the batch's largest counts (detections to ``rows`` if given)."""
    for start in range(0, len(images), batch):
        part = images[start:start + batch]
        n = rows or max(len(p[1]) for p in part)
        m = max(len(p[4]) for p in part)
        b = len(part)
        arrays = [np.full(shape, -1, np.float32) for shape in [(b, n, 4), (b, n), (b, n), (b, m, 4), (b, m), (b, m)]]
        for k, image in enumerate(part):
            for array, values in zip(arrays, image):
                array[k, :len(values)] = values
        yield arrays


def run_batches(ours, theirs, batches):
    for arrays in batches:
        ours.update(*arrays)
        theirs.update(*arrays)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return ours.get(), theirs.get()


BOTH_METRICS = [(VOC07MApMetric, "VOC07MApMetric"), (VOCMApMetric, "VOCMApMetric")]


@pytest.mark.oracle
@pytest.mark.parametrize("ours_cls,theirs_name", BOTH_METRICS)
@pytest.mark.parametrize("case,batch,rows", [
    # (images, detections per image, classes): one update per image, as in a per-image loop
    ((300, (60, 60), 20), 1, None),   # every update has its own number of ground truths
    ((200, (5, 5), 20), 1, None),     # a tiny evaluation
    ((200, (5, 5), 20), 16, None),
    ((600, (0, 2), 20), 1, None),     # detection-sparse: many images and classes without detections
    ((600, (0, 2), 20), 16, None),
    ((600, (0, 2), 20), 1, 100),      # the same, in 100-row outputs padded with -1
    ((600, (0, 2), 20), 16, 100),
    ((300, (50, 50), 2), 1, None),    # few classes: large tied groups in every image
])
def test_parity_on_small_sparse_and_per_image_evaluations(ours_cls, theirs_name, case, batch, rows):
    images, dets, classes = case
    names = ["c%d" % i for i in range(classes)]
    data = unpadded_images(np.random.default_rng(images + dets[1] + classes), images, dets, classes)
    ours, theirs = run_batches(ours_cls(0.5, names), getattr(gluoncv_voc, theirs_name)(0.5, names),
                               padded_batches(data, batch, rows))
    assert_same(ours, theirs)
    assert 0.0 < ours[1][-1] < 1.0


@pytest.mark.oracle
def test_parity_when_updates_mix_empty_batches_missing_flags_and_dtypes(monkeypatch):
    """Per-image updates whose layouts all differ: no rows at all, detections or ground truths only,
    no difficult flags, float64 boxes; with no class names, the largest class is first met in the
    ground truths of the last run of images that ``get`` handles."""
    import gluon_bof.metrics.voc as voc

    rng = np.random.default_rng(41)
    data = unpadded_images(rng, 80, (0, 12), 6)
    last = list(data[-1])
    last[4] = last[4].copy()
    last[4][0] = 9  # class 9: one ground truth, never detected
    data[-1] = tuple(last)
    ours, theirs = VOC07MApMetric(), gluoncv_voc.VOC07MApMetric()
    e4, e = np.zeros((1, 0, 4), np.float32), np.zeros((1, 0), np.float32)
    for k, arrays in enumerate(padded_batches(data, 1)):
        if k % 9 == 0:
            empty = [e4, e, e, e4, e, e]
            ours.update(*empty)
            theirs.update(*empty)
        if k % 5 == 1:
            arrays[5] = None
        if k % 7 == 2:
            arrays[0], arrays[3] = arrays[0].astype(np.float64), arrays[3].astype(np.float64)
        if k % 11 == 3:
            arrays[:3] = [np.zeros((1, 0, 4), np.float32), e, e]  # ground truths only
        ours.update(*arrays)
        theirs.update(*arrays)
    monkeypatch.setattr(voc, "_CHUNK_ROWS", 60)  # runs of 3 images
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        names, values = ours.get()
        _, their_map = theirs.get()
    assert names == [str(c) for c in range(10)] + ["mAP"]
    assert values[9] == 0.0 and np.isnan(values[6:9]).all()
    assert values[-1] == pytest.approx(their_map, abs=1e-9)
    assert ours.num_images == 80 + 9


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parity_with_negative_and_signed_zero_scores(dtype):
    """Scores of both signs, -0.0 and 0.0 tied with each other, in groups of more than 16."""
    data = list(make_data(np.random.default_rng(11), images=80, max_det=40))
    rng = np.random.default_rng(12)
    valid = data[1] >= 0
    data[2] = np.where(valid, rng.choice(np.array([-0.0, 0.0, -0.25, 0.25, -2.0]), data[2].shape), -1.0)
    data = [a.astype(dtype) for a in data]
    assert (np.signbit(data[2]) & (data[2] == 0) & valid).any()
    ours, theirs = run_both(VOC07MApMetric(0.5, CLASS_NAMES), gluoncv_voc.VOC07MApMetric(0.5, CLASS_NAMES), data, 8)
    assert_same(ours, theirs)
