"""How the VOC metrics check and store ``update`` batches, and read them back in ``get``.

* Updates with different row counts, flags and dtypes are read back as one padded table equal,
  value for value, to padding each update on its own (-1 padding rows, difficult 0 without flags).
* The quick check accepts good tables and rejects each kind of bad value, and bad input is reported by ``get``
  with the same message whatever the table size.
* Per-image updates of one dtype (stored as raw bytes) and batched updates (stored as arrays) read
  back the same, and the caller may reuse its buffers after ``update``.
"""
import numpy as np
import pytest

from gluon_bof.metrics import VOC07MApMetric
from gluon_bof.metrics._inputs import quick_check
from gluon_bof.metrics.voc import _drop_padding_columns, _split_table, _StoredUpdates


def random_update(rng, n, m, with_flags, box_dtype=np.float32):
    b = int(rng.integers(1, 4))
    xy = rng.uniform(0, 50, (b, n + m, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 30, (b, n + m, 2))], axis=2).astype(box_dtype)
    labels = rng.integers(-1, 5, (b, n + m)).astype(np.float32)
    scores = rng.random((b, n)).astype(np.float32)
    flags = (rng.random((b, m)) < 0.3).astype(np.float32) if with_flags else None
    return boxes[:, :n], labels[:, :n], scores, boxes[:, n:], labels[:, n:], flags


def padded_reference(updates, n, m):
    """Each update padded on its own to n detection and m ground-truth rows, then stacked.

    Updates without any row are left out (they are counted, not stored).
    """
    parts = []
    for pb, pl, ps, gb, gl, gd in updates:
        b = pl.shape[0]
        if pl.shape[1] + gl.shape[1] == 0:
            continue
        boxes = np.full((b, n + m, 4), -1.0)
        labels = np.full((b, n + m), -1.0)
        scores = np.full((b, n), -1.0)
        difficult = np.zeros((b, m), bool)
        boxes[:, :pl.shape[1]], boxes[:, n:n + gl.shape[1]] = pb, gb
        labels[:, :pl.shape[1]], labels[:, n:n + gl.shape[1]] = pl, gl
        scores[:, :pl.shape[1]] = ps
        if gd is not None:
            difficult[:, :gl.shape[1]] = gd != 0
        parts.append((boxes, labels, scores, difficult))
    return [np.concatenate(p) for p in zip(*parts)]


def stored(updates):
    metric = VOC07MApMetric()
    for update in updates:
        metric.update(*update)
    return _StoredUpdates(metric._tables, metric._layouts, metric._empty)


@pytest.mark.parametrize("seed", range(4))
def test_updates_of_different_layouts_read_back_as_padding_each_one(seed):
    rng = np.random.default_rng(seed)
    shapes = [(int(rng.integers(0, 6)), int(rng.integers(0, 4)), bool(rng.random() < 0.7)) for _ in range(12)]
    updates = [random_update(rng, n, m, flags, np.float64 if k == 5 else np.float32)
               for k, (n, m, flags) in enumerate(shapes)]
    store = stored(updates)
    n, m = store.layout[:2]
    assert store.layout[2] and store.layout[3] == np.float64
    assert m == max(s[1] for s in shapes) and n == max(s[0] for s in shapes if s[0] + s[1])
    expected = padded_reference(updates, n, m)
    assert store.num_images == expected[0].shape[0]
    # Whole, then in runs of 2 images (what get does with a small run size).
    for runs in ([(0, store.num_images)], [(k, k + 2) for k in range(0, store.num_images, 2)]):
        got = [np.concatenate(p) for p in zip(*[_split_table(store.rows(a, b), store.layout) for a, b in runs])]
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g, e)


def test_updates_of_one_layout_are_stacked_as_they_are():
    rng = np.random.default_rng(7)
    updates = [random_update(rng, 4, 2, True) for _ in range(5)]
    store = stored(updates)
    got = _split_table(store.rows(0, store.num_images), store.layout)
    for g, e in zip(got, padded_reference(updates, 4, 2)):
        np.testing.assert_array_equal(g, e)


def test_trailing_padding_rows_are_left_out_and_the_rest_keep_their_positions():
    rng = np.random.default_rng(3)
    pb, pl, ps, gb, gl, gd = random_update(rng, 8, 2, True)
    pl[:] = 1
    pl[:, 5:] = -1
    pl[0, 2] = -1          # padding inside: kept, in place
    pb[:, 6:] = np.nan      # padding rows may hold anything
    ps[:, 6:] = np.inf
    store = stored([(pb, pl, ps, gb, gl, gd)])
    boxes, labels, scores, _ = _split_table(store.rows(0, store.num_images), store.layout)
    boxes, labels, scores, kept = _drop_padding_columns(boxes, labels, scores, 8)
    assert kept == 5 and labels.shape[1] == 5 + 2
    np.testing.assert_array_equal(labels, np.concatenate([pl[:, :5], gl], axis=1))
    np.testing.assert_array_equal(scores, ps[:, :5])
    metric = VOC07MApMetric()
    metric.update(pb, pl, ps, gb, gl, gd)
    trimmed = VOC07MApMetric()
    trimmed.update(pb[:, :5], pl[:, :5], ps[:, :5], gb, gl, gd)
    np.testing.assert_array_equal(metric.get()[1], trimmed.get()[1])
    pl[:, 7] = np.nan      # a NaN label is not padding: reported, not dropped
    metric = VOC07MApMetric()
    metric.update(pb, pl, ps, gb, gl, gd)
    with pytest.raises(ValueError, match=r"pred_labels: image 0, row 7 is NaN"):
        metric.get()
    pl[:] = -1             # nothing but padding: no detection row left
    store = stored([(pb, pl, ps, gb, gl, gd)])
    assert _drop_padding_columns(*_split_table(store.rows(0, store.num_images), store.layout)[:3], 8)[3] == 0


def test_updates_without_any_row_count_images_but_store_nothing():
    metric = VOC07MApMetric(class_names=["a"])
    e4, e = np.zeros((3, 0, 4), np.float32), np.zeros((3, 0), np.float32)
    metric.update(e4, e, e, e4, e, e)
    assert metric.num_images == 3 and not metric._tables
    assert np.isnan(metric.get()[1]).all()


def table_of(boxes, labels, rest):
    """One image's table: W boxes, W labels, then further values (scores, flags)."""
    return np.concatenate([np.asarray(boxes, np.float32).reshape(-1), np.asarray(labels, np.float32),
                           np.asarray(rest, np.float32)])[None, :]


GOOD = ([[0, 0, 5, 5], [1, 2, 1, 2], [-1, -1, -1, -1]], [0, 2, -1], [0.5, 0.0, 1.0])


@pytest.mark.parametrize("change,valid", [
    (None, True),
    (("boxes", (1, 0), 1.5), False),          # xmin > xmax
    (("boxes", (0, 3), -0.5), False),         # ymax < ymin
    (("boxes", (2, 0), 0.0), False),          # a padding row with xmin > xmax: still False
    (("boxes", (0, 2), np.inf), False),
    (("boxes", (0, 1), np.nan), False),
    (("labels", 1, 2.5), False),              # not a whole number
    (("labels", 1, 3.0), False),              # outside [0, 3)
    (("labels", 2, -0.5), False),
    (("labels", 0, np.nan), False),
    (("rest", 0, np.nan), False),
    (("rest", 2, -np.inf), False),
    (("labels", 1, 0.0), True),
])
def test_quick_check_rejects_every_kind_of_bad_value(change, valid):
    boxes, labels, rest = (np.array(v, np.float64) for v in GOOD)
    if change is not None:
        part, at, value = change
        {"boxes": boxes, "labels": labels, "rest": rest}[part][at] = value
    table = table_of(boxes, labels, rest)
    width = labels.size
    numpy_says = quick_check(table[:, :4 * width].reshape(1, width, 4), table[:, 4 * width:5 * width], 3, (table,))
    assert numpy_says is valid


@pytest.mark.parametrize("rows", [2, 60])
@pytest.mark.parametrize("field,row,value,pattern", [
    ("pred_scores", 1, np.nan, r"pred_scores: image 0, row 1 .*finite"),
    ("pred_bboxes", 1, [9, 0, 1, 5], r"pred_bboxes: image 0, row 1 .*xmin <= xmax"),
    ("pred_labels", 1, 2.5, r"pred_labels: image 0, row 1 .*whole numbers"),
    ("pred_labels", 1, 4, r"pred_labels: image 0, row 1 has class 4 outside \[0, 3\)"),
    ("gt_bboxes", 0, [0, 5, 5, 0], r"gt_bboxes: image 0, row 0 .*ymin <= ymax"),
    ("gt_difficults", 0, np.inf, r"gt_difficults: image 0, row 0 .*finite"),
])
def test_bad_rows_are_named_whichever_check_runs(rows, field, row, value, pattern):
    args = dict(
        pred_bboxes=np.full((1, rows, 4), -1, np.float32), pred_labels=np.full((1, rows), -1, np.float32),
        pred_scores=np.full((1, rows), -1, np.float32), gt_bboxes=np.array([[[0, 0, 9, 9]]], np.float32),
        gt_labels=np.array([[1]], np.float32), gt_difficults=np.array([[0]], np.float32))
    args["pred_bboxes"][0, :2] = [[0, 0, 4, 4], [1, 1, 6, 6]]
    args["pred_labels"][0, :2] = [0, 1]
    args["pred_scores"][0, :2] = [0.9, 0.4]
    args[field][0, row] = value
    metric = VOC07MApMetric(class_names=["a", "b", "c"])
    metric.update(**good_image(rows))
    metric.update(**args)
    assert metric.num_images == 2
    with pytest.raises(ValueError, match=pattern.replace("image 0", "image 1")):
        metric.get()


def good_image(rows):
    """One good image with ``rows`` detection rows (two real ones) and one ground truth."""
    labels = np.full((1, rows), -1, np.float32)
    labels[0, :2] = [0, 1]
    boxes = np.full((1, rows, 4), -1, np.float32)
    boxes[0, :2] = [[0, 0, 4, 4], [1, 1, 6, 6]]
    return dict(pred_bboxes=boxes, pred_labels=labels, pred_scores=np.where(labels >= 0, 0.5, -1).astype(np.float32),
                gt_bboxes=np.array([[[0, 0, 9, 9]]], np.float32), gt_labels=np.array([[1]], np.float32),
                gt_difficults=np.array([[0]], np.float32))


def test_per_image_and_batched_updates_give_the_same_values_and_own_their_data():
    rng = np.random.default_rng(11)
    images = [random_update(rng, int(rng.integers(0, 5)), int(rng.integers(0, 3)), True) for _ in range(20)]
    images = [tuple(a[:1] for a in image) for image in images]
    per_image, batched = VOC07MApMetric(), VOC07MApMetric()
    for image in images:
        # The caller's own buffers, overwritten after each update: what was stored must not change.
        buffers = [np.array(a) for a in image]
        per_image.update(*buffers)
        for b in buffers:
            b[...] = np.nan
    for start in range(0, 20, 5):
        part = images[start:start + 5]
        n = max(p[1].shape[1] for p in part)
        m = max(p[4].shape[1] for p in part)
        arrays = [np.full((5, n, 4), -1, np.float32), np.full((5, n), -1, np.float32), np.full((5, n), -1, np.float32),
                  np.full((5, m, 4), -1, np.float32), np.full((5, m), -1, np.float32), np.zeros((5, m), np.float32)]
        for k, image in enumerate(part):
            for array, values in zip(arrays, image):
                array[k, :values.shape[1]] = values[0]
        batched.update(*arrays)
    assert per_image._tables and all(type(t) is bytes for t in per_image._tables)
    names, values = per_image.get()
    np.testing.assert_array_equal(values, batched.get()[1])
    assert np.isfinite(values[-1])
