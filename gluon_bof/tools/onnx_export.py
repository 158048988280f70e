"""ONNX export of a symbol export through MXNet's own exporter (``mx.onnx.export_model``), checked
against MXNet's outputs with onnxruntime.

What is done to the graph before the exporter sees it, and why:

* ``Reshape`` with ``shape=(0, -3, -1)`` (merge two axes) has no converter for ``-3``; when the input
  is 4-D and its last axis has the same length at two input sizes, it becomes the equivalent
  ``(0, -1, last)``. Any other unsupported reshape code is left and fails with its node named.
* MXNet's converters are written for ONNX opsets 12-13 but the exporter stamps the newest opset of
  the installed ``onnx``; the file is re-stamped with the opset the converters target, so runtimes
  interpret each node as it was generated.

Failures raise :class:`OnnxExportError` naming the operator and node: operators without a converter,
a converter that rejects a node's attributes, or outputs that differ from MXNet's (the exporter's
warnings, e.g. on ``box_nms``, are quoted). A file whose outputs differ is deleted, not shipped.
"""
import contextlib
import importlib
import json
import logging
import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np

__all__ = ["OnnxExportError", "export_onnx", "compare_detections", "onnx_runtime"]

_MERGE = "(0, -3, -1)"


class OnnxExportError(RuntimeError):
    """The graph cannot be exported to ONNX faithfully; the message names the operator and node."""


def _optional(module: str, hint: str) -> Any:
    """Import a package of the ``export`` extra, or raise :class:`OnnxExportError` saying how to install it.

    The ``[cpu]`` install has neither ``onnx`` nor ``onnxruntime``; this module must import without them.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise OnnxExportError(hint) from None


_NEEDS_ONNX = "ONNX export needs the 'onnx' package: pip install -e '.[export]' (the symbol export does not)"
_NEEDS_ORT = ("checking the ONNX graph needs onnxruntime: pip install --no-deps onnxruntime==1.15.1 (its metadata "
              "asks numpy>=1.24.2, but it runs with the numpy<1.24 that mxnet 1.9.1 needs)")


def _registry() -> Dict[int, Dict[str, Any]]:
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
    return MXNetGraph.registry_


def compare_detections(got: Sequence[np.ndarray], want: Sequence[np.ndarray], atol: float = 1e-3,
                       rtol: float = 1e-4) -> Dict[str, Any]:
    """Compare two ``(ids, scores, boxes)`` triples: per-output max differences and a verdict."""
    report: Dict[str, Any] = {"same": True}
    for key, a, b in zip(("ids", "scores", "boxes"), got, want):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape:
            report.update({"same": False, key + "_shape": [list(a.shape), list(b.shape)]})
            continue
        report["max_abs_diff_" + key] = float(np.max(np.abs(a - b))) if a.size else 0.0
        if not np.allclose(a, b, rtol=rtol, atol=atol):
            report["same"] = False
    report["valid_detections"] = int((np.asarray(want[0]) >= 0).sum())
    return report


def _internal_shapes(sym: mx.sym.Symbol, shape: Tuple[int, ...]) -> Dict[str, Tuple[int, ...]]:
    internals = sym.get_internals()
    _, out_shapes, _ = internals.infer_shape(data=shape)
    return dict(zip(internals.list_outputs(), [tuple(s) for s in out_shapes]))


def _rewrite_merges(sym: mx.sym.Symbol, shape: Tuple[int, ...]) -> Tuple[mx.sym.Symbol, List[str]]:
    """Replace ``Reshape(0, -3, -1)`` on 4-D inputs with ``Reshape(0, -1, last)`` (see module doc)."""
    graph = json.loads(sym.tojson())
    nodes = graph["nodes"]
    if not any(n["op"] == "Reshape" and n.get("attrs", {}).get("shape") == _MERGE for n in nodes):
        return sym, []
    other = tuple(shape[:-2]) + (shape[-2] + 32, shape[-1] + 32)
    first, second = _internal_shapes(sym, tuple(shape)), _internal_shapes(sym, other)
    rewritten = []
    for node in nodes:
        if node["op"] != "Reshape" or node.get("attrs", {}).get("shape") != _MERGE:
            continue
        src_id, out_index = node["inputs"][0][0], node["inputs"][0][1]
        src = nodes[src_id]
        keys = [src["name"]] if src["op"] == "null" else [src["name"] + "_output", "%s_output%d" % (src["name"], out_index)]
        key = next((k for k in keys if k in first), None)
        if key is None or len(first[key]) != 4 or first[key][-1] != second[key][-1]:
            continue
        node["attrs"]["shape"] = "(0, -1, %d)" % first[key][-1]
        rewritten.append("%s: Reshape%s -> Reshape%s" % (node["name"], _MERGE, node["attrs"]["shape"]))
    return mx.sym.load_json(json.dumps(graph)), rewritten


def _unsupported(sym: mx.sym.Symbol) -> Dict[str, List[str]]:
    """``{operator: [node names]}`` of the operators MXNet's exporter has no converter for."""
    known = set().union(*(ops.keys() for ops in _registry().values()))
    missing: Dict[str, List[str]] = {}
    for node in json.loads(sym.tojson())["nodes"]:
        if node["op"] != "null" and node["op"] not in known:
            missing.setdefault(node["op"], []).append(node["name"])
    return missing


def _failing_node(exc: BaseException) -> Optional[Dict[str, Any]]:
    """The MXNet node a converter was working on when ``exc`` was raised (from the traceback)."""
    tb = exc.__traceback__
    node = None
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "convert_layer" and isinstance(tb.tb_frame.f_locals.get("node"), dict):
            node = tb.tb_frame.f_locals["node"]
        tb = tb.tb_next
    return node


@contextlib.contextmanager
def _captured_warnings() -> Iterator[List[str]]:
    """Collect the exporter's logging warnings (it reports lossy conversions there)."""
    messages: List[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                messages.append(record.getMessage())

    handler, root = Collect(), logging.getLogger()
    root.addHandler(handler)
    try:
        yield messages
    finally:
        root.removeHandler(handler)


def _stamp_opset(path: str) -> int:
    """Declare the opset MXNet's converters generate for (the newest in their registry)."""
    onnx = _optional("onnx", _NEEDS_ONNX)
    model = onnx.load(path)
    target = max(_registry())
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version > target:
            opset.version = target
    model.ir_version = min(model.ir_version, 7)  # IR 7 is the version of opset 13
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return target


def onnx_runtime(path: str) -> Tuple[str, Callable[[np.ndarray], List[np.ndarray]]]:
    """``(name, run(x) -> list of outputs)`` for an ONNX file, with onnxruntime on the CPU.

    ONNX's own reference evaluator is no substitute: it fails on the Faster R-CNN graphs.
    """
    ort = _optional("onnxruntime", _NEEDS_ORT)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return "onnxruntime " + ort.__version__, lambda x: session.run(None, {name: x})


def export_onnx(symbol_path: str, params_path: str, onnx_path: str, check_input: np.ndarray,
                reference: Sequence[np.ndarray]) -> Dict[str, Any]:
    """Convert a symbol export to ``onnx_path`` and check it against MXNet's outputs.

    Parameters
    ----------
    symbol_path, params_path : the ``-symbol.json`` / ``-0000.params`` pair.
    check_input : ``(1, ...)`` float32 input of the graph, e.g. a preprocessed image.
    reference : MXNet's ``(ids, scores, boxes)`` for ``check_input``.

    Returns a report (``opset``, ``runtime``, ``rewrites``, ``exporter_warnings``, ``check``).
    """
    _optional("onnx", _NEEDS_ONNX)  # MXNet's exporter imports it deep inside; fail early and clearly
    sym = mx.sym.load(symbol_path)
    stored = mx.nd.load(params_path)
    params = {k.split(":", 1)[1]: v for k, v in (stored.items() if isinstance(stored, dict) else ())}
    shape = tuple(check_input.shape)
    sym, rewrites = _rewrite_merges(sym, shape)
    missing = _unsupported(sym)
    if missing:
        raise OnnxExportError("%s: MXNet's ONNX exporter has no converter for operator(s) %s" % (
            symbol_path, "; ".join("%s (nodes %s)" % (op, ", ".join(names[:5])) for op, names in missing.items())))
    with _captured_warnings() as warned:
        try:
            mx.onnx.export_model(sym, params, [shape], np.float32, onnx_path, dynamic=True,
                                 dynamic_input_shapes=[(shape[0],) + (None,) * (len(shape) - 1)])
        except Exception as exc:  # converters raise AttributeError, NotImplementedError, ValueError...
            node = _failing_node(exc)
            where = ("node '%s' (operator %s, attributes %s)" % (node.get("name"), node.get("op"), node.get("attrs", {}))
                     if node else "an unidentified node")
            if os.path.exists(onnx_path):
                os.remove(onnx_path)
            raise OnnxExportError("%s: MXNet's ONNX exporter cannot convert %s: %s: %s" % (
                symbol_path, where, type(exc).__name__, exc)) from None
    opset = _stamp_opset(onnx_path)
    try:
        runtime, run = onnx_runtime(onnx_path)
    except OnnxExportError as exc:
        os.remove(onnx_path)
        raise OnnxExportError("%s: converted, but not written: %s" % (symbol_path, exc)) from None
    try:
        outputs = run(check_input.astype(np.float32))
    except Exception as exc:  # runtime errors name the ONNX node
        os.remove(onnx_path)
        raise OnnxExportError("%s: the exported ONNX graph does not run in %s: %s" % (
            symbol_path, runtime, str(exc).strip()[:500])) from None
    check = compare_detections(outputs[:3], reference)
    report = {"opset": opset, "runtime": runtime, "rewrites": rewrites, "exporter_warnings": warned,
              "check": check, "checked_input_shape": list(shape)}
    if not check["same"]:
        os.remove(onnx_path)
        lossy = "; exporter warnings: " + " | ".join(sorted(set(warned))) if warned else ""
        raise OnnxExportError("%s: the ONNX graph converts and runs in %s but its detections differ from "
                              "MXNet's (%s)%s. Not written." % (
                                  symbol_path, runtime, ", ".join("%s=%s" % (k, v) for k, v in check.items()
                                                                  if k != "same"), lossy))
    return report
