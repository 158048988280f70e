"""Choice of the normalization layer shared by all backbones and heads.

GluonCV passes ``norm_layer`` (a class) and ``norm_kwargs`` (a dict) down to every conv cell; we do
the same, and also accept the strings ``'bn'`` and ``'syncbn'``. The constructors build exactly the
layer they are given (``SyncBatchNorm`` with ``num_devices=1`` included); which layer a training run
uses is the one rule of ``gluon_bof.engine.context.norm_layer_for``.
"""
from typing import Any, Callable, Dict, Optional, Tuple, Union

from mxnet.gluon import nn
from mxnet.gluon.contrib.nn import SyncBatchNorm

NormSpec = Union[None, str, Callable[..., nn.HybridBlock]]


def resolve_norm(norm_layer: NormSpec = None,
                 norm_kwargs: Optional[Dict[str, Any]] = None,
                 num_devices: Optional[int] = None) -> Tuple[Callable[..., nn.HybridBlock], Dict[str, Any]]:
    """Return ``(norm_class, kwargs)`` for ``norm_layer`` given as a class, ``'bn'`` or ``'syncbn'``.

    Parameters
    ----------
    norm_layer : class, str or None
        ``None`` or ``'bn'``: ``mxnet.gluon.nn.BatchNorm``. ``'syncbn'``: ``SyncBatchNorm``.
        A class is used as given (it must accept ``epsilon`` and ``momentum`` keywords).
    norm_kwargs : dict or None
        Extra keywords for every norm layer, e.g. ``{'num_devices': 4}``.
    num_devices : int or None
        Shortcut for ``norm_kwargs['num_devices']`` (only meaningful with ``SyncBatchNorm``).
    """
    kwargs = dict(norm_kwargs or {})
    if norm_layer is None or (isinstance(norm_layer, str) and norm_layer.lower() in ("bn", "batchnorm")):
        cls = nn.BatchNorm
    elif isinstance(norm_layer, str) and norm_layer.lower() in ("syncbn", "syncbatchnorm"):
        cls = SyncBatchNorm
    elif isinstance(norm_layer, str):
        raise ValueError("norm_layer=%r is not known: use 'bn', 'syncbn' or a norm layer class" % norm_layer)
    elif callable(norm_layer):
        cls = norm_layer
    else:
        raise TypeError("norm_layer must be None, 'bn', 'syncbn' or a class, got %r" % (norm_layer,))
    if num_devices is not None:
        kwargs["num_devices"] = int(num_devices)
    if cls is SyncBatchNorm:
        n = kwargs.get("num_devices", 1)
        if not isinstance(n, int) or n < 1:
            raise ValueError("SyncBatchNorm needs norm_kwargs['num_devices'] >= 1, got %r" % (n,))
        kwargs["num_devices"] = n
    elif "num_devices" in kwargs and cls is nn.BatchNorm:
        raise ValueError("num_devices=%r was given but norm_layer is BatchNorm; use norm_layer='syncbn'"
                         % (kwargs["num_devices"],))
    return cls, kwargs
