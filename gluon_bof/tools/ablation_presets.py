"""The rows of the paper's ablation tables as training commands, for each preset.

A row is one training configuration (script + flags); the runner adds ``--seed`` and
``--save-dir`` per run. Rows are built by one composition function per detector, so consecutive
rows differ by exactly the flags of their freebie and the flag order is the README's:

* ``paper``: the paper's setting (VOC07+12 trainval, VOC07 test, pretrained backbones, YOLOv3
  darknet53 at 416 on 8 GPUs, Faster R-CNN ResNet-50 at 600x1000 on 4 GPUs, GluonCV's epochs). The
  last row of Table 3 (and the B(1.5, 1.5) row of Table 1) is the README's YOLOv3 command, the last
  row of Table 4 the README's Faster R-CNN command; Table 5 is COCO.
* ``cpu``: the same rows on the embedded Shapes data, sized for one CPU core per run: YOLOv3 tiny,
  400 images x 30 epochs, fixed training and validation at 224 or random shapes 160-288 (whose
  mean area equals 224x224, as the paper's 320-608 surround its 416), 100 validation images;
  Faster R-CNN MobileNet 0.25, 400 images x 12 epochs at batch 1, validation at short side 224.
  GluonCV's step decays (YOLOv3 160,180 of 200 epochs; Faster R-CNN 14 of 20) and mixup-free tail
  (20 of 200 epochs) are scaled to the short runs. Every row keeps ``--no-expand`` (zoom-out makes
  the small Shapes objects too small for the tiny network), so the '- data augmentation' row
  removes colour jitter, crop, flip and random interpolation on top.
* ``smoke``: two rows, one seed, two epochs of 16 images: a check that the machinery works.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ["Row", "TableSpec", "PAPER_COMMANDS", "get_table", "TABLES", "PRESETS", "DEFAULT_SEED"]

DEFAULT_SEED = 233  # the training scripts' default --seed (GluonCV's); seed index 0 uses it
TABLES = (1, 3, 4, 5)
PRESETS = ("paper", "cpu", "smoke")


@dataclass(frozen=True)
class Row:
    """One configuration of a table.

    ``paper`` is the paper's value in percent (VOC07 mAP, or COCO mAP 0.5:0.95 for Table 5);
    ``reference`` the key of the row whose value this row's delta is taken against (None: no delta);
    ``evaluate`` an optional ``(script, flags)`` evaluation of the trained weights (Table 5: the
    same YOLOv3 weights at 320, 416 and 608) whose results file replaces ``results_final.json``.
    """

    key: str
    label: str
    script: str
    flags: Tuple[str, ...]
    paper: Optional[float] = None
    reference: Optional[str] = None
    evaluate: Optional[Tuple[str, Tuple[str, ...]]] = None


@dataclass(frozen=True)
class TableSpec:
    """A table of one preset: its rows in order, the row of the cumulative delta, and notes."""

    number: int
    preset: str
    title: str
    rows: Tuple[Row, ...]
    baseline: Optional[str]
    default_seeds: int
    metric: str
    notes: Tuple[str, ...] = field(default_factory=tuple)

    def row(self, key: str) -> Row:
        return next(r for r in self.rows if r.key == key)


# ---------------------------------------------------------------------------------------- bases
_YOLO_BASE = {
    "paper": ("--network", "darknet53", "--dataset", "voc", "--gpus", "0,1,2,3,4,5,6,7", "--batch-size", "64",
              "-j", "32", "--epochs", "200"),
    "cpu": ("--network", "tiny", "--dataset", "shapes", "--shapes-train-size", "400", "--shapes-val-size", "100",
            "--shapes-image-size", "224:320", "--data-shape", "224", "--random-shapes", "160:288",
            "--batch-size", "4", "-j", "0", "--epochs", "30", "--lr", "0.01", "--lr-decay-epoch", "24,27",
            "--val-interval", "3", "--picture", "0", "--no-progress", "--no-expand"),
    "smoke": ("--network", "tiny", "--dataset", "shapes", "--shapes-train-size", "16", "--shapes-val-size", "8",
              "--shapes-image-size", "128:160", "--data-shape", "128", "--random-shapes", "96:160",
              "--batch-size", "4", "-j", "0", "--epochs", "2", "--lr", "0.001", "--lr-decay-epoch", "1",
              "--picture", "0", "--no-progress"),
}
_YOLO_WARMUP = {"paper": ("--warmup-epochs", "4"), "cpu": ("--warmup-epochs", "1"), "smoke": ()}
_YOLO_NO_MIXUP = {"paper": (), "cpu": ("--no-mixup-epochs", "3"), "smoke": ("--no-mixup-epochs", "1")}
_YOLO_TAIL = ("--no-wd",)

_FRCNN_BASE = {
    "paper": ("--network", "resnet50_v1b", "--dataset", "voc", "--gpus", "0,1,2,3", "--batch-size", "4"),
    "cpu": ("--network", "mobilenet0.25", "--dataset", "shapes", "--shapes-train-size", "400",
            "--shapes-val-size", "100", "--shapes-image-size", "224:320", "--batch-size", "1", "-j", "0",
            "--epochs", "12", "--lr", "0.02", "--wd", "1e-4", "--lr-decay-epoch", "8", "--val-interval", "2",
            "--picture", "0", "--no-progress"),
    "smoke": ("--network", "mobilenet0.25", "--dataset", "shapes", "--shapes-train-size", "4",
              "--shapes-val-size", "2", "--shapes-image-size", "160:192", "--batch-size", "1", "-j", "0",
              "--epochs", "2", "--lr", "0.001", "--lr-decay-epoch", "1", "--picture", "0", "--no-progress"),
}
_FRCNN_WARMUP = {"paper": ("--lr-warmup", "1000"), "cpu": ("--lr-warmup", "200"), "smoke": ("--lr-warmup", "2")}
_FRCNN_NO_MIXUP = {"paper": ("--no-mixup-epochs", "2"), "cpu": ("--no-mixup-epochs", "2"),
                   "smoke": ("--no-mixup-epochs", "1")}


def yolo_flags(preset: str, augment: bool = True, syncbn: bool = False, random_shape: bool = True,
               cosine: bool = False, label_smooth: bool = False, mixup: Sequence[str] = ()) -> Tuple[str, ...]:
    """Flags of ``train_yolo3.py`` for one combination of freebies (``mixup``: () off, else its flags)."""
    flags: List[str] = list(_YOLO_BASE[preset])
    flags += ["--lr-mode", "cosine" if cosine else "step", *_YOLO_WARMUP[preset]]
    if syncbn:
        flags.append("--syncbn")
    if mixup:
        flags += ["--mixup", *_YOLO_NO_MIXUP[preset], *mixup[1:]]
    if label_smooth:
        flags.append("--label-smooth")
    flags += _YOLO_TAIL
    if not random_shape:
        flags.append("--no-random-shape")
    if not augment:
        flags.append("--no-augment")
    return tuple(flags)


def frcnn_flags(preset: str, augment: bool = True, cosine: bool = False, label_smooth: bool = False,
                mixup: bool = False) -> Tuple[str, ...]:
    """Flags of ``train_faster_rcnn.py`` for one combination of freebies."""
    flags: List[str] = list(_FRCNN_BASE[preset])
    flags += ["--lr-mode", "cosine" if cosine else "step", *_FRCNN_WARMUP[preset]]
    if label_smooth:
        flags += ["--label-smooth", "0.1"]
    if mixup:
        flags += ["--mixup", *_FRCNN_NO_MIXUP[preset]]
    if not augment:
        flags.append("--no-augment")
    return tuple(flags)


_MIXUP = ("--mixup",)
_Y, _F = "train_yolo3.py", "train_faster_rcnn.py"


def _table3(preset: str) -> Tuple[Row, ...]:
    full = dict(syncbn=True, random_shape=True, cosine=True, label_smooth=True)
    rows = (
        Row("no_augment", "- data augmentation", _Y, yolo_flags(preset, augment=False, random_shape=False),
            64.26, "baseline"),
        Row("baseline", "baseline", _Y, yolo_flags(preset, random_shape=False), 80.25, None),
        Row("syncbn", "+ synchronized BN", _Y, yolo_flags(preset, syncbn=True, random_shape=False), 80.81,
            "baseline"),
        Row("random_shapes", "+ random training shapes", _Y, yolo_flags(preset, syncbn=True), 81.23, "syncbn"),
        Row("cosine", "+ cosine lr schedule", _Y, yolo_flags(preset, syncbn=True, cosine=True), 81.69,
            "random_shapes"),
        Row("label_smooth", "+ class label smoothing", _Y, yolo_flags(preset, **full), 82.14, "cosine"),
        Row("mixup", "+ mixup", _Y, yolo_flags(preset, mixup=_MIXUP, **full), 83.68, "label_smooth"),
    )
    if preset == "smoke":
        return (rows[1], Row("cosine", "+ cosine lr schedule", _Y, yolo_flags(preset, random_shape=False, cosine=True),
                             81.69, "baseline"))
    return rows


def _table1(preset: str) -> Tuple[Row, ...]:
    full = dict(syncbn=True, random_shape=True, cosine=True, label_smooth=True)
    rows = (
        Row("none", "baseline (no mixup)", _Y, yolo_flags(preset, **full), 81.5, None),
        Row("even", "0.5:0.5 evenly", _Y, yolo_flags(preset, mixup=_MIXUP + ("--mixup-mode", "even"), **full),
            83.05, "none"),
        Row("beta1", "B(1, 1), weighted loss", _Y,
            yolo_flags(preset, mixup=_MIXUP + ("--mixup-alpha", "1.0", "--mixup-beta", "1.0"), **full), 83.48, "none"),
        Row("beta15", "B(1.5, 1.5), weighted loss", _Y, yolo_flags(preset, mixup=_MIXUP, **full), 83.54, "none"),
    )
    return rows[:2] if preset == "smoke" else rows


def _table4(preset: str) -> Tuple[Row, ...]:
    rows = (
        Row("no_augment", "- data augmentation", _F, frcnn_flags(preset, augment=False), 77.61, "baseline"),
        Row("baseline", "baseline", _F, frcnn_flags(preset), 77.77, None),
        Row("cosine", "+ cosine lr schedule", _F, frcnn_flags(preset, cosine=True), 79.59, "baseline"),
        Row("label_smooth", "+ class label smoothing", _F, frcnn_flags(preset, cosine=True, label_smooth=True),
            80.23, "cosine"),
        Row("mixup", "+ mixup", _F, frcnn_flags(preset, cosine=True, label_smooth=True, mixup=True), 81.32,
            "label_smooth"),
    )
    return rows[1:3] if preset == "smoke" else rows


# GluonCV's published BoF COCO command for YOLOv3 (the README's); 'original' drops the freebies.
_YOLO_COCO_BOF = ("--network", "darknet53", "--dataset", "coco", "--gpus", "0,1,2,3,4,5,6,7", "--batch-size", "64",
                  "-j", "32", "--log-interval", "100", "--lr-decay-epoch", "220,250", "--epochs", "280", "--syncbn",
                  "--warmup-epochs", "2", "--mixup", "--no-mixup-epochs", "20", "--label-smooth", "--no-wd")
_YOLO_COCO_ORIG = ("--network", "darknet53", "--dataset", "coco", "--gpus", "0,1,2,3,4,5,6,7", "--batch-size", "64",
                   "-j", "32", "--log-interval", "100", "--lr-decay-epoch", "220,250", "--epochs", "280",
                   "--warmup-epochs", "2", "--no-wd")


def _frcnn_coco(network: str, bof: bool) -> Tuple[str, ...]:
    flags = ["--network", network, "--dataset", "coco", "--gpus", "0,1,2,3,4,5,6,7", "--batch-size", "8"]
    flags += ["--lr-mode", "cosine" if bof else "step", "--lr-warmup", "1000"]
    if bof:
        flags += ["--label-smooth", "0.1", "--mixup", "--no-mixup-epochs", "2"]
    return tuple(flags)


def _table5() -> Tuple[Row, ...]:
    rows: List[Row] = []
    for net, paper_orig, paper_bof in (("resnet50_v1b", 36.5, 37.6), ("resnet101_v1d", 39.4, 41.1)):
        name = "R50" if net.startswith("resnet50") else "R101"
        rows.append(Row("frcnn_%s_orig" % name, "Faster R-CNN %s original" % name, _F, _frcnn_coco(net, False),
                        paper_orig, None))
        rows.append(Row("frcnn_%s_bof" % name, "Faster R-CNN %s BoF" % name, _F, _frcnn_coco(net, True), paper_bof,
                        "frcnn_%s_orig" % name))
    for size, paper_orig, paper_bof in ((320, 28.2, 33.6), (416, 31.0, 36.0), (608, 33.0, 37.0)):
        ev = ("eval_yolo3.py", ("--network", "darknet53", "--dataset", "coco", "--data-shape", str(size)))
        rows.append(Row("yolo3_%d_orig" % size, "YOLOv3 @%d original" % size, _Y, _YOLO_COCO_ORIG, paper_orig, None,
                        ev))
        rows.append(Row("yolo3_%d_bof" % size, "YOLOv3 @%d BoF" % size, _Y, _YOLO_COCO_BOF, paper_bof,
                        "yolo3_%d_orig" % size, ev))
    return tuple(rows)


_TITLES = {1: "Table 1: mixup variants (YOLOv3)", 3: "Table 3: incremental freebies, YOLOv3",
           4: "Table 4: incremental freebies, Faster R-CNN", 5: "Table 5: bag of freebies on MS COCO"}
_METRIC = {"paper": {1: "VOC07 test mAP, 416x416", 3: "VOC07 test mAP, 416x416", 4: "VOC07 test mAP, 600x1000",
                     5: "COCO 2017 val mAP 0.5:0.95"},
           "cpu": {1: "Shapes val VOC07 mAP, 224x224", 3: "Shapes val VOC07 mAP, 224x224",
                   4: "Shapes val VOC07 mAP, short side 224"},
           "smoke": {1: "Shapes val VOC07 mAP (smoke)", 3: "Shapes val VOC07 mAP (smoke)",
                     4: "Shapes val VOC07 mAP (smoke)"}}
_SYNCBN_NOTE = ("'+ synchronized BN' runs on one CPU device here, where SyncBatchNorm computes exactly what "
                "BatchNorm computes: the row equals the baseline by construction (the table checks it seed by "
                "seed). Pass --extra-args '--ctx cpu:0,cpu:1' to train every row over two CPU contexts, where "
                "the row is real SyncBatchNorm against per-device BatchNorm (about twice slower).")


def get_table(number: int, preset: str) -> TableSpec:
    """The rows of Table ``number`` (1, 3, 4 or 5) in ``preset`` ('paper', 'cpu' or 'smoke').

    Raises ``ValueError`` for an unknown table or preset, and for Table 5 outside 'paper' (it needs
    COCO and the full-size networks).
    """
    if number not in TABLES:
        raise ValueError("--table %s: choose one of %s" % (number, ", ".join(map(str, TABLES))))
    if preset not in PRESETS:
        raise ValueError("--preset %s: choose one of %s" % (preset, ", ".join(PRESETS)))
    if number == 5 and preset != "paper":
        raise ValueError("--table 5 exists only in the paper preset (COCO, full-size networks)")
    rows = {1: _table1, 3: _table3, 4: _table4}[number](preset) if number != 5 else _table5()
    notes: Tuple[str, ...] = ()
    if number == 3 and preset == "cpu":
        notes = (_SYNCBN_NOTE,)
    if number == 5:
        notes = ("The paper's 'original' values are the published ones of the original YOLOv3 and Faster R-CNN "
                 "papers; the 'original' commands here are GluonCV's recipe without the freebies.",)
    baseline = {1: "none", 3: "baseline", 4: "baseline", 5: None}[number]
    seeds = {"paper": 1, "cpu": 3, "smoke": 1}[preset]
    return TableSpec(number, preset, _TITLES[number], rows, baseline, seeds, _METRIC[preset][number], notes)


def _readme_paper_commands() -> Dict[str, Tuple[str, ...]]:
    """The README's paper recipes, as ``script + flags`` of the rows that reproduce them."""
    return {"yolo3_voc": (_Y,) + yolo_flags("paper", syncbn=True, cosine=True, label_smooth=True, mixup=_MIXUP),
            "yolo3_coco": (_Y,) + _YOLO_COCO_BOF,
            "faster_rcnn_voc": (_F,) + frcnn_flags("paper", cosine=True, label_smooth=True, mixup=True)}


PAPER_COMMANDS = _readme_paper_commands()
