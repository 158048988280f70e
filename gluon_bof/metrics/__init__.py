"""Detection metrics: Pascal VOC mAP (VOC07 11-point and area), COCO mAP, results files and reports.

* :class:`VOC07MApMetric`, :class:`VOCMApMetric`: GluonCV's interface and numbers, vectorized.
* :class:`COCODetectionMetric`: COCO AP through a maintained COCOeval (faster-coco-eval or pycocotools).
* :mod:`.ap`: pure AP functions (``voc_ap``, ``recall_precision``).
* :mod:`.results`: the results JSON written at every evaluation (``build_results``,
  ``save_results_json``, ``load_results_json``).
* :mod:`.report`: per-class AP tables, precision-recall and per-class AP delta plots.
"""
from .ap import recall_precision, voc07_ap, voc_ap, voc_area_ap
from .coco import COCODetectionMetric
from .results import build_results, load_results_json, save_results_json
from .voc import VOC07MApMetric, VOCMApMetric

__all__ = [
    "VOC07MApMetric", "VOCMApMetric", "COCODetectionMetric",
    "voc_ap", "voc07_ap", "voc_area_ap", "recall_precision",
    "build_results", "save_results_json", "load_results_json",
]
