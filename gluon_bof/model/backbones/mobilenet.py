"""MobileNet v1 feature layers, laid out like GluonCV's ``MobileNet.features``.

A flat ``HybridSequential``: stem (conv, BN, ReLU) then 13 depthwise-separable units of six
children each (dw conv, BN, ReLU, pw conv, BN, ReLU), i.e. 81 children, then GlobalAvgPool and
Flatten as GluonCV has (never used by YOLOv3, parameter-free, kept so indices match). YOLOv3 cuts it
at ``[:33]``, ``[33:69]``, ``[69:-2]`` (strides 8, 16, 32).
"""
from typing import Any, Callable, Dict, Optional

from mxnet.gluon import nn

from .norm import resolve_norm

_DW_CHANNELS = [32, 64] + [128] * 2 + [256] * 2 + [512] * 6 + [1024]
_PW_CHANNELS = [64] + [128] * 2 + [256] * 2 + [512] * 6 + [1024] * 2
_STRIDES = [1, 2] * 3 + [1] * 5 + [2, 1]


def _conv_bn_relu(seq: nn.HybridSequential, channels: int, kernel: int, stride: int, pad: int,
                  groups: int, norm_layer: Callable, norm_kwargs: Dict[str, Any]) -> None:
    seq.add(nn.Conv2D(channels, kernel, stride, pad, groups=groups, use_bias=False))
    seq.add(norm_layer(scale=True, **norm_kwargs))
    seq.add(nn.Activation("relu"))


def mobilenet_features(multiplier: float = 1.0, norm_layer: Any = None,
                       norm_kwargs: Optional[Dict[str, Any]] = None) -> nn.HybridSequential:
    """MobileNet v1 feature sequence with channel width ``int(c * multiplier)``.

    Parameters
    ----------
    multiplier : float
        Width multiplier (GluonCV: 1.0, 0.75, 0.5, 0.25); must give at least 1 channel everywhere.
    norm_layer, norm_kwargs
        See :func:`gluon_bof.model.backbones.norm.resolve_norm`.

    Returns
    -------
    HybridSequential
        83 children; ``[:-2]`` maps ``(B, 3, H, W)`` to ``(B, int(1024*multiplier), H/32, W/32)``.
    """
    if not multiplier > 0 or int(32 * multiplier) < 1:
        raise ValueError("mobilenet_features: multiplier=%r must give >= 1 channel (>= 1/32)" % (multiplier,))
    norm, nkw = resolve_norm(norm_layer, norm_kwargs)
    features = nn.HybridSequential(prefix="")
    with features.name_scope():
        _conv_bn_relu(features, int(32 * multiplier), 3, 2, 1, 1, norm, nkw)
        for dwc, pwc, s in zip(_DW_CHANNELS, _PW_CHANNELS, _STRIDES):
            dwc, pwc = int(dwc * multiplier), int(pwc * multiplier)
            _conv_bn_relu(features, dwc, 3, s, 1, dwc, norm, nkw)
            _conv_bn_relu(features, pwc, 1, 1, 0, 1, norm, nkw)
        features.add(nn.GlobalAvgPool2D())
        features.add(nn.Flatten())
    return features


def mobilenet_store_name(multiplier: float) -> str:
    """GluonCV's model-store name of a MobileNet width: ``mobilenet1.0``, ``mobilenet0.5``, ``mobilenet0.25``."""
    suffix = "%.2f" % multiplier
    return "mobilenet" + (suffix[:-1] if suffix in ("1.00", "0.50") else suffix)


def mobilenet_stages(multiplier: float = 1.0, norm_layer: Any = None,
                     norm_kwargs: Optional[Dict[str, Any]] = None):
    """MobileNet cut into YOLOv3's three stages (strides 8, 16, 32), GluonCV's cut points."""
    f = mobilenet_features(multiplier, norm_layer, norm_kwargs)
    return [f[:33], f[33:69], f[69:-2]]
