"""The model card written beside every export: what the model is, how it was trained, how well it
does, what it costs, and the SHA-1 of every exported file (``model_card.json`` and ``model_card.md``).

The card is built from the run's manifest (training arguments, versions), its results file (mAP,
dataset, split) and measurements taken while exporting (parameter count, inference time on this
machine). Anything not known (a bare ``.params`` file has no manifest) is recorded as ``null`` with
the reason, never guessed.
"""
import json
import os
import platform
import shlex
import statistics
import subprocess
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..digest import file_digest

import mxnet as mx
import numpy as np

from .. import __version__
from .run_model import CARD_FILE, RunModel

__all__ = ["CARD_FORMAT", "sha1_of", "file_record", "training_command", "freebies_of", "parameter_count",
           "measure_inference", "machine_info", "package_info", "evaluation_of", "build_card", "write_card",
           "render_markdown"]

CARD_FORMAT = "gluon_bof.model_card"
CARD_MD = "model_card.md"
_SCRIPTS = {"yolo3": "train_yolo3.py", "faster_rcnn": "train_faster_rcnn.py"}


def sha1_of(path: str) -> str:
    """Hex SHA-1 of a file (GluonCV's model store checks this digest)."""
    return file_digest(path, "sha1")


def file_record(path: str) -> Dict[str, Any]:
    """``{"file", "bytes", "sha1"}`` of one exported file."""
    return {"file": os.path.basename(path), "bytes": os.path.getsize(path), "sha1": sha1_of(path)}


def training_command(kind: str, args: Mapping[str, Any]) -> Optional[str]:
    """The training command line rebuilt from a run's resolved arguments (``None`` without them).

    The run's own command line when it was recorded (``args['argv']``); otherwise flags in their
    long form (``--num-workers`` for ``-j``), switches that are off and arguments left at ``None``
    omitted.
    """
    if not args:
        return None
    if isinstance(args.get("argv"), list):
        return " ".join(shlex.quote(w) for w in ["python", _SCRIPTS.get(kind, "train.py")] + list(args["argv"]))
    parts = ["python", _SCRIPTS.get(kind, "train.py")]
    for key in sorted(k for k in args if k != "max_objects"):  # max_objects is measured, not a flag
        value = args[key]
        flag = "--" + key.replace("_", "-")
        if value is None or value is False or value == "":
            continue
        parts.append(flag if value is True else "%s %s" % (flag, value))
    return " ".join(parts)


def freebies_of(kind: str, args: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """Which of the paper's freebies the run used, from its arguments (``None`` without them)."""
    if not args:
        return None
    cosine = args.get("lr_mode") == "cosine"
    if kind == "yolo3":
        augment = [k for k in ("color_jitter", "expand", "crop", "flip", "random_interp") if not args.get("no_" + k)]
        return {"mixup": bool(args.get("mixup")), "label_smoothing": bool(args.get("label_smooth")),
                "cosine_lr": cosine, "warmup_epochs": int(args.get("warmup_epochs") or 0),
                "synchronized_bn": bool(args.get("syncbn")), "random_shapes": not args.get("no_random_shape"),
                "no_wd_on_bias_bn": bool(args.get("no_wd")), "data_augmentation": augment}
    return {"mixup": bool(args.get("mixup")), "mixup_mode": args.get("mixup_mode") if args.get("mixup") else None,
            "label_smoothing": float(args.get("label_smooth") or 0.0), "cosine_lr": cosine,
            "warmup_iters": max(int(args.get("lr_warmup") or 0), 0),
            "synchronized_bn": args.get("norm_layer") == "syncbn"}


def parameter_count(params_path: str) -> Dict[str, int]:
    """Values stored in a ``.params`` file: all of them, and those that are not BatchNorm statistics."""
    saved = mx.nd.load(params_path)
    total = sum(int(np.prod(v.shape)) for v in saved.values())
    stats = sum(int(np.prod(v.shape)) for k, v in saved.items() if k.endswith(("running_mean", "running_var")))
    return {"total": total, "excluding_bn_statistics": total - stats}


def machine_info() -> Dict[str, Any]:
    """CPU model, core count, thread setting and load average of the exporting machine."""
    cpu = platform.processor() or None
    try:
        with open("/proc/cpuinfo", "r", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "load_average_1_5_15": load, "platform": platform.platform(), "mxnet": mx.__version__}


def measure_inference(model: RunModel, runs: int = 10, warmup: int = 2) -> Dict[str, Any]:
    """Median network time per image (batch 1, at the model's inference input size), in milliseconds.

    Preprocessing and drawing are not included. ``runs`` timed forwards follow ``warmup`` untimed
    ones (graph construction, memory allocation).
    """
    x = mx.nd.array(model.example_input(1), ctx=model.ctx)
    def run() -> None:
        for out in model.net(x):
            out.wait_to_read()

    for _ in range(max(warmup, 1)):
        run()
    times: List[float] = []
    for _ in range(max(runs, 1)):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000.0)
    return {"ms_per_image_median": round(statistics.median(times), 3), "ms_min": round(min(times), 3),
            "runs": len(times), "batch_size": 1, "input_shape": list(x.shape), "context": str(model.ctx),
            "machine": machine_info()}


def package_info() -> Dict[str, Any]:
    """gluon_bof version, and the git commit of its checkout (``dirty`` when files are modified)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    commit, dirty = None, None
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=20, check=True).stdout.strip() or None
        status = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no", "--",
                                 "gluon_bof"], capture_output=True, text=True, timeout=20, check=True).stdout
        dirty = bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return {"gluon_bof": __version__, "git_commit": commit, "git_dirty": dirty}


def evaluation_of(results_path: Optional[str]) -> Dict[str, Any]:
    """mAP, protocol, dataset, split and epoch from a results file (``map`` null when there is none)."""
    if not results_path:
        return {"map": None, "reason": "no results file for these weights; pass --results FILE"}
    with open(results_path, "r", encoding="utf-8") as f:
        res = json.load(f)
    return {"map": res.get("map"), "protocol": res.get("protocol"), "iou_thresh": res.get("iou_thresh"),
            "dataset": res.get("dataset"), "split": res.get("split"), "epoch": res.get("epoch"),
            "num_images": res.get("num_images"), "metrics": res.get("metrics") or {},
            "results_file": os.path.basename(results_path)}


def build_card(model: RunModel, architecture: Mapping[str, Any], exports: Mapping[str, Any],
               files: Sequence[str], results_path: Optional[str], timing: Optional[Mapping[str, Any]],
               source_params: str, normalize_in_graph: bool = False) -> Dict[str, Any]:
    """The card as a JSON-ready dict; ``files`` are the exported files to list with their SHA-1.

    ``input`` describes what the symbol/ONNX graphs take: with ``normalize_in_graph`` resized RGB
    0-255 NHWC, else normalised NCHW (always the case for the ``.params`` files).
    """
    args = model.args
    meta = (model.manifest or {}).get("meta", {})
    inputs: Dict[str, Any] = {"layout": "NHWC raw RGB 0-255" if normalize_in_graph else "NCHW normalized RGB",
                              "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                              "normalize_in_graph": bool(normalize_in_graph)}
    if model.kind == "yolo3":
        inputs.update({"resize": "square, aspect ratio not kept (GluonCV's automatic interpolation, 9)",
                       "data_shape": model.data_shape})
    else:
        inputs.update({"resize": "short side to `short`, long side at most `max_size`, bilinear",
                       "short": model.short, "max_size": model.max_size})
    return {
        "format": CARD_FORMAT, "version": 1,
        "model_name": model.name, "detector": model.kind, "architecture": dict(architecture),
        "classes": list(model.classes), "num_classes": len(model.classes), "input": inputs,
        "evaluation": evaluation_of(results_path),
        "training": {"command": training_command(model.kind, args), "arguments": args or None,
                     "freebies": freebies_of(model.kind, args), "epochs_done": meta.get("epoch"),
                     "best_map_during_training": meta.get("best_map"), "versions": meta.get("versions"),
                     "source_params": os.path.abspath(source_params),
                     "manifest": os.path.abspath(model.manifest_path) if model.manifest_path else None},
        "package": package_info(), "parameters": parameter_count(source_params),
        "inference": dict(timing) if timing else None,
        "exports": dict(exports),
        "files": [file_record(p) for p in files],
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "%.4g" % value
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "-" if value is None else str(value)


def render_markdown(card: Mapping[str, Any]) -> str:
    """A human-readable version of the card (Markdown)."""
    ev, tr, inf, arch = card["evaluation"], card["training"], card.get("inference") or {}, card["architecture"]
    if ev.get("map") is None:
        score = "unknown: %s" % ev.get("reason", "no results")
    else:
        score = "%.4f %s on %s / %s (epoch %s, %s images)" % (ev["map"], ev.get("protocol"), ev.get("dataset"),
                                                               ev.get("split"), ev.get("epoch"), ev.get("num_images"))
    machine = inf.get("machine") or {}
    timing = ("%.1f ms per image (median of %d, batch 1, input %s, %s, %s cores, OMP_NUM_THREADS=%s, load %s)" % (
        inf["ms_per_image_median"], inf["runs"], "x".join(str(v) for v in inf["input_shape"]), machine.get("cpu"),
        machine.get("cpu_count"), machine.get("omp_num_threads"),
        ", ".join("%.2f" % v for v in machine.get("load_average_1_5_15") or [])) if inf else "not measured")
    lines = ["# Model card: %s" % card["model_name"], "",
             "| | |", "|---|---|",
             "| detector | %s |" % card["detector"],
             "| architecture | %s |" % _cell(arch.get("description")),
             "| GluonCV | %s |" % _cell(arch.get("gluoncv")),
             "| classes (%d) | %s |" % (card["num_classes"], ", ".join(card["classes"])),
             "| input | %s |" % ", ".join("%s=%s" % (k, _cell(v)) for k, v in card["input"].items()),
             "| mAP | %s |" % score,
             "| parameters | %s values (%s without BN statistics) |" % (
                 "{:,}".format(card["parameters"]["total"]), "{:,}".format(card["parameters"]["excluding_bn_statistics"])),
             "| inference | %s |" % timing,
             "| freebies | %s |" % (", ".join("%s=%s" % (k, _cell(v)) for k, v in (tr["freebies"] or {}).items())
                                    or "unknown (no training arguments)"),
             "| package | gluon_bof %s, commit %s%s |" % (card["package"]["gluon_bof"], card["package"]["git_commit"],
                                                          " (modified files)" if card["package"]["git_dirty"] else ""),
             "", "## Training command", "", "```", tr["command"] or "unknown (no manifest beside the weights)", "```",
             "", "## Exports", ""]
    for fmt, info in card["exports"].items():
        status = "ok" if info.get("ok") else "FAILED: %s" % info.get("error")
        lines.append("* **%s**: %s" % (fmt, status))
        for note in info.get("notes", []):
            lines.append("  * %s" % note)
    lines += ["", "## Files", "", "| file | bytes | SHA-1 |", "|---|---:|---|"]
    lines += ["| %s | %s | `%s` |" % (f["file"], "{:,}".format(f["bytes"]), f["sha1"]) for f in card["files"]]
    return "\n".join(lines) + "\n"


def write_card(out_dir: str, card: Mapping[str, Any]) -> List[str]:
    """Write ``model_card.json`` and ``model_card.md`` into ``out_dir``; return their paths."""
    json_path, md_path = os.path.join(out_dir, CARD_FILE), os.path.join(out_dir, CARD_MD)
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(render_markdown(card))
    return [json_path, md_path]
