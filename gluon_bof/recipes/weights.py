"""Where a training run's first weights come from: ImageNet backbones, a zoo detector to fine-tune, or
random initialisation; the flags, their checks and the log lines that say which.

* ``--pretrained-base [PATH]`` (default on for voc, coco and custom when GluonCV publishes the
  backbone, as GluonCV's scripts; off for the synthetic shapes demo) loads GluonCV's ImageNet file
  of the backbone from the model store (``$MXNET_HOME/models`` or ``~/.mxnet/models``, SHA-1
  checked) or from PATH. ``--no-pretrained-base`` starts from random weights and says so.
* ``--finetune-from NAME_OR_PARAMS`` loads a whole detector (a GluonCV zoo name found in the store,
  or a ``.params`` file, ours or GluonCV's) and gives it the dataset's classes with GluonCV's
  ``reset_class`` (``--reuse-weights``: rows of classes present in both lists by default).

A missing or bad file stops the run before any training work with a message that says what was
searched and how to obtain the file.
"""
import argparse
import logging
import os
from collections import OrderedDict
from typing import Any, List, NamedTuple, Optional, Sequence

import mxnet as mx
from mxnet import gluon

from ..data.class_names import COCO_CLASSES, VOC_CLASSES
from ..model.finetune import infer_num_classes, reset_class
from ..model.pretrained import load_pretrained_base, resolve_backbone_file
from ..model.store import MODEL_SHA1, PretrainedFileError, check_explicit_file, find_model_file, STORE_FILE_PATTERN

_log = logging.getLogger("gluon_bof.recipes")

REAL_DATASETS = ("voc", "coco", "custom")
_KNOWN_CLASS_LISTS = {20: ("VOC", VOC_CLASSES), 80: ("COCO", COCO_CLASSES)}


class FinetuneSource(NamedTuple):
    """A detector file to fine-tune from: its path, its classes and the ``reuse_weights`` spec."""
    path: str
    classes: List[str]
    reuse: Any


def add_weight_arguments(group: argparse._ArgumentGroup) -> None:
    """``--pretrained-base [PATH]``, ``--no-pretrained-base``, ``--finetune-from``, ``--finetune-classes``,
    ``--reuse-weights``."""
    group.add_argument("--pretrained-base", nargs="?", const=True, default=None, metavar="PATH",
                       help="start the backbone from GluonCV's ImageNet weights: from $MXNET_HOME/models or "
                            "~/.mxnet/models (<name>-<sha1[:8]>.params, SHA-1 checked, never downloaded), or "
                            "from PATH (default: on for voc, coco and custom, off for shapes)")
    group.add_argument("--no-pretrained-base", dest="pretrained_base", action="store_const", const=False,
                       help="random initialisation of the backbone (the log says so)")
    group.add_argument("--finetune-from", default=None, metavar="NAME_OR_PARAMS",
                       help="fine-tune a trained detector on this dataset's classes: a GluonCV zoo name "
                            "(e.g. yolo3_darknet53_voc, found in the model store by its hash) or a .params "
                            "file (ours or GluonCV's)")
    group.add_argument("--finetune-classes", default=None,
                       help="comma-separated classes of a --finetune-from .params file (default: VOC for "
                            "20 classes, COCO for 80)")
    group.add_argument("--reuse-weights", default="matching", metavar="matching|none|NEW:OLD,...",
                       help="--finetune-from: output rows kept from the old classes: 'matching' (classes "
                            "with the same name), 'none', or pairs new:old of names or indices")


def fill_pretrained_default(args: argparse.Namespace, store_name: Optional[str]) -> None:
    """``--pretrained-base`` default: on for voc/coco/custom when ``store_name`` has published weights
    and no ``--finetune-from`` is given; off otherwise."""
    if not hasattr(args, "pretrained_base") or args.pretrained_base is not None:
        return
    args.pretrained_base = bool(store_name in MODEL_SHA1 and getattr(args, "dataset", "") in REAL_DATASETS
                                and not getattr(args, "finetune_from", None))


def check_weight_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace,
                           store_name: Optional[str]) -> None:
    """Usage errors (exit 2) of the weight flags that need no file reading."""
    if not hasattr(args, "pretrained_base"):
        return
    spec = args.pretrained_base
    if args.finetune_from and isinstance(spec, str):
        parser.error("--pretrained-base %s and --finetune-from %s: the fine-tuned detector brings its own "
                     "backbone; give one of them" % (spec, args.finetune_from))
    if spec is True and store_name not in MODEL_SHA1:
        parser.error("--pretrained-base: GluonCV publishes no ImageNet weights for this backbone (%s); pass a "
                     "file with --pretrained-base PATH or use --no-pretrained-base" % (store_name or "none"))
    if isinstance(spec, str) and not os.path.isfile(spec):
        parser.error("--pretrained-base %s: no such file" % spec)
    if args.finetune_from and not os.path.isfile(args.finetune_from) and args.finetune_from not in MODEL_SHA1:
        parser.error("--finetune-from %s: neither an existing .params file nor a GluonCV zoo name with a "
                     "published hash (%s)" % (args.finetune_from, ", ".join(
                         n for n in sorted(MODEL_SHA1) if n.startswith(("yolo3", "faster_rcnn")))))
    try:
        parse_reuse(args.reuse_weights)
    except ValueError as err:
        parser.error(str(err))


def parse_reuse(text: str) -> Any:
    """``'matching'`` -> ``'matching'``; ``'none'`` -> None; ``'dog:3,cat:cat'`` -> ``{'dog': 3, 'cat': 'cat'}``."""
    text = (text or "none").strip()
    if text in ("matching", "none"):
        return None if text == "none" else text
    mapping: "OrderedDict[Any, Any]" = OrderedDict()
    for pair in text.split(","):
        parts = pair.split(":")
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise ValueError("--reuse-weights %r: expected 'matching', 'none' or NEW:OLD pairs separated by "
                             "commas (names or indices), e.g. person:person,car:6" % text)
        new, old = (int(p) if p.strip().isdigit() else p.strip() for p in parts)
        mapping[new] = old
    return mapping


def _fail(err: Exception) -> SystemExit:
    return SystemExit("error: %s" % err)


def check_weight_files(args: argparse.Namespace, store_name: Optional[str], model_name: str) -> None:
    """Find and SHA-1-check the files the weight flags name, before any training work; a missing or
    mismatching file ends the run (SystemExit) with what was searched and how to obtain it."""
    if getattr(args, "resume", ""):
        return
    if getattr(args, "finetune_from", None):
        finetune_source(args, model_name)
    elif getattr(args, "pretrained_base", False):
        try:
            resolve_backbone_file(store_name, args.pretrained_base, "--pretrained-base")
        except PretrainedFileError as err:
            raise _fail(err) from None


def finetune_source(args: argparse.Namespace, model_name: str) -> Optional[FinetuneSource]:
    """The ``--finetune-from`` file, its classes and the reuse spec (None without the flag)."""
    spec = getattr(args, "finetune_from", None)
    if not spec:
        return None
    try:
        if os.path.isfile(spec):
            match = STORE_FILE_PATTERN.match(os.path.basename(spec))
            zoo_name = match.group("name") if match else None
            check_explicit_file(spec, zoo_name or "", "--finetune-from")
            path = spec
        else:
            zoo_name = spec
            path = find_model_file(spec, "--finetune-from")
    except PretrainedFileError as err:
        raise _fail(err) from None
    if zoo_name in MODEL_SHA1 and zoo_name.rsplit("_", 1)[0] != model_name.rsplit("_", 1)[0]:
        raise SystemExit("error: --finetune-from %s is a %s detector but the flags build %s; choose the "
                         "matching --network" % (spec, zoo_name.rsplit("_", 1)[0], model_name))
    return FinetuneSource(path, _old_classes(args, path, zoo_name), parse_reuse(args.reuse_weights))


def _old_classes(args: argparse.Namespace, path: str, zoo_name: Optional[str]) -> List[str]:
    if args.finetune_classes:
        classes = [c.strip() for c in args.finetune_classes.split(",") if c.strip()]
    elif zoo_name and zoo_name in MODEL_SHA1:
        classes = list(COCO_CLASSES if zoo_name.endswith("_coco") else VOC_CLASSES)
    else:
        classes = []
    try:
        count = infer_num_classes(mx.nd.load(path))
    except mx.MXNetError as err:
        raise SystemExit("error: --finetune-from %s is not a readable .params file (truncated?): %s"
                         % (path, str(err).strip().splitlines()[0])) from None
    if count is None:
        raise SystemExit("error: --finetune-from %s holds no YOLOv3 or Faster R-CNN output layer" % path)
    if not classes:
        if count not in _KNOWN_CLASS_LISTS:
            raise SystemExit("error: --finetune-from %s was trained on %d classes; name them with "
                             "--finetune-classes a,b,c (in training order)" % (path, count))
        classes = list(_KNOWN_CLASS_LISTS[count][1])
    if len(classes) != count:
        raise SystemExit("error: --finetune-from %s has %d classes but %d old classes were given (%s)"
                         % (path, count, len(classes), ", ".join(classes)))
    return classes


def load_finetune(net: gluon.HybridBlock, source: FinetuneSource, classes: Sequence[str],
                  ctxs: Sequence[mx.Context]) -> None:
    """Load ``source`` into ``net`` (built with the old classes) and reset it to ``classes``."""
    try:
        net.load_parameters(source.path, ctx=list(ctxs))
    except (AssertionError, ValueError, mx.MXNetError) as err:
        raise SystemExit("error: --finetune-from %s does not fit %s with %d classes: %s" % (
            source.path, type(net).__name__, len(source.classes), str(err).strip().splitlines()[0])) from None
    reuse = [c for c in classes if c in source.classes] if source.reuse == "matching" else source.reuse
    mapping = reset_class(net, classes, reuse)
    kept = ", ".join("%s<-%s" % (classes[k], source.classes[v]) for k, v in sorted(mapping.items())) or "none"
    _log.info("initial weights: fine-tuning %s (%d classes) on %d classes; output rows reused: %s",
              source.path, len(source.classes), len(classes), kept)


def load_backbone(net: gluon.HybridBlock, args: argparse.Namespace) -> None:
    """Load the ``--pretrained-base`` weights into ``net``'s backbone, or log the random start."""
    spec = getattr(args, "pretrained_base", False)
    name = getattr(net, "backbone_name", "the backbone")
    if not spec:
        _log.info("initial weights: %s starts from random initialisation (--no-pretrained-base%s); the "
                  "paper's tables start from ImageNet weights", name,
                  "" if getattr(args, "dataset", "") in REAL_DATASETS else ", the default for this dataset")
        return
    try:
        info = load_pretrained_base(net, spec, "--pretrained-base")
    except PretrainedFileError as err:
        raise _fail(err) from None
    _log.info("initial weights: %s ImageNet backbone from %s (SHA-1 %s, %d arrays)", info["name"], info["path"],
              info["sha1"], info["num_params"])


def frozen_summary(net: gluon.Block) -> List[str]:
    """Structural groups of learnable parameters that are not trained (``grad_req='null'``)."""
    groups: "OrderedDict[str, int]" = OrderedDict()
    bn = 0
    for key, param in net._collect_params_with_prefix().items():
        if param.grad_req != "null" or key.endswith(("running_mean", "running_var")) or "anchor" in key \
                or "offset" in key:
            continue
        if key.endswith(("gamma", "beta")):
            bn += 1
            continue
        group = ".".join(key.split(".")[:2])
        groups[group] = groups.get(group, 0) + 1
    lines = ["%s (%d)" % (g, n) for g, n in groups.items()]
    if bn:
        lines.append("BatchNorm gamma/beta (%d)" % bn)
    return lines


def log_frozen(net: gluon.Block) -> None:
    """Log what is not trained, and whether BatchNorm statistics are frozen."""
    frozen = frozen_summary(net)
    stats = any(getattr(b, "_kwargs", {}).get("use_global_stats") for b in _blocks(net))
    _log.info("frozen (not trained): %s; BatchNorm statistics %s", "; ".join(frozen) if frozen else "nothing",
              "frozen (use_global_stats)" if stats else "updated in training")


def _blocks(block: gluon.Block):
    yield block
    for child in block._children.values():
        yield from _blocks(child)
