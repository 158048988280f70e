"""The results file written at every evaluation: one JSON document per (model, checkpoint, data set).

Schema (``format`` = ``"gluon_bof.eval_results"``, ``version`` = 1)::

    {
      "format": "gluon_bof.eval_results",
      "version": 1,
      "protocol": "voc07" | "voc_area" | "coco",
      "iou_thresh": 0.5 | "0.50:0.95",      # COCO averages over 10 thresholds
      "difficult": "ignored" | "...",         # how difficult objects were handled
      "dataset": "voc", "split": "2007_test",
      "model": "yolo3_darknet53_voc", "checkpoint": "path/or/null", "epoch": 199 | null,
      "classes": ["aeroplane", ...],
      "per_class_ap": [0.87, ...],            # same order as classes; null = undefined (NaN)
      "map": 0.813,                           # fraction in [0, 1], not percent
      "metrics": {"AP50": ..., ...},          # protocol extras (COCO: AP, AP50, AP75, APs, APm, APl)
      "num_images": 4952,
      "created_utc": "2026-01-01T00:00:00Z",
      "gluon_bof_version": "0.1.0",
      "extra": {...}                          # free-form (command line, timings...)
    }

JSON has no NaN: undefined APs (class without ground truth) are stored as ``null`` and read back as
``float('nan')``.
"""
import datetime
import json
import math
import os
import tempfile
from typing import Any, Dict, Mapping, Optional

__all__ = ["FORMAT", "VERSION", "PROTOCOLS", "build_results", "save_results_json", "load_results_json",
           "validate_results", "per_class_ap"]

FORMAT = "gluon_bof.eval_results"
VERSION = 1
PROTOCOLS = ("voc07", "voc_area", "coco")
_REQUIRED = ("protocol", "iou_thresh", "difficult", "dataset", "split", "model", "checkpoint", "classes",
             "per_class_ap", "map")


def _nan_to_none(value: Any) -> Optional[float]:
    value = float(value)
    return None if math.isnan(value) else value


def _none_to_nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


def build_results(
    metric: Any,
    *,
    dataset: str,
    split: str,
    model: str,
    checkpoint: Optional[str] = None,
    epoch: Optional[int] = None,
    extra: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """The results document of a metric after its last ``update``.

    Parameters
    ----------
    metric : VOC07MApMetric, VOCMApMetric or COCODetectionMetric
        Anything with ``results_fields()`` returning the protocol fields.
    dataset, split, model : str
        What was evaluated, e.g. ``"voc"``, ``"2007_test"``, ``"yolo3_darknet53_voc"``.
    checkpoint : str, optional
        Parameter file evaluated.
    epoch : int, optional
        Training epoch of the checkpoint.
    extra : mapping, optional
        Free-form JSON-serializable information.

    Returns
    -------
    dict
        Follows the module's schema (NaN kept as NaN until saved).
    """
    fields = dict(metric.results_fields())
    results = {"format": FORMAT, "version": VERSION}
    results.update(fields)
    results.update({
        "dataset": str(dataset),
        "split": str(split),
        "model": str(model),
        "checkpoint": None if checkpoint is None else os.fspath(checkpoint),
        "epoch": None if epoch is None else int(epoch),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "gluon_bof_version": _version(),
        "extra": dict(extra or {}),
    })
    validate_results(results, "build_results")
    return results


def _version() -> str:
    from .. import __version__
    return __version__


def validate_results(results: Mapping[str, Any], source: str = "results") -> None:
    """Raise ``ValueError`` naming ``source`` and the field when ``results`` breaks the schema."""
    if results.get("format") != FORMAT:
        raise ValueError("%s: not a gluon_bof results file (format=%r, expected %r)"
                         % (source, results.get("format"), FORMAT))
    if results.get("version") != VERSION:
        raise ValueError("%s: results version %r is not supported (this gluon_bof reads version %d)"
                         % (source, results.get("version"), VERSION))
    missing = [k for k in _REQUIRED if k not in results]
    if missing:
        raise ValueError("%s: missing field(s) %s" % (source, ", ".join(missing)))
    if results["protocol"] not in PROTOCOLS:
        raise ValueError("%s: protocol %r is not one of %s" % (source, results["protocol"], PROTOCOLS))
    classes, aps = results["classes"], results["per_class_ap"]
    if not isinstance(classes, list) or not isinstance(aps, list) or len(classes) != len(aps):
        raise ValueError("%s: 'classes' and 'per_class_ap' must be lists of the same length (%s, %s)"
                         % (source, _length(classes), _length(aps)))


def _length(value: Any) -> str:
    return str(len(value)) if isinstance(value, list) else type(value).__name__


def save_results_json(path: str, results: Mapping[str, Any]) -> str:
    """Write ``results`` (from :func:`build_results`) to ``path`` atomically; NaN is written as null.

    Returns
    -------
    str
        The path written.
    """
    validate_results(results, "save_results_json")
    document = dict(results)
    document["per_class_ap"] = [_nan_to_none(v) for v in results["per_class_ap"]]
    document["map"] = _nan_to_none(results["map"])
    document["metrics"] = {k: _nan_to_none(v) for k, v in dict(results.get("metrics") or {}).items()}
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=2, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def load_results_json(path: str) -> Dict[str, Any]:
    """Read and check a results file; null APs come back as NaN.

    Raises
    ------
    ValueError
        If the file is not valid JSON or breaks the schema (the message names the file).
    """
    path = os.fspath(path)
    try:
        with open(path, "r", encoding="utf-8") as f:
            results = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError("%s: not valid JSON (%s)" % (path, err)) from None
    if not isinstance(results, dict):
        raise ValueError("%s: expected a JSON object, got %s" % (path, type(results).__name__))
    validate_results(results, path)
    results["per_class_ap"] = [_none_to_nan(v) for v in results["per_class_ap"]]
    results["map"] = _none_to_nan(results["map"])
    results["metrics"] = {k: _none_to_nan(v) for k, v in dict(results.get("metrics") or {}).items()}
    return results


def per_class_ap(results: Mapping[str, Any]) -> Dict[str, float]:
    """``{class name: AP}`` of a results document."""
    return dict(zip(results["classes"], results["per_class_ap"]))

