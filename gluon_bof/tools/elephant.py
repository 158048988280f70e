"""The "elephant in the room" test (the paper's Table 2 and Figure 5): slide an out-of-context object
across scenes and measure, per model, how often it is found and how many scene objects vanish.

::

    python -m gluon_bof.tools.elephant --params runs/baseline/best.params --params runs/mixup/best.params \\
        --label baseline --label mixup --out elephant
    python -m gluon_bof.tools.elephant --params A.params --params B.params --object elephant.png \\
        --mask elephant_mask.png --object-class elephant --scenes rooms/ --scales 0.5,0.75 --grid 6x3

Without ``--object`` the object is a circle cut from a Shapes validation image, and without
``--scenes`` the scenes are Shapes validation images (:mod:`.elephant_frames`). The weights are
loaded by :mod:`.run_model` (a run's checkpoint, a bare or GluonCV ``.params`` file with
``--network``, or a symbol export). Every frame is run through every model; the statistics are
those of :mod:`gluon_bof.metrics.elephant`. ``--out`` receives ``elephant.md`` (the table),
``elephant.json`` (settings, per-model totals, per-frame outcomes), ``contact_sheet.jpg`` (evenly
spaced frames, one row per model) and ``elephant.gif`` (the first scene at the scale closest to 1,
every grid position, the models side by side).
Exit status: 0 on success, 2 on bad arguments or inputs (one line naming the file and the rule).
"""
import argparse
import json
import math
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..data.validation import DatasetError
from ..metrics.elephant import frame_outcome, summarize
from .elephant_frames import (ElephantInputError, PastedObject, Scene, check_fits, default_object, default_scenes,
                              load_object, load_scenes, make_frames, scale_object)
from .elephant_pictures import contact_sheet, panel, write_gif
from .run_model import Detections, ModelFileError, RunModel, load_run_model

__all__ = ["parse_scales", "parse_grid", "model_labels", "object_class_ids", "run_elephant", "table_markdown",
           "write_outputs", "main"]

ANY_CLASS = "any"
TABLE_FILE, JSON_FILE, SHEET_FILE, GIF_FILE = "elephant.md", "elephant.json", "contact_sheet.jpg", "elephant.gif"


def parse_scales(text: str) -> List[float]:
    """``'0.75,1,1.25'`` -> ``[0.75, 1.0, 1.25]``: factors of the object's own size, each > 0."""
    try:
        scales = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError("--scales %r: expected comma-separated numbers such as 0.75,1,1.25" % text) from None
    if not scales or any(not (s > 0 and math.isfinite(s)) for s in scales):
        raise ValueError("--scales %r: need at least one positive factor" % text)
    return scales


def parse_grid(text: str) -> Tuple[int, int]:
    """``'5x4'`` -> ``(5 columns, 4 rows)`` of object positions."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError("--grid %r: expected COLUMNSxROWS with positive integers, e.g. 5x4" % text)
    return int(parts[0]), int(parts[1])


def model_labels(params: Sequence[str], labels: Optional[Sequence[str]]) -> List[str]:
    """The given ``--label`` names, else ``<folder>/<stem>`` of each weights file (made unique)."""
    if labels:
        if len(labels) != len(params):
            raise ValueError("--label given %d times for %d --params" % (len(labels), len(params)))
        if len(set(labels)) != len(labels):
            raise ValueError("--label: the names must differ (%s)" % ", ".join(labels))
        return list(labels)
    names: List[str] = []
    for p in params:
        stem = os.path.splitext(os.path.basename(p))[0]
        name = "%s/%s" % (os.path.basename(os.path.dirname(os.path.abspath(p))), stem)
        names.append(name if name not in names else "%s#%d" % (name, len(names) + 1))
    return names


def object_class_ids(models: Sequence[RunModel], labels: Sequence[str], name: Optional[str]) -> List[Optional[int]]:
    """Each model's class id of ``name`` (``None`` for every model when no class is asked for)."""
    if name is None or name.lower() == ANY_CLASS:
        return [None] * len(models)
    ids = []
    for model, label in zip(models, labels):
        lower = [c.lower() for c in model.classes]
        if name.lower() not in lower:
            raise ValueError("--object-class %s: not a class of model %s (%s); pass --object-class %s to count "
                             "detections of any class" % (name, label, ", ".join(model.classes), ANY_CLASS))
        ids.append(lower.index(name.lower()))
    return ids


def _as_dict(d: Detections) -> Dict[str, np.ndarray]:
    return {"boxes": d.boxes, "ids": d.ids, "scores": d.scores}


def _caption(label: str, outcome: Dict[str, Any]) -> str:
    found = outcome["found_class"] if outcome["found_class"] is not None else outcome["found_any"]
    text = "found %.2f" % outcome["score"] if found and outcome["score"] is not None else "found" if found else "missed"
    return "%s: %s, %d/%d gone" % (label, text, outcome["disappeared"], outcome["scene_objects"])


def _picture_frames(total: int, sheet_frames: int, gif_scale: int, per_scale: int) -> Tuple[List[int], List[int]]:
    """Indices of the contact sheet's frames (evenly spaced) and the GIF's (scene 0, one scale)."""
    sheet = np.round(np.linspace(0, total - 1, min(sheet_frames, total))).astype(int) if sheet_frames > 0 else []
    return sorted(set(int(i) for i in sheet)), list(range(gif_scale * per_scale, (gif_scale + 1) * per_scale))


def run_elephant(models: Sequence[RunModel], labels: Sequence[str], obj: PastedObject, scenes: Sequence[Scene],
                 scales: Sequence[float], grid: Tuple[int, int], thresh: float = 0.5, iou_thresh: float = 0.5,
                 occlusion_limit: float = 0.5, object_class: Optional[str] = None, batch_size: int = 8,
                 sheet_frames: int = 6, picture_side: int = 256, progress: bool = False) -> Dict[str, Any]:
    """Paste ``obj`` at every scale and grid position of every scene and run every model on each frame.

    Returns ``{'settings', 'models' (label, weights, totals of metrics.elephant.summarize), 'frames'
    (per-frame position, box and per-model outcome), 'sheet' / 'gif' (lists of panel rows, one per
    model, for the pictures)}``.
    """
    if batch_size < 1:
        raise ValueError("--batch-size %d: must be at least 1" % batch_size)
    class_ids = object_class_ids(models, labels, object_class)
    objects = [(s, scale_object(obj, s)) for s in scales]
    check_fits(scenes, objects)
    columns, rows = grid
    per_scale = columns * rows
    total = per_scale * len(scales) * len(scenes)
    gif_scale = int(np.argmin([abs(math.log(s)) for s in scales]))
    sheet_idx, gif_idx = _picture_frames(total, sheet_frames, gif_scale, per_scale)
    clean = [[_as_dict(d) for d in model.detect([s.image for s in scenes])] for model in models]
    outcomes: List[List[Dict[str, Any]]] = [[] for _ in models]
    sheet: List[List[np.ndarray]] = [[] for _ in models]
    gif: List[List[np.ndarray]] = [[] for _ in models]
    frames_json: List[Dict[str, Any]] = []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, unit="frame", desc="elephant")
    chunk: List[Any] = []
    for frame in make_frames(scenes, objects, columns, rows):
        chunk.append(frame)
        if len(chunk) < batch_size and frame.index < total - 1:
            continue
        records = [{"index": f.index, "scene": f.scene, "scale": f.scale, "column": f.column, "row": f.row,
                    "x": f.x, "y": f.y, "object_box": list(f.box), "outcomes": {}} for f in chunk]
        for m, model in enumerate(models):
            for f, dets, rec in zip(chunk, model.detect([f.image for f in chunk]), records):
                dets = _as_dict(dets)
                out = frame_outcome(clean[m][f.scene], dets, f.box, f.mask, thresh, iou_thresh, occlusion_limit,
                                    class_ids[m])
                outcomes[m].append(out)
                rec["outcomes"][labels[m]] = out
                for wanted, store in ((sheet_idx, sheet), (gif_idx, gif)):
                    if f.index in wanted:
                        store[m].append(panel(f.image, dets, f.box, model.classes, thresh, _caption(labels[m], out),
                                              picture_side))
        frames_json += records
        if bar is not None:
            bar.update(len(chunk))
        chunk = []
    if bar is not None:
        bar.close()
    settings = {"object": obj.name, "object_size": list(obj.size), "object_class": object_class,
                "scenes": [s.name for s in scenes], "scales": list(scales), "grid": [columns, rows],
                "frames": total, "thresh": thresh, "iou_thresh": iou_thresh, "occlusion_limit": occlusion_limit,
                "gif": {"scene": scenes[0].name, "scale": scales[gif_scale]}, "sheet_frames": sheet_idx}
    model_rows = [{"label": label, "weights": model.symbol_path or model.params_path, "model": model.name,
                   "object_class_id": cid, "clean_scene_objects": [int((c["scores"] >= thresh).sum()) for c in cl],
                   "summary": summarize(out)}
                  for label, model, cid, cl, out in zip(labels, models, class_ids, clean, outcomes)]
    return {"settings": settings, "models": model_rows, "frames": frames_json, "sheet": sheet, "gif": gif}


def _pct(value: Optional[float]) -> str:
    return "n/a" if value is None else "%.2f" % (100.0 * value)


def table_markdown(result: Dict[str, Any]) -> str:
    """The paper's Table 2 for these models: recall of the pasted object and disappeared scene objects."""
    s = result["settings"]
    cls = s["object_class"] if s["object_class"] and s["object_class"].lower() != ANY_CLASS else None
    head = ["model", "frames", "recall of the object, any class (%)"]
    if cls:
        head.append("recall as %s (%%)" % cls)
    head += ["scene objects", "disappeared", "disappeared (%)", "left out (covered > %g)" % s["occlusion_limit"],
             "mean score of the found object"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in result["models"]:
        t = m["summary"]
        row = [m["label"], str(t["frames"]), _pct(t["recall_any"])]
        if cls:
            row.append(_pct(t["recall_class"]))
        row += [str(t["scene_objects"]), str(t["disappeared"]), _pct(t["disappeared_rate"]), str(t["occluded"]),
                "n/a" if t["mean_object_score"] is None else "%.3f" % t["mean_object_score"]]
        lines.append("| " + " | ".join(row) + " |")
    note = ("\n%d frames: %d scenes x %d scales (%s) x %dx%d positions; score >= %g, IoU >= %g. Object: %s.\n" % (
        s["frames"], len(s["scenes"]), len(s["scales"]), ",".join("%g" % v for v in s["scales"]), s["grid"][0],
        s["grid"][1], s["thresh"], s["iou_thresh"], s["object"]))
    return "\n".join(lines) + "\n" + note


def write_outputs(result: Dict[str, Any], out_dir: str, gif_ms: int = 250) -> Dict[str, str]:
    """Write the table, the JSON, the contact sheet and the GIF into ``out_dir``; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {"table": os.path.join(out_dir, TABLE_FILE), "json": os.path.join(out_dir, JSON_FILE)}
    with open(paths["table"], "w", encoding="utf-8") as f:
        f.write(table_markdown(result))
    with open(paths["json"], "w", encoding="utf-8") as f:
        json.dump({k: result[k] for k in ("settings", "models", "frames")}, f, indent=1)
    if result["sheet"] and result["sheet"][0]:
        paths["sheet"] = contact_sheet(result["sheet"], os.path.join(out_dir, SHEET_FILE))
    if result["gif"] and result["gif"][0]:
        frames = [np.hstack(row) for row in zip(*result["gif"])]
        paths["gif"] = write_gif(frames, os.path.join(out_dir, GIF_FILE), gif_ms)
    return paths


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gluon_bof.tools.elephant", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--params", action="append", required=True, help="weights of a model (repeat for each model): "
                   "RUN/<tag>.params, a bare/GluonCV .params file, or an exported <name>-symbol.json")
    p.add_argument("--label", action="append", default=None, help="name of each model in the table (repeat, in "
                   "the order of --params); default <folder>/<stem> of the weights")
    p.add_argument("--network", default=None, help="model name or training --network, for weights without a manifest")
    p.add_argument("--dataset", default=None, help="with a training --network: voc, coco, shapes or custom")
    p.add_argument("--classes", default=None, help="comma-separated class names (custom datasets)")
    p.add_argument("--data-shape", type=int, default=None, help="YOLOv3 input side (default: the run's, else 416)")
    p.add_argument("--object", default=None, help="object image (RGB with --mask, or RGBA); default: a Shapes circle")
    p.add_argument("--mask", default=None, help="mask image of the object's size (white = object)")
    p.add_argument("--object-class", default=None, help="count only detections of this class as finding the "
                   "object ('any': any class); default: the Shapes circle's class for the default object, else any")
    p.add_argument("--scenes", nargs="+", default=None, help="scene images and folders; "
                   "default: Shapes validation images")
    p.add_argument("--num-scenes", type=int, default=8, help="number of default Shapes scenes")
    p.add_argument("--scales", default="0.75,1,1.25", help="object size factors (1 = its own pixels)")
    p.add_argument("--grid", default="5x4", help="COLUMNSxROWS positions spanning each scene")
    p.add_argument("--thresh", type=float, default=0.5, help="minimum score of a detection (scene objects, the "
                   "pasted object, and the detections that keep a scene object alive)")
    p.add_argument("--iou-thresh", type=float, default=0.5, help="IoU of a match")
    p.add_argument("--occlusion-limit", type=float, default=0.5, help="scene objects covered by the pasted pixels "
                   "for more than this fraction of their box are left out")
    p.add_argument("--out", default="elephant", help="output folder")
    p.add_argument("--sheet-frames", type=int, default=6, help="frames on the contact sheet (0: none)")
    p.add_argument("--no-gif", action="store_true", help="no animated GIF")
    p.add_argument("--gif-ms", type=int, default=250, help="GIF frame duration in milliseconds")
    p.add_argument("--batch-size", type=int, default=8, help="frames per forward pass")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    for flag in ("thresh", "iou_thresh", "occlusion_limit"):
        if not 0.0 <= getattr(args, flag) <= 1.0:
            p.error("--%s %r: must be in [0, 1]" % (flag.replace("_", "-"), getattr(args, flag)))
    if args.mask and not args.object:
        p.error("--mask needs --object (the image the mask cuts out)")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        scales, grid = parse_scales(args.scales), parse_grid(args.grid)
        labels = model_labels(args.params, args.label)
        if args.object:
            obj, skip = load_object(args.object, args.mask, args.object_class), -1
        else:
            obj, skip = default_object()
        object_class = args.object_class or obj.class_name
        scenes = load_scenes(args.scenes) if args.scenes else default_scenes(args.num_scenes, skip)
        check_fits(scenes, [(s, scale_object(obj, s)) for s in scales])
        models = [load_run_model(p, args.network, args.dataset, args.classes, args.data_shape) for p in args.params]
        result = run_elephant(models, labels, obj, scenes, scales, grid, args.thresh, args.iou_thresh,
                              args.occlusion_limit, object_class, args.batch_size, args.sheet_frames,
                              progress=not args.no_progress)
        if args.no_gif:
            result["gif"] = []
        paths = write_outputs(result, args.out, args.gif_ms)
    except (ModelFileError, DatasetError, ElephantInputError, ValueError) as exc:
        print("elephant: error: %s" % exc, file=sys.stderr)
        return 2
    print(table_markdown(result))
    print("written: %s" % ", ".join(paths[k] for k in ("table", "json", "sheet", "gif") if k in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
