"""Pascal VOC detection mAP: ``VOC07MApMetric`` (11-point) and ``VOCMApMetric`` (area).

Same interface and the same numbers as GluonCV's metrics of the same names, computed without a
Python loop per detection or per (image, class):

* ``update`` only checks shapes and stores one copy of the batch (for one image given as numpy
  arrays of one dtype, the arrays' bytes joined in one call). Per-value checks (NaN/inf, box
  corners, labels) run in ``get``, a few whole-array operations over all stored images: in a
  per-image evaluation loop the fixed cost of eager checks would exceed the whole evaluation. A
  bad value is reported by ``get`` (every time it is called) with the argument, the image counted
  over every image given to ``update``, the row and the rule, as the batch's own check would.
* ``get`` reads all updates back as one padded table (one masked assignment when updates differ
  in row counts, as per-image updates do) and handles the images in runs small enough for the
  CPU cache, leaving out the detection rows that are padding in every image after the last real
  one; the result is cached until the next ``update``.
* Detections are ordered by class, then image, then descending score inside each (image, class),
  exactly as GluonCV's ``argsort()[::-1]`` orders them, ties included (:func:`_detection_order`).
  Each class is then one contiguous slice in GluonCV's accumulation order. Every score sort runs on
  integer keys ordered as the scores (:func:`_sort_keys`): numpy's argsort then makes the same
  comparisons, so the same permutation, with cheaper compares.
* Every detection gets its highest-IoU ground truth of the same class and image (the first one on
  IoU ties), with the devkit's +1 pixel convention (``xmax + 1``, ``ymax + 1``). A detection whose
  IoU reaches ``iou_thresh`` is ignored (-1) if that ground truth is difficult, a true positive if
  it is the first detection to claim it, else a false positive (:func:`match_detections`).
* Each class's detections are sorted by score over the whole data set with the same argsort as
  GluonCV; recall, precision and AP of every class then come from
  :func:`gluon_bof.metrics.ap.ranked_curves` and :func:`gluon_bof.metrics.ap.class_aps`.

What the edge cases yield:

* class with ground truth but no detection: AP 0 (nothing is recalled);
* class with detections but no (non-difficult) ground truth: AP NaN, since recall is undefined; it is
  left out of the mAP (``nanmean``), as in the devkit and GluonCV;
* class never seen: AP NaN, left out of the mAP;
* image without detections or without ground truth: contributes its ground truths to the recall
  denominator, or its detections as false positives;
* nothing at all: every AP and the mAP are NaN.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from numpy.core import _multiarray_umath

from . import ap as ap_lib
from ._inputs import as_batch, bad_images, check_batch_sizes, check_rows, quick_check

# Without numpy's dispatch layer: ``update`` may run once per image.
_concatenate = _multiarray_umath.concatenate
_ndarray = np.ndarray
# Joins the raw bytes of C-contiguous arrays in one call (BufferError for other arrays).
_join = b"".join

__all__ = ["VOCMApMetric", "VOC07MApMetric", "match_detections"]

# Detection rows (padding included) handled at once by ``get``: small enough for the CPU cache.
_CHUNK_ROWS = 65536

# numpy's argsort algorithm for GluonCV's per-(image, class) sorts; the tests swap in "stable" to
# show that the order of tied scores changes the numbers.
_GROUP_SORT_KIND = "quicksort"


def _small_keys(values: np.ndarray) -> np.ndarray:
    """``values`` as int16 when they fit (numpy's stable sort is then a radix sort), else unchanged."""
    if values.size and 0 <= values.min() and values.max() < 2 ** 15:
        return values.astype(np.int16)
    return values


def _sort_keys(values: np.ndarray) -> np.ndarray:
    """Integers that any comparison sort orders exactly as it orders the float ``values``.

    numpy's argsort runs the same algorithm for every numeric dtype, so the same comparison
    outcomes give the same permutation, tied values included; comparing integers is cheaper than
    comparing floats the NaN-aware way. The IEEE bits of a float, with the magnitude bits flipped
    for negative numbers, are strictly monotone in its value; ``-0.0`` is first made ``+0.0``,
    which compares equal to it. Values must not be NaN (the checks reject NaN scores). Other
    dtypes are returned unchanged.
    """
    if values.dtype == np.float32:
        bits, mask = np.add(values, np.float32(0)).view(np.int32), np.int32(0x7FFFFFFF)
    elif values.dtype == np.float64:
        bits, mask = np.add(values, 0.0).view(np.int64), np.int64(0x7FFFFFFFFFFFFFFF)
    else:
        return values
    bits ^= (bits >> (8 * bits.itemsize - 1)) & mask
    return bits


def _detection_order(labels: np.ndarray, scores: np.ndarray) -> Tuple[np.ndarray, ...]:
    """Valid detections ordered by class, then image, then GluonCV's order inside the image.

    GluonCV sorts each (image, class) group with ``score.argsort()[::-1]`` on the group's scores in
    row order. numpy's default argsort is an introsort whose order of tied scores depends on the
    group's size and contents (groups of up to 16 are insertion-sorted, so stably; larger ones go
    through quicksort partitions), so every group is sorted by that same argsort: the groups of
    one size together, one group per row of a 2-D block (argsort along axis 1 sorts each row with
    the 1-D algorithm). Each class's detections then form one contiguous run in GluonCV's
    accumulation order (image by image, as ``update`` saw them).

    Parameters
    ----------
    labels : (B, W) array
        Row ``r < N`` of image ``b`` is detection ``r``; negative = padding. Further columns (the
        ground truths stored alongside) are ignored.
    scores : (B, N) array
        Detection scores.

    Returns
    -------
    at : (D,) int64 array
        Flat index ``b * W + r`` of each valid detection, in order.
    image : (D,) int64 array
        Its image ``b``.
    label : (D,) int64 array
        Its class (non-decreasing).
    key : (D,) int array
        Its score's sort key (:func:`_sort_keys`; integer scores are taken as float64).
    group : (D,) int64 array
        Its (image, class) group, ``label * B + b`` (non-decreasing).
    """
    images, rows, width = scores.shape[0], scores.shape[1], labels.shape[1]
    if scores.dtype.kind != "f":
        scores = scores.astype(np.float64)
    valid = labels[:, :rows] >= 0
    valid_image, valid_row = np.nonzero(valid)
    valid_key = _sort_keys(scores[valid])
    label = labels[:, :rows][valid].astype(np.int64)
    # Stable by class over the row-major order: class, then image, then row.
    by_class = np.argsort(_small_keys(label), kind="stable")
    image, label = valid_image[by_class], label[by_class]
    group = label * images + image
    starts = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
    sizes = np.diff(np.append(starts, group.size))
    key = valid_key[by_class]
    # ``pick[k]``: the (row-major) valid detection at position k of the final order.
    pick = by_class.copy()
    by_size = np.argsort(sizes, kind="stable")
    sorted_sizes = sizes[by_size]
    cuts = np.flatnonzero(np.diff(sorted_sizes)) + 1
    columns = np.arange(int(sorted_sizes[-1]) if sizes.size else 0)
    for lo, hi in zip(np.concatenate(([0], cuts)).tolist(), np.concatenate((cuts, [sizes.size])).tolist()):
        size = int(sorted_sizes[lo])
        if size < 2:
            continue
        first = starts[by_size[lo:hi]][:, None]
        block = first + columns[:size]
        order = np.argsort(key[block], axis=1, kind=_GROUP_SORT_KIND)[:, ::-1]
        pick[block] = by_class[order + first]
    at = valid_image[pick] * width + valid_row[pick]
    return at, image, label, valid_key[pick], group


def _corners_plus_one(box: np.ndarray) -> np.ndarray:
    """(5, K) table ``x1, y1, x2 + 1, y2 + 1, area`` of (K, 4) boxes: the devkit's inclusive pixels.

    Computed in the boxes' dtype, as GluonCV computes them. One contiguous row per quantity: the
    IoU then works on contiguous arrays, several times faster than on the columns of a (K, 5)
    table.
    """
    table = np.empty((5, box.shape[0]), dtype=box.dtype)
    corners = box.T
    table[:2] = corners[:2]
    np.add(corners[2:], 1, out=table[2:4], casting="unsafe")
    np.multiply(table[2] - table[0], table[3] - table[1], out=table[4], casting="unsafe")
    return table


def _iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Element-wise IoU of two (5, K) :func:`_corners_plus_one` tables (or sequences of their 5 rows).

    The arithmetic (and so the rounding) is GluonCV's ``bbox_iou`` on boxes with ``+1`` added to
    xmax and ymax, so comparisons with ``iou_thresh`` agree bit for bit.
    """
    left = np.maximum(pred[0], gt[0])
    top = np.maximum(pred[1], gt[1])
    right = np.minimum(pred[2], gt[2])
    bottom = np.minimum(pred[3], gt[3])
    valid = np.less(left, right)
    valid &= np.less(top, bottom)
    # In place, the same operations in the same order: ((right - left) * (bottom - top)) * valid.
    inter = np.subtract(right, left, out=right)
    inter *= np.subtract(bottom, top, out=bottom)
    inter *= valid
    union = np.add(pred[4], gt[4], out=left)
    union -= inter
    return np.divide(inter, union, out=inter) if inter.dtype.kind == "f" else inter / union


def match_detections(
    pred_image: np.ndarray,
    pred_label: np.ndarray,
    pred_box: np.ndarray,
    gt_image: np.ndarray,
    gt_label: np.ndarray,
    gt_difficult: np.ndarray,
    gt_box: np.ndarray,
    iou_thresh: float,
    pred_box_index: Optional[np.ndarray] = None,
    pred_box_dtype: Optional[np.dtype] = None,
    pred_key: Optional[Tuple[int, np.ndarray]] = None,
) -> np.ndarray:
    """Mark every detection as true positive, false positive or ignored, all images at once.

    Parameters
    ----------
    pred_image, pred_label : (D,) int arrays
        Image index and class of each valid detection. The detections of one (image, class) must
        be contiguous and in GluonCV's processing order (descending score, see
        :func:`_detection_order`); the groups themselves may come in any order.
    pred_box : (D, 4) array, or (K, 4) with ``pred_box_index``
        ``(xmin, ymin, xmax, ymax)`` in pixels.
    gt_image, gt_label : (G,) int arrays
        Image index and class of each valid ground truth, rows of one image in their order.
    gt_difficult : (G,) bool array
        Difficult flags.
    gt_box : (G, 4) array
        Ground-truth boxes.
    iou_thresh : float
        A detection matches a ground truth when their IoU is >= ``iou_thresh``.
    pred_box_index : (D,) int array, optional
        Row of ``pred_box`` holding each detection's box (saves gathering boxes that have no
        ground truth to meet).
    pred_box_dtype : numpy dtype, optional
        dtype in which to compute with the detection boxes, when ``pred_box`` holds them promoted
        (the IoU is computed in the caller's dtypes, as GluonCV does).
    pred_key : (int, (D,) int array), optional
        ``(K, pred_label * K + pred_image)`` with K above every image index, when the caller has it.

    Returns
    -------
    (D,) int8 array
        1 true positive, 0 false positive, -1 ignored (matched a difficult object).
    """
    matches = np.zeros(pred_image.size, dtype=np.int8)
    if pred_image.size == 0 or gt_image.size == 0:
        return matches
    # Ground truths sorted by (class, image), rows ascending inside: GluonCV's argmax tie order.
    if pred_key is None:
        num_images = int(max(pred_image.max(), gt_image.max())) + 1
        pred_key = (num_images, pred_label * num_images + pred_image)
    num_images, p_key = pred_key
    g_key = gt_label * num_images + gt_image
    g_order = np.argsort(g_key, kind="stable")
    g_key = g_key[g_order]
    gt_difficult, gt_box = gt_difficult[g_order], gt_box[g_order]
    # Runs of detections of one (image, class): look their ground truths up once per run.
    run_start = np.flatnonzero(np.concatenate(([True], p_key[1:] != p_key[:-1])))
    run_key = p_key[run_start]
    run_size = np.diff(np.append(run_start, p_key.size))
    run_first = np.searchsorted(g_key, run_key, side="left")
    run_count = np.searchsorted(g_key, run_key, side="right") - run_first
    # Detections that have candidates, by decreasing number of candidates: those with more than j
    # candidates form a prefix, so candidate j is scored against a slice, not a gathered subset.
    runs = np.flatnonzero(run_count)
    if runs.size == 0:
        return matches
    runs = runs[np.argsort(-run_count[runs], kind="stable")]
    sizes = run_size[runs]
    ends = np.cumsum(sizes)
    det = np.repeat(run_start[runs] - ends + sizes, sizes) + np.arange(int(ends[-1]))
    det_first = np.repeat(run_first[runs], sizes)
    prefix = ends[np.searchsorted(-run_count[runs], -np.arange(int(run_count[runs[0]])), side="left") - 1]
    box_rows = det if pred_box_index is None else pred_box_index[det]
    pred_box = np.take(pred_box, box_rows, axis=0)
    if pred_box_dtype is not None and pred_box.dtype != pred_box_dtype:
        pred_box = pred_box.astype(pred_box_dtype)
    pred_table = _corners_plus_one(pred_box)
    gt_table = _corners_plus_one(gt_box)

    # Best candidate of each detection: the first highest IoU, as GluonCV's argmax. The candidates'
    # table is gathered row by row: five 1-D gathers take about half the time of ``gt_table[:, index]``.
    best = _iou(pred_table, [row[det_first] for row in gt_table])
    best_j = np.zeros(det.size, dtype=np.int64)
    for j in range(1, prefix.size):
        n = int(prefix[j])
        candidate = det_first[:n] + j
        iou = _iou(pred_table[:, :n], [row[candidate] for row in gt_table])
        better = np.flatnonzero(iou > best[:n])
        best[better] = iou[better]
        best_j[better] = j
    hit = np.flatnonzero(~(best < iou_thresh))
    det_hit = det[hit]
    gt_hit = det_first[hit] + best_j[hit]

    difficult = gt_difficult[gt_hit]
    matches[det_hit[difficult]] = -1
    # The first detection (in processing order) to claim a ground truth takes it. Claimants of one
    # ground truth come from one run, in processing order, so a stable sort by ground truth puts
    # the first one first.
    claimants, claimed = det_hit[~difficult], gt_hit[~difficult]
    by_gt = np.argsort(_small_keys(claimed), kind="stable")
    claimed = claimed[by_gt]
    first = by_gt[np.concatenate(([True], claimed[1:] != claimed[:-1]))[:claimed.size]]
    matches[claimants[first]] = 1
    return matches


def _split_table(table: np.ndarray, layout: tuple, raw: bool = False) -> Tuple[Any, ...]:
    """Boxes (B, N + M, 4), labels (B, N + M), scores (B, N), difficult (B, M) bool or None of a table.

    ``table`` is a run of B images in ``layout`` (see :class:`_StoredUpdates`). With ``raw``, the
    scores and difficult flags are returned as stored (views, the table's dtype), for the checks.
    """
    n, m, has_difficult, _, _, score_dtype = layout[:6]
    width = n + m
    if raw:
        boxes = table[:, :4 * width].reshape(table.shape[0], width, 4)
        difficult = table[:, 5 * width + n:] if has_difficult else None
        return boxes, table[:, 4 * width:5 * width], table[:, 5 * width:5 * width + n], difficult
    boxes = np.ascontiguousarray(table[:, :4 * width]).reshape(table.shape[0], width, 4)
    labels = np.ascontiguousarray(table[:, 4 * width:5 * width])
    scores = np.ascontiguousarray(table[:, 5 * width:5 * width + n], dtype=score_dtype)
    difficult = table[:, 5 * width + n:] != 0 if has_difficult else None
    return boxes, labels, scores, difficult


def _drop_padding_columns(boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                          rows: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Contiguous copies without the detection rows that are padding in every image after the last real one.

    Detectors pad to a fixed number of outputs (e.g. 100 rows for 0-2 detections); checking,
    sorting and matching those rows would cost more than all the rest. Kept rows keep their
    positions; a NaN label is not padding (it is kept, to be reported).

    Parameters
    ----------
    boxes : (B, N + M, 4), labels : (B, N + M), scores : (B, N)
        A run of images as :func:`_split_table` returns them (views are fine).
    rows : int
        ``N``.

    Returns
    -------
    (boxes, labels, scores, kept)
        The arrays with ``kept <= N`` detection rows, C-contiguous.
    """
    kept = rows
    if rows:
        used = np.logical_or.reduce(~(labels[:, :rows] < 0), axis=0)
        kept = rows - int(used[::-1].argmax()) if used.any() else 0
    if kept == rows:
        return (np.ascontiguousarray(boxes), np.ascontiguousarray(labels), np.ascontiguousarray(scores), rows)
    boxes = _concatenate((boxes[:, :kept], boxes[:, rows:]), axis=1)
    labels = _concatenate((labels[:, :kept], labels[:, rows:]), axis=1)
    return boxes, labels, np.ascontiguousarray(scores[:, :kept]), kept


def _table_width(layout: tuple) -> int:
    """Values per image in a table of ``layout``: ``5 (N + M) + N [+ M]``."""
    n, m, has_difficult = layout[:3]
    return 5 * (n + m) + n + (m if has_difficult else 0)


def _section_use(layout: tuple, has_difficult: bool) -> List[int]:
    """Values a table row of ``layout`` holds in each section of the common row.

    A table row is six sections (detection boxes, ground-truth boxes, detection labels,
    ground-truth labels, scores, difficult flags); each fills the start of the same section of the
    common row, in the same order, so the row's values land on the filled columns in order.
    """
    n_i, m_i, has_d = layout[:3]
    return [4 * n_i, 4 * m_i, n_i, m_i, n_i] + ([m_i if has_d else 0] if has_difficult else [])


class _StoredUpdates:
    """All stored update tables seen as one table of one layout, read in runs of images.

    Each ``update`` stores one ``(B_i, 5 (N_i + M_i) + N_i [+ M_i])`` table: per image, detection
    boxes, ground-truth boxes (4 columns each), detection labels, ground-truth labels, scores and,
    if given, difficult flags; stored as its raw bytes (``bytes``, or a uint8 view of its array).
    Its layout is ``(N_i, M_i, has difficult flags, pred box dtype, gt box dtype, score dtype,
    table dtype)``. When every update has the same layout the tables are simply
    stacked. Otherwise (e.g. one image per update, each with its own number of ground truths)
    a run of images is read into the common layout (``N = max N_i``, ``M = max M_i``, -1 in
    padding rows, difficult flags 0 in padding rows and where none were given) by one masked
    assignment from the concatenated tables, not one pad per update.

    Parameters
    ----------
    tables : list of bytes-like
        One per stored update, in update order: its table's bytes.
    layouts : list of tuple
        Their layouts.
    empty : list of (int, int), optional
        Updates not stored because they had no row: ``(stored updates before it, its images)``;
        only used to count images as ``update`` saw them (:meth:`global_index`).
    """

    def __init__(self, tables: List[Any], layouts: List[tuple], empty: Sequence[Tuple[int, int]] = ()) -> None:
        index = {layout: k for k, layout in enumerate(dict.fromkeys(layouts))}
        widths = np.array([_table_width(layout) for layout in index])
        itemsizes = np.array([layout[6].itemsize for layout in index])
        kinds = np.fromiter(map(index.__getitem__, layouts), np.int64, len(layouts))
        table_dtypes = {layout[6] for layout in index}
        # The stored bytes are read run by run (:meth:`_flat`): one buffer of every update at once
        # would be a large fresh allocation, slow to fault in.
        self._tables, self._layouts = tables, layouts
        self._dtype = table_dtypes.pop() if len(table_dtypes) == 1 else None
        sizes = np.fromiter(map(len, tables), np.int64, len(tables)) // (widths * itemsizes)[kinds]
        self.num_images = int(sizes.sum())
        self._starts = np.concatenate(([0], np.cumsum(sizes)))
        self._empty = list(empty)
        self._uniform = len(index) == 1
        if self._uniform:
            self.layout = layouts[0]
            self._width = int(widths[0])
            return
        n = max(layout[0] for layout in index)
        m = max(layout[1] for layout in index)
        has_difficult = any(layout[2] for layout in index)
        dtype = np.result_type(*{layout[6] for layout in index})
        self.layout = (n, m, has_difficult) + tuple(
            np.result_type(*{layout[k] for layout in index}) for k in (3, 4, 5)) + (dtype,)
        self._sizes = [4 * n, 4 * m, n, m, n] + ([m] if has_difficult else [])
        # Per layout, values held in each section of the common row; the layout of each image.
        self._layout_use = np.array([_section_use(layout, has_difficult) for layout in index])
        self._image_layout = np.repeat(kinds, sizes)
        # What the columns no update fills hold: -1 (padding rows), 0 in the difficult flags.
        self._fill = np.full(sum(self._sizes), -1, dtype=dtype)
        self._fill[5 * (n + m) + n:] = 0
        self._offsets = np.concatenate(([0], np.cumsum(np.repeat(widths[kinds], sizes))))

    def _flat(self, first: int, stop: int) -> Tuple[np.ndarray, int]:
        """Values of the updates holding images ``first .. stop - 1``, and the first one's image.

        One join of their bytes (a bytearray, so the array is writable like any other), or a
        concatenation in the common dtype when updates differ in dtype.
        """
        lo = int(np.searchsorted(self._starts, first, side="right")) - 1
        hi = int(np.searchsorted(self._starts, stop, side="left"))
        if self._dtype is not None:
            flat = np.frombuffer(bytearray().join(self._tables[lo:hi]), self._dtype)
        else:
            flat = np.concatenate([np.frombuffer(t, layout[6]).astype(self.layout[6])
                                   for t, layout in zip(self._tables[lo:hi], self._layouts[lo:hi])])
        return flat, int(self._starts[lo])

    def rows(self, first: int, stop: int) -> np.ndarray:
        """Images ``first .. stop - 1`` as a ``(stop - first, 5 (N + M) + N [+ M])`` table."""
        stop = min(stop, self.num_images)
        flat, flat_first = self._flat(first, stop)
        if self._uniform:
            return flat.reshape(-1, self._width)[first - flat_first:stop - flat_first]
        table = np.empty((stop - first, self._fill.size), dtype=self._fill.dtype)
        table[:] = self._fill
        base = self._offsets[flat_first]
        use = self._layout_use[self._image_layout[first:stop]]
        mask = np.empty(table.shape, dtype=bool)
        start = 0
        for k, size in enumerate(self._sizes):
            np.less(np.arange(size), use[:, k:k + 1], out=mask[:, start:start + size])
            start += size
        table[mask] = flat[self._offsets[first] - base:self._offsets[stop] - base]
        return table

    def update_of(self, image: int) -> int:
        """Index (among stored updates) of the update holding stored image ``image``."""
        return int(np.searchsorted(self._starts, image, side="right")) - 1

    def update_images(self, update: int) -> Tuple[int, int]:
        """Stored images ``(first, stop)`` of stored update ``update``."""
        return int(self._starts[update]), int(self._starts[update + 1])

    def global_index(self, update: int) -> int:
        """Images given to ``update`` before stored update ``update``, empty updates included."""
        return int(self._starts[update]) + sum(images for before, images in self._empty if before <= update)


class VOCMApMetric:
    """Pascal VOC mAP with the area (VOC2010+) AP; see the module docstring for the protocol.

    Parameters
    ----------
    iou_thresh : float
        IoU at or above which a detection matches a ground truth (0.5 in the paper).
    class_names : sequence of str, optional
        Class names; when given, labels must lie in ``[0, len(class_names))`` and ``get`` reports
        every class. Without names, classes ``0 .. largest label seen`` are reported as ``'0'``,
        ``'1'``...
    """

    protocol = "voc_area"
    use_07_metric = False

    def __init__(self, iou_thresh: float = 0.5, class_names: Optional[Sequence[str]] = None) -> None:
        iou_thresh = float(iou_thresh)
        if not 0.0 < iou_thresh <= 1.0:
            raise ValueError("iou_thresh must be in (0, 1], got %r" % iou_thresh)
        if class_names is not None:
            if isinstance(class_names, str) or not all(isinstance(n, str) for n in class_names):
                raise ValueError("class_names must be a sequence of str, got %r" % (class_names,))
            class_names = list(class_names)
        self.iou_thresh = iou_thresh
        self.class_names = class_names
        self.num_classes = None if class_names is None else len(class_names)
        self.name = "VOC07MeanAP" if self.use_07_metric else "VOCMeanAP"
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated by ``update``."""
        # Per update, its table (see update), flattened, and its layout (see _StoredUpdates).
        self._tables: List[Any] = []
        self._layouts: List[tuple] = []
        # Updates without any row (not stored): (stored updates before each, its images).
        self._empty: List[Tuple[int, int]] = []
        self._cache: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = None
        self.num_images = 0

    def update(
        self,
        pred_bboxes: Any,
        pred_labels: Any,
        pred_scores: Any,
        gt_bboxes: Any,
        gt_labels: Any,
        gt_difficults: Any = None,
    ) -> None:
        """Add a batch of detections and ground truths (shapes checked now, values and matching at ``get``).

        Parameters
        ----------
        pred_bboxes : (B, N, 4) array-like
            Detected boxes ``(xmin, ymin, xmax, ymax)`` in pixels; ``mx.nd``, numpy, or a list of
            per-device batches.
        pred_labels, pred_scores : (B, N) or (B, N, 1) array-like
            Class ids (negative = padding row) and confidences.
        gt_bboxes : (B, M, 4) array-like
            Ground-truth boxes.
        gt_labels : (B, M) or (B, M, 1) array-like
            Ground-truth class ids (negative = padding row).
        gt_difficults : (B, M) or (B, M, 1) array-like, optional
            Nonzero for difficult objects, which are ignored; None means none is difficult.

        Raises
        ------
        ValueError
            On wrong shapes or mismatched batch lengths or row counts. Bad values (NaN/inf scores
            or boxes, boxes with ``xmin > xmax`` or ``ymin > ymax``, non-integer labels, labels
            outside the class range) are reported by ``get``.
        """
        pb, pl, ps, gb, gl, gd = pred_bboxes, pred_labels, pred_scores, gt_bboxes, gt_labels, gt_difficults
        # One image as numpy arrays of one dtype (what a per-image evaluation loop passes): its raw
        # bytes, joined in one call, are already its table row (see below).
        try:
            b, n = pl.shape
            b_gt, m = gl.shape
        except (AttributeError, ValueError):
            b = b_gt = 0
        if (b == 1 and b_gt == 1 and type(pb) is _ndarray and type(pl) is _ndarray and type(ps) is _ndarray
                and type(gb) is _ndarray and type(gl) is _ndarray and pb.shape == (1, n, 4)
                and ps.shape == (1, n) and gb.shape == (1, m, 4)):
            dtype = pb.dtype
            if (pl.dtype is dtype and ps.dtype is dtype and gb.dtype is dtype and gl.dtype is dtype
                    and (gd is None or (type(gd) is _ndarray and gd.shape == (1, m) and gd.dtype is dtype))):
                try:
                    part = _join((pb, gb, pl, gl, ps) if gd is None else (pb, gb, pl, gl, ps, gd))
                except BufferError:  # not contiguous
                    part = None
                if part is not None:
                    if part:
                        self._tables.append(part)
                        self._layouts.append((n, m, gd is not None, dtype, dtype, dtype, dtype))
                    else:
                        self._empty.append((len(self._tables), 1))
                    self.num_images += 1
                    self._cache = None
                    return
        pb = as_batch(pred_bboxes, "pred_bboxes", 4)
        pl = as_batch(pred_labels, "pred_labels", None)
        ps = as_batch(pred_scores, "pred_scores", None)
        gb = as_batch(gt_bboxes, "gt_bboxes", 4)
        gl = as_batch(gt_labels, "gt_labels", None)
        gd = None if gt_difficults is None else as_batch(gt_difficults, "gt_difficults", None, fill=0.0)
        size, gt_size = pl.shape, gl.shape
        if not (pb.shape[:2] == size == ps.shape and gb.shape[:2] == gt_size and size[0] == gt_size[0]
                and (gd is None or gd.shape == gt_size)):
            check_batch_sizes(
                [pb, pl, ps, gb, gl, gl if gd is None else gd],
                ["pred_bboxes", "pred_labels", "pred_scores", "gt_bboxes", "gt_labels", "gt_difficults"],
                ["pred", "pred", "pred", "gt", "gt", "gt"],
            )
        n, m = size[1], gt_size[1]
        # One row per image holding everything: detection and ground-truth boxes, labels, scores,
        # difficult flags. Kept as a copy (the caller may reuse its buffers), checked by ``get``.
        table = _concatenate((pb.reshape(size[0], 4 * n), gb.reshape(size[0], 4 * m), pl, gl, ps)
                             + (() if gd is None else (gd,)), axis=1)
        if table.size:  # images without any row contribute nothing
            self._tables.append(table.reshape(-1).view(np.uint8))
            self._layouts.append((n, m, gd is not None, pb.dtype, gb.dtype, ps.dtype, table.dtype))
        elif size[0]:
            self._empty.append((len(self._tables), size[0]))
        self.num_images += size[0]
        self._cache = None

    def _check_stored(self, stored: "_StoredUpdates", boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                      difficult: Optional[np.ndarray], rows: int, first: int) -> None:
        """Raise ``ValueError`` for the first stored update, among images ``first ..``, with bad rows.

        The arrays are a run of images of ``stored`` from image ``first``, as
        :func:`_drop_padding_columns` returns them (``rows`` detection rows), with the difficult
        flags as stored. A few whole-array operations decide that the run is good; otherwise the
        images with bad rows are located at once and the update holding the first one is checked
        again by :func:`gluon_bof.metrics._inputs.check_rows`, which names the argument, the image
        (counted over every image given to ``update``), the row and the rule. Padding rows
        (negative label) may hold anything.
        """
        if quick_check(boxes, labels, self.num_classes, (boxes, scores, difficult)):
            return
        bad = bad_images(boxes[:, :rows], labels[:, :rows], scores, self.num_classes)
        bad |= bad_images(boxes[:, rows:], labels[:, rows:], difficult, self.num_classes)
        if not bad.any():
            return  # only padding rows failed the quick test
        update = stored.update_of(first + int(bad.argmax()))
        lo, hi = stored.update_images(update)
        n = stored.layout[0]
        boxes, labels, scores, difficult = _split_table(stored.rows(lo, hi), stored.layout, raw=True)
        offset = stored.global_index(update)
        check_rows(boxes[:, :n], labels[:, :n], scores, self.num_classes,
                   ("pred_bboxes", "pred_labels", "pred_scores"), offset)
        check_rows(boxes[:, n:], labels[:, n:], np.zeros(labels[:, n:].shape) if difficult is None else difficult,
                   self.num_classes, ("gt_bboxes", "gt_labels", "gt_difficults"), offset)
        raise AssertionError("bad rows found but not named")  # unreachable: check_rows agrees

    @staticmethod
    def _flat(boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray, difficult: Optional[np.ndarray],
              rows: int, gt_dtype: np.dtype) -> Tuple[Tuple[np.ndarray, ...], Tuple[np.ndarray, ...]]:
        """Valid detections (class, image, GluonCV's order) and ground truths (image, row order).

        Parameters are a run of B images from :func:`_split_table`. Returns
        ``(image, label, key, at, group)`` for the detections, ``key`` being the scores' sort keys,
        ``at`` each one's row in ``boxes.reshape(-1, 4)`` and ``group`` ``label * B + image``, and
        ``(image, label, difficult, boxes)`` for the ground truths; image indices count from the
        first image given.
        """
        width = labels.shape[1]
        at, image, label, key, group = _detection_order(labels, scores)
        g_image, g_row = np.nonzero(labels[:, rows:] >= 0)
        g_at = g_image * width + rows + g_row
        gt_box = np.take(boxes.reshape(-1, 4), g_at, axis=0)
        gt = (g_image, np.take(labels, g_at).astype(np.int64),
              np.zeros(g_at.size, bool) if difficult is None else difficult[g_image, g_row],
              gt_box if gt_box.dtype == gt_dtype else gt_box.astype(gt_dtype))
        return (image, label, key, at, group), gt

    def _per_class(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every class's ranked curves, matching everything once (cached until the next ``update``).

        Returns ``(recall, precision, bounds, n_pos)`` as :func:`gluon_bof.metrics.ap.ranked_curves`
        takes and returns them: class ``c`` is ``[bounds[c], bounds[c + 1])`` of the (D,) curves.
        """
        if self._cache is not None:
            return self._cache
        if not self._tables:
            size = self.num_classes or 0
            return np.zeros(0), np.zeros(0), np.zeros(size + 1, np.int64), np.zeros(size, np.int64)
        stored = _StoredUpdates(self._tables, self._layouts, self._empty)
        rows, columns, _, pred_dtype, gt_dtype, score_dtype = stored.layout[:6]
        # Without class names the classes are 0 .. the largest label seen, found run by run.
        size = self.num_classes or 0
        n_pos = np.zeros(size, dtype=np.int64)
        key_parts: List[List[np.ndarray]] = [[] for _ in range(size)]
        match_parts: List[List[np.ndarray]] = [[] for _ in range(size)]
        # Images are handled in runs of about 64k detection rows, whose intermediate arrays stay in
        # the CPU cache; every step before the final per-class sort is per image anyway.
        step = max(1, _CHUNK_ROWS // max(1, rows + columns))
        for first in range(0, stored.num_images, step):
            boxes, labels, scores, difficult = _split_table(stored.rows(first, first + step), stored.layout, raw=True)
            boxes, labels, scores, kept = _drop_padding_columns(boxes, labels, scores, rows)
            self._check_stored(stored, boxes, labels, scores, difficult, kept, first)
            if scores.dtype != score_dtype:
                scores = scores.astype(score_dtype)
            if difficult is not None:
                difficult = difficult != 0
            if self.num_classes is None and labels.size and labels.max() >= size:
                grow = int(labels.max()) + 1 - size
                n_pos = np.concatenate((n_pos, np.zeros(grow, np.int64)))
                key_parts += [[] for _ in range(grow)]
                match_parts += [[] for _ in range(grow)]
                size += grow
            (image, label, key, at, group), gt = self._flat(boxes, labels, scores, difficult, kept, gt_dtype)
            matches = match_detections(image, label, boxes.reshape(-1, 4), *gt,
                                       iou_thresh=self.iou_thresh, pred_box_index=at,
                                       pred_box_dtype=pred_dtype, pred_key=(labels.shape[0], group))
            n_pos += np.bincount(gt[1][~gt[2]], minlength=size)
            bounds = np.searchsorted(label, np.arange(size + 1)).tolist()
            for c in range(size):
                if bounds[c] < bounds[c + 1]:
                    key_parts[c].append(key[bounds[c]:bounds[c + 1]])
                    match_parts[c].append(matches[bounds[c]:bounds[c + 1]])
        # Each class's detections in GluonCV's accumulation order are exactly the array GluonCV
        # argsorts, so this argsort (of the scores' sort keys) puts tied scores in its order.
        ranked = []
        for c in range(size):
            if key_parts[c]:
                class_keys = np.concatenate(key_parts[c])
                ranked.append(np.concatenate(match_parts[c])[class_keys.argsort()[::-1]])
        counts = [sum(part.size for part in parts) for parts in key_parts]
        bounds = np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))
        matches = np.concatenate(ranked) if ranked else np.zeros(0, np.int8)
        recall, precision = ap_lib.ranked_curves(matches, bounds, n_pos)
        self._cache = (recall, precision, bounds, n_pos)
        return self._cache

    def pr_curves(self) -> Dict[int, Tuple[np.ndarray, np.ndarray]]:
        """Recall and precision (NaN as 0) per class that has ground truth: ``{class: (rec, prec)}``."""
        recall, precision, bounds, n_pos = self._per_class()
        return {
            c: (recall[bounds[c]:bounds[c + 1]], precision[bounds[c]:bounds[c + 1]])
            for c in np.flatnonzero(n_pos > 0).tolist()
        }

    def class_aps(self) -> np.ndarray:
        """AP per class, shape (C,), NaN for classes without (non-difficult) ground truth."""
        return ap_lib.class_aps(*self._per_class(), use_07_metric=self.use_07_metric)

    def get(self) -> Tuple[List[str], List[float]]:
        """``(names, values)``: one AP per class then ``'mAP'``, the mean of the non-NaN APs.

        Raises ``ValueError`` if a valid row of some update holds a bad value (see ``update``).
        """
        aps = self.class_aps()
        names = list(self.class_names) if self.class_names is not None else [str(c) for c in range(aps.size)]
        mean_ap = float(np.nanmean(aps)) if np.isfinite(aps).any() else float("nan")
        return names + ["mAP"], [float(a) for a in aps] + [mean_ap]

    def results_fields(self) -> Dict[str, Any]:
        """Protocol fields of the results file (see :mod:`gluon_bof.metrics.results`)."""
        names, values = self.get()
        return {
            "protocol": self.protocol,
            "iou_thresh": self.iou_thresh,
            "difficult": "ignored",
            "classes": names[:-1],
            "per_class_ap": values[:-1],
            "map": values[-1],
            "num_images": self.num_images,
            "metrics": {},
        }


class VOC07MApMetric(VOCMApMetric):
    """Pascal VOC2007 mAP with the 11-point AP: the protocol of the paper's VOC results."""

    protocol = "voc07"
    use_07_metric = True
