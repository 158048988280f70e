"""Rebuild the detector of a ``.params`` file and run it on images, for ``export`` and ``detect``.

Three kinds of weights are accepted:

* a training run's checkpoint ``RUN/<tag>.params``: its ``RUN/<tag>.manifest.json`` holds the
  command-line arguments (network, dataset, classes, widths, input size), so nothing else is needed;
* a bare ``.params`` file, ours or GluonCV's (same parameter names): the model comes from
  ``--network`` (a model name such as ``yolo3_darknet53_voc``, or a training script's
  ``--network`` with ``--dataset``) and ``--classes``;
* a symbol export ``<name>-symbol.json`` + ``<name>-0000.params`` (``gluon_bof.tools.export``): the
  graph is loaded as it is; classes and input size come from the ``model_card.json`` beside it.

A file that does not fit the rebuilt network raises :class:`ModelFileError` listing the missing,
unexpected and mis-shaped parameters, before MXNet's loader sees it.

Inference follows the validation presets: YOLOv3 resizes to a ``data_shape`` square, Faster R-CNN
resizes the short side to ``short`` (long side at most ``max_size``); both normalise with the
ImageNet mean/std. Boxes come back in original image pixels, clipped to the image.
"""
import json
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np

from ..data.class_names import COCO_CLASSES, SHAPES_CLASSES, VOC_CLASSES
from ..data.transforms.presets import MEAN, STD, FasterRCNNValTransform, YOLO3ValTransform
from ..digest import file_digest
from ..engine.checkpoint import CheckpointError, read_manifest
from ..model import get_model, list_models
from ..recipes.faster_rcnn.recipe import NETWORKS as RCNN_NETWORKS
from ..recipes.faster_rcnn.recipe import model_name as rcnn_model_name
from ..recipes.yolo3.recipe import NETWORKS as YOLO_NETWORKS
from ..recipes.yolo3.recipe import model_name as yolo3_model_name

__all__ = ["ModelFileError", "RunModel", "Detections", "YOLO_NETWORKS", "RCNN_NETWORKS", "model_name",
           "detector_kind", "dataset_classes", "load_run_model", "find_results", "param_file_shapes"]

DEFAULT_YOLO_SHAPE = 416  # GluonCV's demo_yolo.py default
MANIFEST_SUFFIX = ".manifest.json"
SYMBOL_SUFFIX = "-symbol.json"
CARD_FILE = "model_card.json"
_LIST_LIMIT = 12


class ModelFileError(ValueError):
    """A weights file is missing, unreadable, or does not fit the network it should belong to."""


@dataclass
class Detections:
    """One image's detections in original pixels: ``ids (n,)`` int, ``scores (n,)``, ``boxes (n, 4)``."""

    ids: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray


@dataclass
class RunModel:
    """A detector ready for inference, and what is known about where it came from.

    ``net`` maps a ``(B, 3, H, W)`` float32 batch (normalised, or raw 0-255 ``(B, H, W, 3)`` when
    ``normalize_in_graph``) to GluonCV's ``(ids, scores, boxes)``, each ``(B, N, 1|1|4)`` padded with -1.
    """

    net: mx.gluon.HybridBlock
    name: str
    kind: str
    classes: Tuple[str, ...]
    params_path: str
    data_shape: Optional[int] = None
    short: Optional[int] = None
    max_size: Optional[int] = None
    model_kwargs: Dict[str, Any] = field(default_factory=dict)
    manifest_path: Optional[str] = None
    manifest: Optional[Dict[str, Any]] = None
    symbol_path: Optional[str] = None
    normalize_in_graph: bool = False
    ctx: mx.Context = field(default_factory=mx.cpu)

    @property
    def args(self) -> Dict[str, Any]:
        """The training command's resolved arguments (empty without a manifest)."""
        return dict((self.manifest or {}).get("meta", {}).get("args") or {})

    def preprocess(self, image: np.ndarray, raw: Optional[bool] = None) -> Tuple[np.ndarray, np.ndarray]:
        """``HxWx3`` uint8 RGB -> network input ``(3, H', W')`` normalised, or ``(H', W', 3)`` resized RGB
        0-255 when ``raw`` (default: ``normalize_in_graph``), and the ``(4,)`` factors mapping input
        boxes back to original pixels."""
        h, w = image.shape[:2]
        empty = np.zeros((0, 6), np.float32)
        if self.kind == "yolo3":
            x, _ = YOLO3ValTransform(self.data_shape, self.data_shape)(image, empty)
            scale = np.array([w / self.data_shape, h / self.data_shape] * 2, np.float32)
        else:
            x, _, im_scale = FasterRCNNValTransform(self.short, self.max_size)(image, empty)
            scale = np.full(4, im_scale, np.float32)
        if self.normalize_in_graph if raw is None else raw:  # undo the normalisation: the graph does it
            x = (x.transpose(1, 2, 0) * np.array(STD, np.float32) + np.array(MEAN, np.float32)) * 255.0
        return x.astype(np.float32), scale

    def forward(self, batch: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw network outputs for a preprocessed batch, as numpy ``(ids, scores, boxes)``."""
        outputs = self.net(mx.nd.array(batch, ctx=self.ctx))
        return tuple(o.asnumpy() for o in outputs[:3])

    def detect(self, images: Sequence[np.ndarray]) -> List[Detections]:
        """Detections of each image (HxWx3 uint8 RGB) in its own pixels.

        Images whose network inputs have the same size run as one batch; boxes are clipped to the
        network input (as GluonCV's validation), scaled back, then clipped to the image.
        """
        prepared = [self.preprocess(im) for im in images]
        results: List[Optional[Detections]] = [None] * len(images)
        groups: Dict[Tuple[int, ...], List[int]] = {}
        for i, (x, _) in enumerate(prepared):
            groups.setdefault(x.shape, []).append(i)
        for shape, members in groups.items():
            ids, scores, boxes = self.forward(np.stack([prepared[i][0] for i in members]))
            in_h, in_w = (shape[0], shape[1]) if self.normalize_in_graph else (shape[1], shape[2])
            for row, i in enumerate(members):
                h, w = images[i].shape[:2]
                keep = ids[row, :, 0] >= 0
                b = boxes[row][keep].astype(np.float32)
                b[:, 0::2] = np.clip(b[:, 0::2], 0, in_w)
                b[:, 1::2] = np.clip(b[:, 1::2], 0, in_h)
                b *= prepared[i][1]
                b[:, 0::2] = np.clip(b[:, 0::2], 0, w)
                b[:, 1::2] = np.clip(b[:, 1::2], 0, h)
                results[i] = Detections(ids[row, keep, 0].astype(np.int64), scores[row, keep, 0], b)
        return results

    def example_input(self, batch: int = 1) -> np.ndarray:
        """A zero batch of the network's inference input size (square, or short x short for R-CNN)."""
        side = self.data_shape if self.kind == "yolo3" else self.short
        if self.normalize_in_graph:
            return np.zeros((batch, side, side, 3), np.float32)
        return np.zeros((batch, 3, side, side), np.float32)


def detector_kind(name: str) -> str:
    """``'yolo3'`` or ``'faster_rcnn'`` from a model name."""
    if name.startswith("yolo3_"):
        return "yolo3"
    if name.startswith("faster_rcnn_"):
        return "faster_rcnn"
    raise ModelFileError("model %r: not a YOLOv3 (yolo3_*) or Faster R-CNN (faster_rcnn_*) model" % name)


def model_name(network: str, dataset: Optional[str], kind: Optional[str] = None) -> str:
    """Our (= GluonCV's) model name from a model name, or a training script's ``--network``/``--dataset``.

    ``kind`` (``'yolo3'``/``'faster_rcnn'``) settles ``mobilenet0.25``, a backbone of both detectors.
    """
    if network.lower() in list_models():
        return network.lower()
    in_yolo, in_rcnn = network in YOLO_NETWORKS, network in RCNN_NETWORKS
    if kind is None and in_yolo and in_rcnn:
        raise ModelFileError("--network %s is a backbone of both YOLOv3 and Faster R-CNN: pass the model name "
                             "(yolo3_mobilenet0.25_voc, faster_rcnn_mobilenet0.25_shapes, ...)" % network)
    if kind == "yolo3" or (kind is None and in_yolo):
        if not in_yolo:
            raise ModelFileError("--network %s: not a YOLOv3 backbone (%s)" % (network, ", ".join(YOLO_NETWORKS)))
        return yolo3_model_name(network, dataset or "custom")
    if kind == "faster_rcnn" or (kind is None and in_rcnn):
        if not in_rcnn:
            raise ModelFileError("--network %s: not a Faster R-CNN backbone (%s)" % (network, ", ".join(RCNN_NETWORKS)))
        return rcnn_model_name(network, dataset or "voc")
    raise ModelFileError("--network %r: not a model name (%s) nor a training --network (%s)" % (
        network, ", ".join(list_models()), ", ".join(sorted(set(YOLO_NETWORKS + RCNN_NETWORKS)))))


def dataset_classes(dataset: Optional[str], classes: Optional[Any] = None) -> Optional[Tuple[str, ...]]:
    """Class names from an explicit list (or comma string), else the dataset's (voc, coco, shapes)."""
    if classes:
        names = classes.split(",") if isinstance(classes, str) else list(classes)
        names = [str(c).strip() for c in names if str(c).strip()]
        if not names:
            raise ModelFileError("--classes %r: no class name" % (classes,))
        return tuple(names)
    return {"voc": VOC_CLASSES, "coco": COCO_CLASSES, "shapes": SHAPES_CLASSES}.get(dataset)


def _name_dataset(name: str) -> Optional[str]:
    tail = name.rsplit("_", 1)[-1]
    return tail if tail in ("voc", "coco", "shapes") else None


def param_file_shapes(path: str) -> Dict[str, Tuple[int, ...]]:
    """``{parameter name: shape}`` stored in an MXNet ``.params`` file (``arg:``/``aux:`` kept)."""
    if not os.path.isfile(path):
        raise ModelFileError("%s: weights file does not exist" % path)
    try:
        saved = mx.nd.load(path)
    except mx.base.MXNetError as exc:
        raise ModelFileError("%s: not an MXNet parameter file (%s)" % (
            path, str(exc).strip().splitlines()[-1][:200])) from None
    if not isinstance(saved, dict):
        raise ModelFileError("%s: holds an unnamed list of %d arrays, not named parameters (save_parameters "
                             "writes names)" % (path, len(saved)))
    return {k: tuple(v.shape) for k, v in saved.items()}


def _check_fits(net: mx.gluon.Block, path: str, name: str) -> None:
    """Compare the file's parameter names and shapes with the network's (deferred dims skipped)."""
    stored = param_file_shapes(path)
    if stored and all(k.startswith(("arg:", "aux:")) for k in stored):
        raise ModelFileError("%s: this is a symbol export's parameter file (arg:/aux: names); pass it with "
                             "its %s beside it, or the original .params file" % (path, SYMBOL_SUFFIX))
    have = {k: tuple(p.shape) for k, p in net._collect_params_with_prefix().items()}
    missing = sorted(set(have) - set(stored))
    unexpected = sorted(set(stored) - set(have))
    reshaped = sorted(k for k in set(have) & set(stored) if len(have[k]) != len(stored[k]) or any(
        a > 0 and a != b for a, b in zip(have[k], stored[k])))
    if not (missing or unexpected or reshaped):
        return

    def listing(keys: List[str], fmt) -> str:
        shown = ", ".join(fmt(k) for k in keys[:_LIST_LIMIT])
        return shown + (" ... (%d in all)" % len(keys) if len(keys) > _LIST_LIMIT else "")

    lines = ["%s does not fit %s (%d parameters in the file, %d in the network):" % (
        path, name, len(stored), len(have))]
    if reshaped:
        lines.append("  mis-shaped: " + listing(reshaped, lambda k: "%s file %s vs network (%s)" % (
            k, stored[k], ", ".join(str(d) if d > 0 else "?" for d in have[k]))))
    if missing:
        lines.append("  missing from the file: " + listing(missing, str))
    if unexpected:
        lines.append("  unexpected in the file: " + listing(unexpected, str))
    lines.append("  (wrong --network, --classes or width options? a run's manifest settles them)")
    raise ModelFileError("\n".join(lines))


def _manifest_for(params_path: str) -> Optional[str]:
    base = params_path[:-len(".params")] if params_path.endswith(".params") else params_path
    path = base + MANIFEST_SUFFIX
    return path if os.path.isfile(path) else None


def find_results(manifest_path: str, manifest: Mapping[str, Any]) -> Optional[str]:
    """The results file evaluating the weights of a checkpoint, if the run wrote one.

    ``best`` and ``epochNNNN`` checkpoints hold the weights after epoch ``meta['epoch'] - 1``, which
    ``results_epochNNNN.json`` evaluates; ``results_final.json`` evaluates the last epoch's weights.
    """
    run_dir = os.path.dirname(os.path.abspath(manifest_path))
    meta = manifest.get("meta", {})
    epoch = int(meta.get("epoch", 0)) - 1
    candidates = ["results_epoch%04d.json" % epoch]
    total = (meta.get("args") or {}).get("epochs")
    if total is not None and epoch == int(total) - 1:
        candidates.insert(0, "results_final.json")
    for name in candidates:
        path = os.path.join(run_dir, name)
        if os.path.isfile(path):
            return path
    return None


def _from_manifest(manifest_path: str, network: Optional[str], dataset: Optional[str],
                   classes: Optional[Any]) -> Tuple[str, Tuple[str, ...], Dict[str, Any], Dict[str, Any]]:
    try:
        manifest = read_manifest(manifest_path)
    except CheckpointError as exc:
        raise ModelFileError(str(exc)) from None
    record = manifest["files"]["params"]
    params_path = os.path.join(os.path.dirname(os.path.abspath(manifest_path)), record["file"])
    if os.path.getsize(params_path) != record.get("bytes") or file_digest(params_path, "sha256") != record.get("sha256"):
        raise ModelFileError("%s is not the file %s recorded (size or SHA-256 differs: edited or overwritten), "
                             "so its training arguments may not describe it; move the manifest away and pass "
                             "--network/--classes to use the file anyway" % (params_path, manifest_path))
    args = manifest["meta"].get("args") or {}
    if not args.get("network"):
        raise ModelFileError("%s: the manifest records no training arguments (meta.args.network); pass "
                             "--network and --classes" % manifest_path)
    kind = manifest["meta"].get("recipe") or args.get("detector")  # recorded by newer runs, if at all
    if kind not in ("yolo3", "faster_rcnn"):  # the flags only the YOLOv3 script has
        kind = "yolo3" if "tiny_width" in args or "data_shape" in args else "faster_rcnn"
    name = model_name(args["network"], args.get("dataset"), kind)
    if network and model_name(network, dataset or args.get("dataset"), kind) != name:
        raise ModelFileError("--network %s contradicts %s, which records %s (drop --network)" % (
            network, manifest_path, name))
    names = None
    results = find_results(manifest_path, manifest)
    if results:
        with open(results, "r", encoding="utf-8") as f:
            names = tuple(json.load(f).get("classes") or ()) or None
    names = names or dataset_classes(args.get("dataset"), args.get("classes"))
    if classes:
        names = dataset_classes(None, classes)
    if not names:
        raise ModelFileError("%s: cannot tell the class names (dataset %r without --classes); pass --classes"
                             % (manifest_path, args.get("dataset")))
    kwargs: Dict[str, Any] = {}
    if name == "yolo3_tiny_shapes":
        kwargs = {"width": float(args.get("tiny_width", 0.25)), "head_width": float(args.get("tiny_head_width", 0.125)),
                  "backbone": args.get("tiny_backbone", "mobilenet")}
    elif kind == "faster_rcnn":
        kwargs = {k: int(args[k]) for k in ("short", "max_size") if args.get(k) is not None}
    return name, names, kwargs, manifest


def _card_beside(path: str) -> Dict[str, Any]:
    card = os.path.join(os.path.dirname(os.path.abspath(path)), CARD_FILE)
    if not os.path.isfile(card):
        return {}
    with open(card, "r", encoding="utf-8") as f:
        return json.load(f)


def _load_symbol(symbol_path: str, params_path: str, classes: Optional[Any], data_shape: Optional[int],
                 ctx: mx.Context) -> RunModel:
    card = _card_beside(symbol_path)
    names = dataset_classes(None, classes) if classes else tuple(card.get("classes") or ())
    if not names:
        raise ModelFileError("%s: no %s beside it to give the class names; pass --classes" % (symbol_path, CARD_FILE))
    inputs = card.get("input", {})
    name = card.get("model_name") or os.path.basename(symbol_path)[:-len(SYMBOL_SUFFIX)]
    kind = card.get("detector") or detector_kind(name)
    in_graph = bool(inputs.get("normalize_in_graph", False))
    try:
        with warnings.catch_warnings():  # "Cannot decide type for data": the input is float32
            warnings.simplefilter("ignore", UserWarning)
            net = mx.gluon.SymbolBlock.imports(symbol_path, ["data"], params_path, ctx=ctx)
    except Exception as exc:  # MXNet raises several types for bad json/params pairs
        raise ModelFileError("%s with %s: not a loadable symbol export (%s)" % (
            symbol_path, params_path, str(exc).strip().splitlines()[-1][:300])) from None
    return RunModel(net=net, name=name, kind=kind, classes=names, params_path=params_path,
                    data_shape=int(data_shape or inputs.get("data_shape") or DEFAULT_YOLO_SHAPE),
                    short=inputs.get("short"), max_size=inputs.get("max_size"), symbol_path=symbol_path,
                    normalize_in_graph=in_graph, ctx=ctx)


def load_run_model(params: str, network: Optional[str] = None, dataset: Optional[str] = None,
                   classes: Optional[Any] = None, data_shape: Optional[int] = None,
                   ctx: Optional[mx.Context] = None, hybridize: bool = True) -> RunModel:
    """Rebuild and load the detector of ``params`` (a run checkpoint, a bare/GluonCV file or a symbol export).

    Parameters
    ----------
    params : path of a ``.params`` file, or of a ``-symbol.json`` export.
    network : model name (``yolo3_darknet53_voc``) or training ``--network``; required without a manifest.
    dataset : with a training ``--network``: voc, coco, shapes or custom.
    classes : class names (list or comma string); default: the run's or the dataset's.
    data_shape : YOLOv3 input side in pixels; default: the run's ``--data-shape``, else 416.
    """
    ctx = ctx or mx.cpu()
    params = os.fspath(params)
    if params.endswith(SYMBOL_SUFFIX):
        symbol_path, params = params, params[:-len(SYMBOL_SUFFIX)] + "-0000.params"
        return _load_symbol(symbol_path, params, classes, data_shape, ctx)
    if not os.path.isfile(params):
        raise ModelFileError("%s: weights file does not exist" % params)
    stem = os.path.basename(params)
    if stem.endswith("-0000.params"):
        symbol_path = params[:-len("-0000.params")] + SYMBOL_SUFFIX
        if os.path.isfile(symbol_path):
            return _load_symbol(symbol_path, params, classes, data_shape, ctx)
    manifest_path, manifest = _manifest_for(params), None
    if manifest_path:
        name, names, kwargs, manifest = _from_manifest(manifest_path, network, dataset, classes)
        args = manifest["meta"]["args"]
        data_shape = data_shape or args.get("data_shape")
    else:
        if not network:
            raise ModelFileError("%s has no %s beside it: pass --network (e.g. yolo3_darknet53_voc) and, for "
                                 "a custom dataset, --classes" % (params, MANIFEST_SUFFIX))
        name = model_name(network, dataset)
        names = dataset_classes(dataset or _name_dataset(name), classes)
        if not names:
            raise ModelFileError("%s: model %s needs --classes (comma-separated class names)" % (params, name))
        kwargs = {}
    kind = detector_kind(name)
    net = get_model(name, classes=list(names), pretrained_base=False, **kwargs)
    _check_fits(net, params, name)
    net.load_parameters(params, ctx=ctx)
    if hybridize:
        net.hybridize()
    model = RunModel(net=net, name=name, kind=kind, classes=tuple(names), params_path=params,
                     model_kwargs=kwargs, manifest_path=manifest_path, manifest=manifest, ctx=ctx)
    if kind == "yolo3":
        model.data_shape = int(data_shape or DEFAULT_YOLO_SHAPE)
        if model.data_shape <= 0 or model.data_shape % 32:
            raise ModelFileError("--data-shape %d: YOLOv3 needs a positive multiple of 32" % model.data_shape)
    else:
        model.short = int(net.short[-1] if isinstance(net.short, (tuple, list)) else net.short)
        model.max_size = int(net.max_size)
    return model
