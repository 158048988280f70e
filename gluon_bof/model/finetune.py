"""New classes for a trained detector: GluonCV's ``net.reset_class(classes, reuse_weights)``.

Fine-tuning a zoo detector on one's own classes replaces the class-dependent output layers and
keeps everything else. With ``reuse_weights`` the rows of classes that exist in both lists are
copied from the old layers, exactly as GluonCV 0.10.5 does:

* YOLOv3: each head's ``prediction`` conv becomes ``A * (5 + K_new)`` channels; for each reused
  pair ``new <- old`` and each anchor, the class row and the anchor's 5 box/objectness rows are
  copied (weight and bias). Without reuse the whole conv is new.
* Faster R-CNN: ``class_predictor`` (``K_new + 1`` rows, background row 0) and ``box_predictor``
  (``4 K_new`` rows); with reuse, rows ``new + 1 <- old + 1`` and the background row, and box rows
  ``4 new .. 4 new + 3 <- 4 old .. 4 old + 3``.

New layers keep the old layers' parameter names (files stay interchangeable with GluonCV's) and
are initialized on the old layers' contexts (YOLOv3: MXNet's default uniform; Faster R-CNN: normal
with std 0.01 / 0.001, as GluonCV).
"""
import warnings
from typing import Dict, List, Mapping, Optional, Sequence, Union

import mxnet as mx
from mxnet import gluon
from mxnet.gluon import nn

ReuseSpec = Union[None, Mapping, Sequence[str]]


def reuse_map(new_classes: Sequence[str], old_classes: Sequence[str], reuse_weights: ReuseSpec) -> Dict[int, int]:
    """``{new index: old index}`` from GluonCV's ``reuse_weights`` forms.

    A dict maps new to old by index or name (mixed allowed); a list of names reuses each name found
    in both lists (names missing from either are skipped with a warning, as GluonCV); None or empty:
    no reuse. An unknown name or an out-of-range index in a dict is a ValueError naming it.
    """
    new_classes, old_classes = list(new_classes), list(old_classes)
    if not reuse_weights:
        return {}
    if isinstance(reuse_weights, Mapping):
        mapping = {}
        for key, value in reuse_weights.items():
            mapping[_index(key, new_classes, "new")] = _index(value, old_classes, "old")
        return mapping
    if isinstance(reuse_weights, str):
        raise ValueError("reuse_weights: give a list of class names or a dict, not the string %r" % reuse_weights)
    mapping = {}
    for name in reuse_weights:
        if name in new_classes and name in old_classes:
            mapping[new_classes.index(name)] = old_classes.index(name)
        else:
            warnings.warn("reuse_weights: %r is not in both the old classes %s and the new classes %s"
                          % (name, old_classes, new_classes))
    return mapping


def _index(value: Union[int, str], classes: List[str], which: str) -> int:
    if isinstance(value, str):
        if value not in classes:
            raise ValueError("reuse_weights: %r is not in the %s class names %s" % (value, which, classes))
        return classes.index(value)
    if not 0 <= int(value) < len(classes):
        raise ValueError("reuse_weights: index %r is out of range for the %d %s classes" % (value, len(classes), which))
    return int(value)


def _contexts(block: gluon.Block) -> List[mx.Context]:
    return list(block.collect_params().values())[0].list_ctx()


def _copy_rows(old: gluon.Block, new: gluon.Block, rows: Sequence[tuple]) -> None:
    """For each parameter pair (weight, bias), ``new[dst:dst+n] = old[src:src+n]`` for ``(dst, src, n)``."""
    for old_p, new_p in zip(old.collect_params().values(), new.collect_params().values()):
        old_data, new_data = old_p.data(), new_p.data().copy()
        for dst, src, n in rows:
            new_data[dst:dst + n] = old_data[src:src + n]
        new_p.set_data(new_data)


def reset_yolo3_class(net: gluon.HybridBlock, classes: Sequence[str], reuse_weights: ReuseSpec = None) -> Dict[int, int]:
    """GluonCV's ``YOLOV3.reset_class`` on our YOLOv3; returns the ``{new: old}`` rows reused."""
    old_classes = list(net.classes)
    mapping = reuse_map(classes, old_classes, reuse_weights)
    net._clear_cached_op()
    k_new, k_old = len(classes), len(old_classes)
    for output in net.yolo_outputs:
        output._clear_cached_op()
        old = output.prediction
        n = output._num_anchors
        in_channels = old.weight.shape[1]
        new = nn.Conv2D(n * (5 + k_new), kernel_size=1, in_channels=in_channels, prefix=old.prefix)
        new.initialize(ctx=_contexts(old))
        if mapping:
            rows = []
            for k, v in mapping.items():
                for a in range(n):
                    rows.append((5 + k + a * (5 + k_new), 5 + v + a * (5 + k_old), 1))
                    rows.append((a * (5 + k_new), a * (5 + k_old), 5))
            _copy_rows(old, new, rows)
        output.prediction = new
        output._num_class = k_new
    net._classes = tuple(classes)
    return mapping


def reset_faster_rcnn_class(net: gluon.HybridBlock, classes: Sequence[str],
                            reuse_weights: ReuseSpec = None) -> Dict[int, int]:
    """GluonCV's ``FasterRCNN.reset_class`` on our Faster R-CNN; returns the ``{new: old}`` rows reused."""
    from .rcnn.rcnn_targets import RCNNTargetEncoder
    old_classes = list(net.classes)
    mapping = reuse_map(classes, old_classes, reuse_weights)
    net._clear_cached_op()
    k_new = len(classes)
    old_cls, old_box = net.class_predictor, net.box_predictor
    ctx = _contexts(old_cls)
    in_units = old_cls.weight.shape[1]
    new_cls = nn.Dense(k_new + 1, weight_initializer=mx.init.Normal(0.01), in_units=in_units, prefix=old_cls.prefix)
    new_box = nn.Dense(k_new * 4, weight_initializer=mx.init.Normal(0.001), in_units=in_units,
                       prefix=old_box.prefix)
    new_cls.initialize(ctx=ctx)
    new_box.initialize(ctx=ctx)
    if mapping:
        _copy_rows(old_cls, new_cls, [(0, 0, 1)] + [(k + 1, v + 1, 1) for k, v in mapping.items()])
        _copy_rows(old_box, new_box, [(4 * k, 4 * v, 4) for k, v in mapping.items()])
    net.class_predictor, net.box_predictor = new_cls, new_box
    net.classes, net.num_class = list(classes), k_new
    net.target_encoder = RCNNTargetEncoder(k_new, net.sampler.max_pos, net._batch_size)
    return mapping


def reset_class(net: gluon.HybridBlock, classes: Sequence[str], reuse_weights: ReuseSpec = None) -> Dict[int, int]:
    """Give ``net`` (our YOLOv3 or Faster R-CNN, initialized) the class list ``classes``; see module docstring."""
    classes = [str(c) for c in classes]
    if not classes or len(set(classes)) != len(classes):
        raise ValueError("reset_class: classes must be a non-empty list of distinct names, got %r" % (classes,))
    if hasattr(net, "yolo_outputs"):
        return reset_yolo3_class(net, classes, reuse_weights)
    if hasattr(net, "class_predictor") and hasattr(net, "box_predictor"):
        return reset_faster_rcnn_class(net, classes, reuse_weights)
    raise TypeError("reset_class: %s is neither a YOLOv3 nor a Faster R-CNN of gluon_bof" % type(net).__name__)


def infer_num_classes(arrays: Mapping[str, mx.nd.NDArray], num_anchors: int = 3) -> Optional[int]:
    """Classes of a detector ``.params`` file from its output shapes (None if it holds neither head)."""
    names = {k.split(":", 1)[-1]: v for k, v in arrays.items()}
    if "class_predictor.weight" in names:
        return int(names["class_predictor.weight"].shape[0]) - 1
    if "yolo_outputs.0.prediction.weight" in names:
        return int(names["yolo_outputs.0.prediction.weight"].shape[0]) // num_anchors - 5
    return None
