"""COCO detection mAP (AP@[.5:.95], AP50, AP75, APs/APm/APl, per-class AP).

The protocol is not reimplemented: detections are handed to a maintained COCOeval, by default the
C++ one of ``faster-coco-eval`` (the whole evaluation is 7-8x faster than plain pycocotools in
``benchmarks/bench_metrics.py``, with the same numbers: see the parity tests);
``engine="pycocotools"`` runs the reference implementation instead.

What this module does is GluonCV's ``COCODetectionMetric`` bookkeeping, vectorized per batch:

* batches come in the order of the data set's images (``dataset.image_ids``, else the sorted COCO
  image ids, as GluonCV assumes), or with explicit ``image_ids``;
* detections with a score below ``score_thresh`` (0.05) are dropped;
* contiguous class ids map back to COCO category ids;
* with ``data_shape=(h, w)`` (YOLO evaluates resized images) boxes are rescaled to the original
  image size, ``x * orig_w / w`` and ``y * orig_h / h``;
* a box ``(x1, y1, x2, y2)`` becomes the COCO ``[x1, y1, x2 - x1 + 1, y2 - y1 + 1]`` (GluonCV's
  inclusive-pixel convention).

Zero detections give AP 0 for every category with ground truth (no pycocotools ``loadRes`` crash).
AP values are fractions in [0, 1] (GluonCV prints percentages).
"""
import contextlib
import io
import json
import os
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ._inputs import as_batch, check_batch_sizes, check_rows

__all__ = ["COCODetectionMetric", "SUMMARY_NAMES", "ENGINES"]

# Order of COCOeval.stats[:6].
SUMMARY_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")
ENGINES = ("faster_coco_eval", "pycocotools")


def _load_annotations(dataset: Any) -> Tuple[Dict[str, Any], Any]:
    """The annotation dict, and the dataset object (or None when given a JSON path)."""
    if isinstance(dataset, (str, os.PathLike)):
        path = os.fspath(dataset)
        if not os.path.isfile(path):
            raise FileNotFoundError("COCODetectionMetric: annotation file %r does not exist" % path)
        with open(path, "r", encoding="utf-8") as f:
            annotations = json.load(f)
        if not isinstance(annotations, dict) or "images" not in annotations or "categories" not in annotations:
            raise ValueError("COCODetectionMetric: %r is not a COCO annotation file (needs 'images' and "
                             "'categories')" % path)
        annotations.setdefault("annotations", [])
        return annotations, None
    coco = getattr(dataset, "coco", None)
    if coco is None or not isinstance(getattr(coco, "dataset", None), dict):
        raise TypeError(
            "COCODetectionMetric: dataset must be an annotation JSON path or an object with a "
            "pycocotools COCO as `.coco` (like gluon_bof.data.coco.COCODetection); got %r" % type(dataset)
        )
    return coco.dataset, dataset


class COCODetectionMetric:
    """COCO mAP of detections given batch by batch.

    Parameters
    ----------
    dataset : str, os.PathLike, or COCODetection-like object
        An annotation JSON path, or an object exposing ``.coco`` (pycocotools ``COCO``) and
        optionally ``.contiguous_id_to_json``, ``.image_ids`` (item order) and ``.classes``.
    contiguous_id_to_json : mapping int -> int, optional
        Contiguous class id -> COCO category id. Default: the dataset's, else the categories in the
        order of the annotation file (GluonCV's convention).
    class_names : sequence of str, optional
        Default: the dataset's ``.classes``, else the category names.
    image_ids : sequence of int, optional
        The order in which ``update`` receives images. Default: ``dataset.image_ids``, else the
        sorted image ids of the annotations.
    score_thresh : float
        Detections scoring below it are dropped (GluonCV: 0.05).
    data_shape : (int, int), optional
        ``(height, width)`` of the network input when boxes are in resized coordinates.
    engine : {"faster_coco_eval", "pycocotools"}
        COCOeval implementation.
    """

    protocol = "coco"

    def __init__(
        self,
        dataset: Any,
        contiguous_id_to_json: Optional[Mapping[int, int]] = None,
        class_names: Optional[Sequence[str]] = None,
        image_ids: Optional[Sequence[int]] = None,
        score_thresh: float = 0.05,
        data_shape: Optional[Tuple[int, int]] = None,
        engine: str = "faster_coco_eval",
    ) -> None:
        if engine not in ENGINES:
            raise ValueError("COCODetectionMetric: engine must be one of %s, got %r" % (ENGINES, engine))
        if data_shape is not None:
            if len(data_shape) != 2 or min(data_shape) <= 0:
                raise ValueError("COCODetectionMetric: data_shape must be (height, width) > 0, got %r"
                                 % (data_shape,))
            data_shape = (float(data_shape[0]), float(data_shape[1]))
        self._annotations, source = _load_annotations(dataset)
        categories = self._annotations["categories"]
        if contiguous_id_to_json is None and source is not None:
            contiguous_id_to_json = getattr(source, "contiguous_id_to_json", None)
        if contiguous_id_to_json is None:
            contiguous_id_to_json = {i: int(c["id"]) for i, c in enumerate(categories)}
        mapping = {int(k): int(v) for k, v in contiguous_id_to_json.items()}
        if sorted(mapping) != list(range(len(mapping))):
            raise ValueError("COCODetectionMetric: contiguous_id_to_json keys must be 0..K-1, got %s"
                             % sorted(mapping))
        known = {int(c["id"]) for c in categories}
        unknown = sorted(set(mapping.values()) - known)
        if unknown:
            raise ValueError("COCODetectionMetric: category ids %s are not in the annotations" % unknown)
        self.num_classes = len(mapping)
        self._category_of = np.array([mapping[i] for i in range(self.num_classes)], dtype=np.int64)
        if class_names is None and source is not None:
            class_names = getattr(source, "classes", None)
        if class_names is None:
            name_of = {int(c["id"]): c.get("name", str(c["id"])) for c in categories}
            class_names = [name_of[mapping[i]] for i in range(self.num_classes)]
        if len(class_names) != self.num_classes:
            raise ValueError("COCODetectionMetric: %d class names for %d classes"
                             % (len(class_names), self.num_classes))
        self.class_names = [str(n) for n in class_names]

        sizes = {int(im["id"]): (float(im["height"]), float(im["width"])) for im in self._annotations["images"]}
        if image_ids is None and source is not None:
            image_ids = getattr(source, "image_ids", None)
        if image_ids is None:
            image_ids = sorted(sizes)
        self._image_ids = np.array([int(i) for i in image_ids], dtype=np.int64)
        missing = sorted(set(self._image_ids.tolist()) - set(sizes))
        if missing:
            raise ValueError("COCODetectionMetric: image ids %s are not in the annotations" % missing[:10])
        self._sizes = sizes
        self.score_thresh = float(score_thresh)
        self.data_shape = data_shape
        self.engine = engine
        self._gt = None
        self.reset()

    def reset(self) -> None:
        """Forget the detections given so far."""
        self._rows: List[np.ndarray] = []
        self._cursor = 0
        self._seen = set()
        self._eval = None

    @property
    def num_images(self) -> int:
        """Number of distinct images received by ``update``."""
        return len(self._seen)

    def update(
        self,
        pred_bboxes: Any,
        pred_labels: Any,
        pred_scores: Any,
        *unused_gt: Any,
        image_ids: Optional[Sequence[int]] = None,
        **unused_kwargs: Any,
    ) -> None:
        """Add a batch of detections (ground-truth arguments are accepted and ignored).

        Parameters
        ----------
        pred_bboxes : (B, N, 4) array-like
            ``(xmin, ymin, xmax, ymax)`` in pixels of the original image, or of the ``data_shape``
            input.
        pred_labels, pred_scores : (B, N) or (B, N, 1) array-like
            Contiguous class ids (negative = padding) and confidences.
        image_ids : sequence of B ints, optional
            COCO ids of the batch's images; default: the next B images of the evaluation order.

        Raises
        ------
        ValueError
            Mismatched batch lengths, NaN scores, bad boxes or labels, or more images than the data
            set holds.
        """
        pb = as_batch(pred_bboxes, "pred_bboxes", 4)
        pl = as_batch(pred_labels, "pred_labels", None)
        ps = as_batch(pred_scores, "pred_scores", None)
        check_batch_sizes([pb, pl, ps], ["pred_bboxes", "pred_labels", "pred_scores"], ["pred"] * 3)
        check_rows(pb, pl, ps, self.num_classes, ("pred_bboxes", "pred_labels", "pred_scores"))
        valid = pl >= 0
        batch = pb.shape[0]
        if image_ids is None:
            if self._cursor + batch > self._image_ids.size:
                raise ValueError(
                    "COCODetectionMetric.update: received %d images but the data set has %d; call "
                    "reset() between evaluations" % (self._cursor + batch, self._image_ids.size))
            ids = self._image_ids[self._cursor:self._cursor + batch]
            self._cursor += batch
        else:
            ids = np.array([int(i) for i in image_ids], dtype=np.int64)
            if ids.size != batch:
                raise ValueError("COCODetectionMetric.update: %d image_ids for a batch of %d" % (ids.size, batch))
            unknown = [i for i in ids.tolist() if i not in self._sizes]
            if unknown:
                raise ValueError("COCODetectionMetric.update: image ids %s are not in the annotations" % unknown)
        self._seen.update(ids.tolist())

        keep = valid & (ps.astype(np.float64) >= self.score_thresh)  # in float64, as GluonCV compares
        img, row = np.nonzero(keep)
        boxes = pb[img, row].astype(np.float64)
        if self.data_shape is not None:
            size = np.array([self._sizes[i] for i in ids.tolist()], dtype=np.float64).reshape(-1, 2)
            boxes[:, [0, 2]] *= (size[img, 1] / self.data_shape[1])[:, None]
            boxes[:, [1, 3]] *= (size[img, 0] / self.data_shape[0])[:, None]
        rows = np.empty((img.size, 7), dtype=np.float64)
        rows[:, 0] = ids[img]
        rows[:, 1:3] = boxes[:, :2]
        rows[:, 3:5] = boxes[:, 2:4] - (boxes[:, :2] - 1)
        rows[:, 5] = ps[img, row].astype(np.float64)
        rows[:, 6] = self._category_of[pl[img, row].astype(np.int64)]
        self._rows.append(rows)
        self._eval = None

    def _ground_truth(self) -> Any:
        """The engine's COCO object of the annotations (built once)."""
        if self._gt is None:
            if self.engine == "faster_coco_eval":
                from faster_coco_eval import COCO
                self._gt = COCO(self._annotations, print_function=lambda *a, **k: None)
            else:
                from pycocotools.coco import COCO
                gt = COCO()
                gt.dataset = self._annotations
                with contextlib.redirect_stdout(io.StringIO()):
                    gt.createIndex()
                self._gt = gt
        return self._gt

    def _detections(self, gt: Any) -> Any:
        """A COCO object of the detections, built directly (``loadRes`` fails on an empty list)."""
        rows = np.concatenate(self._rows) if self._rows else np.zeros((0, 7))
        image = rows[:, 0].astype(np.int64).tolist()
        category = rows[:, 6].astype(np.int64).tolist()
        boxes = rows[:, 1:5].tolist()
        scores = rows[:, 5].tolist()
        areas = (rows[:, 3] * rows[:, 4]).tolist()
        anns = [
            {"id": k + 1, "image_id": i, "category_id": c, "bbox": b, "score": s, "area": a, "iscrowd": 0}
            for k, (i, c, b, s, a) in enumerate(zip(image, category, boxes, scores, areas))
        ]
        dataset = {
            "images": list(self._annotations["images"]),
            "categories": list(self._annotations["categories"]),
            "annotations": anns,
        }
        dt = type(gt)() if self.engine == "pycocotools" else type(gt)(print_function=lambda *a, **k: None)
        dt.dataset = dataset
        with contextlib.redirect_stdout(io.StringIO()):
            dt.createIndex()
        return dt

    def _evaluate(self) -> Any:
        """Run COCOeval (evaluate, accumulate, summarize) once per set of detections."""
        if self._eval is not None:
            return self._eval
        if self.num_images < self._image_ids.size:
            warnings.warn("COCODetectionMetric: recorded %d out of %d images, incomplete results"
                          % (self.num_images, self._image_ids.size))
        gt = self._ground_truth()
        dt = self._detections(gt)
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            if self.engine == "faster_coco_eval":
                from faster_coco_eval import COCOeval_faster
                coco_eval = COCOeval_faster(gt, dt, "bbox", print_function=print)
            else:
                from pycocotools.cocoeval import COCOeval
                coco_eval = COCOeval(gt, dt, "bbox")
            coco_eval.evaluate()
            coco_eval.accumulate()
            summary_start = text.tell()
            coco_eval.summarize()
        self._summary_text = text.getvalue()[summary_start:].strip()
        self._eval = coco_eval
        return coco_eval

    def summary(self) -> Dict[str, float]:
        """``{'AP', 'AP50', 'AP75', 'APs', 'APm', 'APl'}``: COCOeval's first six stats, in [0, 1]
        (-1 where undefined, e.g. no ground truth of that size)."""
        stats = self._evaluate().stats
        return {name: float(stats[i]) for i, name in enumerate(SUMMARY_NAMES)}

    def summary_text(self) -> str:
        """COCOeval's printed summary."""
        self._evaluate()
        return self._summary_text

    def class_aps(self) -> np.ndarray:
        """AP@[.5:.95] per class (area all, 100 detections), shape (K,); NaN without ground truth."""
        coco_eval = self._evaluate()
        precision = np.asarray(coco_eval.eval["precision"])  # (iou, recall, category, area, max dets)
        column = {int(c): k for k, c in enumerate(coco_eval.params.catIds)}
        aps = np.full(self.num_classes, np.nan)
        for cls, category in enumerate(self._category_of.tolist()):
            values = precision[:, :, column[category], 0, -1]
            values = values[values > -1]
            if values.size:
                aps[cls] = float(np.mean(values))
        return aps

    def get(self) -> Tuple[List[str], List[float]]:
        """``(class names + ['mAP'], per-class AP + [AP@[.5:.95]])``, fractions in [0, 1]."""
        aps = self.class_aps()
        return self.class_names + ["mAP"], [float(a) for a in aps] + [self.summary()["AP"]]

    def results_fields(self) -> Dict[str, Any]:
        """Protocol fields of the results file (see :mod:`gluon_bof.metrics.results`)."""
        names, values = self.get()
        return {
            "protocol": self.protocol,
            "iou_thresh": "0.50:0.95",
            "difficult": "not applicable (COCO iscrowd regions are ignored by COCOeval)",
            "classes": names[:-1],
            "per_class_ap": values[:-1],
            "map": values[-1],
            "num_images": self.num_images,
            "metrics": self.summary(),
        }
