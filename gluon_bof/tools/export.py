"""Export a trained detector: GluonCV model-zoo file, symbol graph, ONNX, and a model card.

::

    python -m gluon_bof.tools.export --params RUN/best.params --out EXPORT [--format zoo,symbol,onnx]
    (default zoo,symbol)
    python -m gluon_bof.tools.export --params yolo3_darknet53_voc-f5ece5ce.params \\
        --network yolo3_darknet53_voc --out EXPORT

Formats (every one checked against the loaded network before the card is written):

``zoo``
    ``<name>-<sha1[:8]>.params``, the file name GluonCV's model store looks for, with
    ``model_store_entry.txt`` (the ``('<sha1>', '<name>')`` line for GluonCV's table) and
    ``classes.txt``. Models GluonCV does not have keep our name; the card says which GluonCV
    architecture they match and how to load them there.
``symbol``
    ``<name>-symbol.json`` and ``<name>-0000.params`` as ``HybridBlock.export`` writes them
    (``mx.gluon.SymbolBlock.imports`` reloads them), checked to give the same detections.
    ``--preprocess`` puts the ImageNet normalisation in the graph (input: resized RGB 0-255, NHWC).
``onnx``
    ``<name>.onnx`` via MXNet's exporter, checked with onnxruntime (see ``onnx_export``). A graph
    the exporter cannot convert faithfully fails with the operator named; the other formats stay.

``model_card.json`` / ``model_card.md`` describe the model and list the SHA-1 of every file.
Exit status: 0 when every requested format succeeded, 3 when one failed (the others and the card
are written), 2 on bad arguments or a weights file that does not fit.
"""
import argparse
import os
import shutil
import sys
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock, nn

from ..data.transforms.presets import MEAN, STD
from ..model.backbones.plain import PLAIN_CUTS
from ..model.yolo.zoo import tiny_head_channels
from .model_card import build_card, measure_inference, sha1_of, write_card
from .onnx_export import OnnxExportError, compare_detections, export_onnx
from .run_model import ModelFileError, RunModel, find_results, load_run_model

__all__ = ["FORMATS", "GLUONCV_STORE", "architecture_of", "check_image", "export_zoo", "export_symbol",
           "run_export", "main"]

FORMATS = ("zoo", "symbol", "onnx")
DEFAULT_FORMATS = ("zoo", "symbol")  # ONNX on request: MXNet's exporter cannot export YOLOv3's NMS faithfully
# Names with an entry in GluonCV 0.10.5's model store (``gluoncv/model_zoo/model_store.py``).
GLUONCV_STORE = ("yolo3_darknet53_voc", "yolo3_darknet53_coco", "yolo3_mobilenet1.0_voc", "yolo3_mobilenet1.0_coco",
                 "faster_rcnn_resnet50_v1b_voc", "faster_rcnn_resnet50_v1b_coco", "faster_rcnn_resnet101_v1d_coco")
# Names GluonCV 0.10.5 can build (``gluoncv.model_zoo.get_model``) without a store entry.
GLUONCV_BUILDABLE = ("yolo3_mobilenet0.25_voc", "yolo3_mobilenet0.25_coco", "yolo3_darknet53_custom",
                     "yolo3_mobilenet1.0_custom", "yolo3_mobilenet0.25_custom")
_STORE_ENTRY = "model_store_entry.txt"
_CLASSES = "classes.txt"


def architecture_of(model: RunModel) -> Dict[str, Any]:
    """What the model is, its GluonCV counterpart, and the Python that loads the zoo file in GluonCV."""
    name, classes = model.name, list(model.classes)
    if name in GLUONCV_STORE or name in GLUONCV_BUILDABLE[:2]:
        return {"description": "GluonCV's %s" % name, "gluoncv": name, "gluoncv_name": name,
                "in_gluoncv_store": name in GLUONCV_STORE, "verified_in_gluoncv": True,
                "load_in_gluoncv": "gluoncv.model_zoo.get_model(%r, pretrained='<sha1[:8]>', root=DIR)" % name}
    if name in GLUONCV_BUILDABLE:
        return {"description": "GluonCV's %s with %d classes" % (name, len(classes)), "gluoncv": name,
                "gluoncv_name": name, "in_gluoncv_store": False, "verified_in_gluoncv": True,
                "load_in_gluoncv": "net = gluoncv.model_zoo.get_model(%r, classes=%r, pretrained_base=False); "
                                   "net.load_parameters(FILE)" % (name, classes)}
    if name == "yolo3_tiny_shapes":
        width = float(model.model_kwargs.get("width", 0.25))
        heads = tiny_head_channels(float(model.model_kwargs.get("head_width", 0.125)))
        if model.model_kwargs.get("backbone", "mobilenet") == "plain":
            # GluonCV's YOLOV3 takes any stages; this backbone exists only in gluon_bof.
            a, b, _ = PLAIN_CUTS
            stages = "f[:%d], f[%d:%d], f[%d:]" % (a, a, b, b)
            return {"description": "YOLOv3 on the plain 3x3-conv backbone width %g, detection blocks %s (GluonCV: "
                                   "512, 256, 128)" % (width, heads), "gluoncv_name": None, "in_gluoncv_store": False,
                    "gluoncv": "gluoncv.model_zoo.yolo.yolo3.YOLOV3 on gluon_bof.model.backbones.plain.plain_features"
                               "(%g) stages %s, filters %s" % (width, stages, heads),
                    "verified_in_gluoncv": True,
                    "load_in_gluoncv": "from gluon_bof.model.backbones.plain import plain_features; f = plain_features"
                                       "(%g); net = gluoncv.model_zoo.yolo.yolo3.YOLOV3([%s], %s, "
                                       "[[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, "
                                       "326]], [8, 16, 32], %r); net.load_parameters(FILE)" % (width, stages, heads,
                                                                                               classes)}
        backbone = "mobilenet%s" % ("1.0" if width == 1.0 else ("%g" % width))
        info = {"description": "YOLOv3 on MobileNet width %g, detection blocks %s (GluonCV: 512, 256, 128)"
                % (width, heads), "gluoncv_name": None, "in_gluoncv_store": False}
        if backbone in ("mobilenet1.0", "mobilenet0.25"):
            info.update({
                "gluoncv": "gluoncv.model_zoo.yolo.yolo3.custom_yolov3(%r, filters=%s)" % (backbone, heads),
                "verified_in_gluoncv": True,
                "load_in_gluoncv": "net = gluoncv.model_zoo.yolo.yolo3.custom_yolov3(%r, %s, [[10, 13, 16, 30, 33, 23], "
                                   "[30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]], [8, 16, 32], %r, "
                                   "'shapes', pretrained_base=False); net.load_parameters(FILE)" % (backbone, heads, classes)})
        else:
            info.update({"gluoncv": "gluoncv.model_zoo.yolo.yolo3.YOLOV3 on get_mobilenet(%g) stages "
                                    "(features[:33], [33:69], [69:-2]), filters %s" % (width, heads),
                         "verified_in_gluoncv": False, "load_in_gluoncv": None})
        return info
    rcnn = {"faster_rcnn_resnet18_v1b_shapes": "Faster R-CNN on ResNet-18 v1b (conv1..layer3 shared, layer4 per RoI)",
            "faster_rcnn_mobilenet0.25_shapes": "Faster R-CNN on MobileNet 0.25 units 1-11, two Dense(256) per RoI",
            "faster_rcnn_mobilenet0.5_shapes": "Faster R-CNN on MobileNet 0.5 units 1-11, two Dense(512) per RoI"}
    return {"description": rcnn.get(name, name), "gluoncv_name": None, "in_gluoncv_store": False,
            "gluoncv": "gluoncv.model_zoo.rcnn.FasterRCNN built with the same feature and per-RoI blocks "
                       "(no GluonCV model-zoo name)", "verified_in_gluoncv": False, "load_in_gluoncv": None}


def export_zoo(model: RunModel, out_dir: str) -> Tuple[Dict[str, Any], List[str]]:
    """Copy the weights under GluonCV's store name, with the store entry and the class list."""
    sha1 = sha1_of(model.params_path)
    arch = architecture_of(model)
    zoo_name = model.name
    target = os.path.join(out_dir, "%s-%s.params" % (zoo_name, sha1[:8]))
    if os.path.abspath(target) != os.path.abspath(model.params_path):
        shutil.copyfile(model.params_path, target)
    if sha1_of(target) != sha1:
        raise OSError("%s: copy does not have the SHA-1 of %s" % (target, model.params_path))
    entry = os.path.join(out_dir, _STORE_ENTRY)
    with open(entry, "w", encoding="utf-8") as f:
        if arch.get("gluoncv_name"):
            f.write("# Line for _model_sha1 in gluoncv/model_zoo/model_store.py; the file goes to "
                    "$MXNET_HOME/models (default ~/.mxnet/models)%s:\n" % (
                        "" if arch["in_gluoncv_store"] else " (new entry: GluonCV has no pretrained %s)" % zoo_name))
        else:
            f.write("# GluonCV has no model named %s: exported under our name. Architecture: %s. Load with: %s\n"
                    % (zoo_name, arch.get("gluoncv"), arch.get("load_in_gluoncv") or "(no GluonCV builder)"))
        f.write("    ('%s', '%s'),\n" % (sha1, zoo_name))
    classes = os.path.join(out_dir, _CLASSES)
    with open(classes, "w", encoding="utf-8") as f:
        f.write("\n".join(model.classes) + "\n")
    notes = ["load: %s" % (arch.get("load_in_gluoncv") or "gluon_bof.model.get_model(%r) + load_parameters" % zoo_name)]
    if not arch.get("gluoncv_name"):
        notes.insert(0, "GluonCV has no model named %s; exported under our name" % zoo_name)
    info = {"ok": True, "file": os.path.basename(target), "sha1": sha1, "model_store_name": zoo_name,
            "store_entry": "('%s', '%s')" % (sha1, zoo_name), "notes": notes}
    return info, [target, entry, classes]


class RawRGBInput(HybridBlock):
    """``(B, H, W, 3)`` RGB in 0-255 -> ``(B, 3, H, W)`` normalised with the ImageNet mean/std."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.mean = self.params.get_constant("mean", mx.nd.array(np.array(MEAN) * 255.0).reshape((1, 1, 1, 3)))
            self.std = self.params.get_constant("std", mx.nd.array(np.array(STD) * 255.0).reshape((1, 1, 1, 3)))

    def hybrid_forward(self, F, x, mean, std):
        return F.broadcast_div(F.broadcast_minus(x, mean), std).transpose(axes=(0, 3, 1, 2))


def check_image(model: RunModel, seed: int = 0) -> np.ndarray:
    """A deterministic test picture (HxWx3 uint8) with a few solid shapes, wider than tall."""
    side = model.data_shape if model.kind == "yolo3" else model.short
    h, w = int(side), int(side * 1.25)
    rng = np.random.RandomState(seed)
    image = (rng.rand(h, w, 3) * 60 + 100).astype(np.uint8)
    for _ in range(4):
        x0, y0 = rng.randint(0, w // 2), rng.randint(0, h // 2)
        image[y0:y0 + h // 3, x0:x0 + w // 4] = rng.randint(0, 255, 3)
    return image


def export_symbol(model: RunModel, out_dir: str, preprocess: bool = False) -> Tuple[Dict[str, Any], List[str]]:
    """``<name>-symbol.json`` + ``<name>-0000.params``, reloaded and checked against ``model``."""
    prefix = os.path.join(out_dir, model.name)
    block = model.net
    if preprocess:
        block = nn.HybridSequential(prefix="")
        head = RawRGBInput(prefix="preprocess_")
        head.initialize(ctx=model.ctx)
        block.add(head)
        block.add(model.net)
    block.hybridize()
    image = check_image(model)
    x_net, x_graph = model.preprocess(image, raw=False)[0][None], model.preprocess(image, raw=preprocess)[0][None]
    block(mx.nd.array(x_graph, ctx=model.ctx))
    block.export(prefix, epoch=0)
    files = [prefix + "-symbol.json", prefix + "-0000.params"]
    with warnings.catch_warnings():  # "Cannot decide type for data": the input is float32
        warnings.simplefilter("ignore", UserWarning)
        reloaded = mx.gluon.SymbolBlock.imports(files[0], ["data"], files[1], ctx=model.ctx)
    got = [o.asnumpy() for o in reloaded(mx.nd.array(x_graph, ctx=model.ctx))]
    want = [o.asnumpy() for o in model.net(mx.nd.array(x_net, ctx=model.ctx))]
    check = compare_detections(got, want)
    info = {"ok": bool(check["same"]), "files": [os.path.basename(p) for p in files], "check": check,
            "input": "NHWC raw RGB 0-255" if preprocess else "NCHW normalized",
            "checked_input_shape": list(x_graph.shape), "notes": [
                "reload: mx.gluon.SymbolBlock.imports(%r, ['data'], %r)" % tuple(os.path.basename(p) for p in files)]}
    if not check["same"]:
        info["error"] = "reloaded graph's detections differ from the network's: %s" % check
    info["_check_input"], info["_reference"] = x_graph, got
    return info, files


def _parse_formats(text: str) -> List[str]:
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ModelFileError("--format %r: choose from %s (comma-separated)" % (text, ",".join(FORMATS)))
    return formats


def run_export(params: str, out_dir: str, formats: Sequence[str] = DEFAULT_FORMATS, network: Optional[str] = None,
               dataset: Optional[str] = None, classes: Optional[Any] = None, data_shape: Optional[int] = None,
               results: Optional[str] = None, preprocess: bool = False, timing_runs: int = 10) -> Dict[str, Any]:
    """Export ``params`` into ``out_dir`` in ``formats`` and write the model card; return the card."""
    model = load_run_model(params, network, dataset, classes, data_shape)
    if model.symbol_path:
        raise ModelFileError("%s is already a symbol export; export the original .params file" % params)
    formats = list(formats)
    if "onnx" in formats and "symbol" not in formats:
        formats.insert(formats.index("onnx"), "symbol")  # the ONNX exporter reads the symbol export
    os.makedirs(out_dir, exist_ok=True)
    exports: Dict[str, Dict[str, Any]] = {}
    files: List[str] = []
    if "zoo" in formats:
        exports["zoo"], new = export_zoo(model, out_dir)
        files += new
    symbol: Dict[str, Any] = {}
    if "symbol" in formats:
        symbol, new = export_symbol(model, out_dir, preprocess)
        exports["symbol"] = {k: v for k, v in symbol.items() if not k.startswith("_")}
        files += new
    if "onnx" in formats:
        onnx_path = os.path.join(out_dir, model.name + ".onnx")
        try:
            if not symbol.get("ok"):
                raise OnnxExportError("the symbol export failed its check; no ONNX export from it")
            report = export_onnx(os.path.join(out_dir, model.name + "-symbol.json"),
                                 os.path.join(out_dir, model.name + "-0000.params"), onnx_path,
                                 symbol["_check_input"], symbol["_reference"])
            exports["onnx"] = dict(report, ok=True, file=os.path.basename(onnx_path), notes=[
                "opset %d, checked with %s at input %s" % (report["opset"], report["runtime"],
                                                            report["checked_input_shape"])] + report["rewrites"])
            files.append(onnx_path)
        except OnnxExportError as exc:
            exports["onnx"] = {"ok": False, "error": str(exc), "notes": []}
    results = results or (find_results(model.manifest_path, model.manifest) if model.manifest_path else None)
    timing = measure_inference(model, runs=timing_runs) if timing_runs > 0 else None
    card = build_card(model, architecture_of(model), exports, files, results, timing, model.params_path,
                      normalize_in_graph=preprocess and "symbol" in formats)
    write_card(out_dir, card)
    return card


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gluon_bof.tools.export", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--params", required=True, help="RUN/<tag>.params (manifest beside it) or a bare/GluonCV file")
    p.add_argument("--network", default=None, help="model name (yolo3_darknet53_voc, ...) or training --network; "
                   "needed without a manifest")
    p.add_argument("--dataset", default=None, help="with a training --network: voc, coco, shapes or custom")
    p.add_argument("--classes", default=None, help="comma-separated class names (custom datasets)")
    p.add_argument("--data-shape", type=int, default=None, help="YOLOv3 input side (default: the run's, else 416)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", default=",".join(DEFAULT_FORMATS), help="comma-separated: zoo, symbol, onnx "
                   "(onnx implies symbol)")
    p.add_argument("--results", default=None, help="results JSON giving the mAP (default: the run's, if any)")
    p.add_argument("--preprocess", action="store_true", help="symbol/ONNX graphs take resized RGB 0-255 NHWC "
                   "and normalise inside")
    p.add_argument("--timing-runs", type=int, default=10, help="timed forwards for the card (0: skip)")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        formats = _parse_formats(args.format)
        card = run_export(args.params, args.out, formats, args.network, args.dataset, args.classes,
                          args.data_shape, args.results, args.preprocess, args.timing_runs)
    except ModelFileError as exc:
        print("export: error: %s" % exc, file=sys.stderr)
        return 2
    failed = [fmt for fmt, info in card["exports"].items() if not info.get("ok")]
    for f in card["files"]:
        print("%-48s %12s bytes  sha1 %s" % (f["file"], "{:,}".format(f["bytes"]), f["sha1"]))
    for fmt in failed:
        print("export: %s failed: %s" % (fmt, card["exports"][fmt].get("error")), file=sys.stderr)
    print("model card: %s" % os.path.join(args.out, "model_card.md"))
    return 3 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
