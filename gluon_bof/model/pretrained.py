"""ImageNet backbone weights (GluonCV's files) loaded into a detector's backbone.

A detector built by our zoo remembers which of its parameters come from which backbone parameter
(:func:`attach_backbone`): ``net.backbone_name`` is the GluonCV model-store name of the ImageNet
classifier (``'darknet53'``, ``'mobilenet0.25'``, ``'resnet50_v1b'``...) and ``net.backbone_keys``
maps the detector's structural parameter names (``stages.1.3.body.0.0.weight``) to the names in that
classifier's ``.params`` file (``features.18.body.0.0.weight``). :func:`load_pretrained_base` then
copies the file's arrays into the detector, which gives the same backbone parameters as GluonCV's
``pretrained_base=True`` (which builds the classifier, loads the file and reuses its layers).

A file of another network (a missing key, a key of another layout or a shape that differs) and an
unreadable (truncated) file are :class:`~gluon_bof.model.store.PretrainedFileError` naming the file.
"""
import logging
from typing import Any, Dict, Optional, Union

import mxnet as mx
from mxnet import gluon

from .store import PretrainedFileError, check_explicit_file, file_sha1, find_model_file

_log = logging.getLogger("gluon_bof.model")

# Classifier parameters of the ImageNet files that detectors never use.
_CLASSIFIER_KEYS = ("output.weight", "output.bias", "fc.weight", "fc.bias")


def attach_backbone(net: gluon.Block, name: str, source: gluon.Block, prefix: str = "") -> gluon.Block:
    """Record on ``net`` which parameters come from the backbone ``source`` (structural names of the
    GluonCV ImageNet file ``name``, under ``prefix`` such as ``'features'``). Returns ``net``."""
    file_keys = {id(p): key for key, p in source._collect_params_with_prefix(prefix).items()}
    mapping = {key: file_keys[id(p)] for key, p in net._collect_params_with_prefix().items() if id(p) in file_keys}
    net.backbone_name = name
    net.backbone_keys = mapping
    net.backbone_file_keys = frozenset(file_keys.values()) | frozenset(_CLASSIFIER_KEYS)
    return net


def resolve_backbone_file(name: str, spec: Union[bool, str], what: str = "pretrained_base") -> str:
    """The file of ``spec``: ``True`` finds GluonCV's ``name`` in the model store (SHA-1 checked);
    a path is used as given (SHA-1 checked when it carries a store file name)."""
    if spec is True:
        return find_model_file(name, what)
    if isinstance(spec, str) and spec:
        check_explicit_file(spec, name, what)
        return spec
    raise PretrainedFileError("%s: expected True or the path of a .params file, got %r" % (what, spec))


def _read(path: str, what: str) -> Dict[str, mx.nd.NDArray]:
    try:
        arrays = mx.nd.load(path)
    except mx.MXNetError as err:
        raise PretrainedFileError("%s: %s is not a readable MXNet .params file (truncated or corrupt?): %s"
                                  % (what, path, str(err).strip().splitlines()[0])) from None
    if not isinstance(arrays, dict):
        raise PretrainedFileError("%s: %s holds an unnamed array list, not a Gluon .params file" % (what, path))
    return {k.split(":", 1)[-1]: v for k, v in arrays.items()}


def check_backbone_arrays(net: gluon.Block, arrays: Dict[str, Any], path: str, what: str) -> None:
    """A :class:`PretrainedFileError` unless ``arrays`` are ``net.backbone_name``'s ImageNet file:
    every backbone parameter present with the detector's shape, no key of another network."""
    name = net.backbone_name
    missing = sorted(set(net.backbone_keys.values()) - set(arrays))
    foreign = sorted(set(arrays) - set(net.backbone_file_keys))
    if missing or foreign:
        detail = []
        if missing:
            detail.append("%d %s parameters missing (e.g. %s)" % (len(missing), name, ", ".join(missing[:3])))
        if foreign:
            detail.append("%d keys that %s does not have (e.g. %s)" % (len(foreign), name, ", ".join(foreign[:3])))
        raise PretrainedFileError("%s: %s is not a GluonCV %s ImageNet file: %s" % (what, path, name, "; ".join(detail)))
    params = net._collect_params_with_prefix()
    for key, file_key in sorted(net.backbone_keys.items()):
        want = params[key].shape
        got = tuple(arrays[file_key].shape)
        if want and (len(want) != len(got) or any(w not in (0, g) for w, g in zip(want, got))):
            raise PretrainedFileError("%s: %s is not a GluonCV %s ImageNet file: %s has shape %s in the file "
                                      "but %s in the detector (%s)" % (what, path, name, file_key, got,
                                                                       tuple(want), key))


def load_pretrained_base(net: gluon.Block, spec: Union[bool, str], what: str = "pretrained_base",
                         ctx: Optional[Any] = None) -> Dict[str, Any]:
    """Copy the ImageNet weights of ``net``'s backbone into it.

    ``spec`` is ``True`` (GluonCV's model store, SHA-1 checked) or a ``.params`` path. Initialized
    parameters get the arrays on all their contexts; uninitialized ones are initialized with them on
    ``ctx`` (default CPU; ``net.initialize()`` later leaves them alone, as with GluonCV).

    Returns ``{'name', 'path', 'sha1', 'num_params'}`` for the log.
    """
    if not getattr(net, "backbone_keys", None):
        raise PretrainedFileError("%s: %s has no ImageNet backbone to load (a model without backbone record)"
                                  % (what, type(net).__name__))
    path = resolve_backbone_file(net.backbone_name, spec, what)
    arrays = _read(path, what)
    check_backbone_arrays(net, arrays, path, what)
    params = net._collect_params_with_prefix()
    ctx = ctx or [mx.cpu()]
    for key, file_key in net.backbone_keys.items():
        param, arr = params[key], arrays[file_key]
        if param._data is not None:
            param.set_data(arr.astype(param.dtype, copy=False))
        else:
            param._load_init(arr, ctx)
    return {"name": net.backbone_name, "path": path, "sha1": file_sha1(path), "num_params": len(net.backbone_keys)}
