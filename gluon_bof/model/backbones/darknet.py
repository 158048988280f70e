"""Darknet-53 feature layers, laid out like GluonCV's ``DarknetV3.features``.

``features`` is a flat ``HybridSequential``: a 3x3 stem conv cell, then per stage a stride-2 3x3
conv cell followed by residual blocks. Child order (and thus parameter names such as
``0.0.weight``, ``2.body.1.1.gamma``) equals GluonCV's, so YOLOv3 can slice it into stages
``[:15]``, ``[15:24]``, ``[24:]`` (strides 8, 16, 32) exactly as GluonCV does.
"""
from typing import Any, Callable, Dict, Optional, Sequence

from mxnet.gluon import nn

from .norm import resolve_norm

# Residual blocks per stage and output channels of (stem, stage1..stage5) of Darknet-53.
DARKNET53_LAYERS = (1, 2, 8, 8, 4)
DARKNET53_CHANNELS = (32, 64, 128, 256, 512, 1024)


def conv_cell(channels: int, kernel: int, padding: int, stride: int,
              norm_layer: Callable = nn.BatchNorm, norm_kwargs: Optional[Dict[str, Any]] = None
              ) -> nn.HybridSequential:
    """Conv (no bias) -> norm (eps 1e-5, momentum 0.9) -> LeakyReLU(0.1); children ``0``, ``1``, ``2``."""
    cell = nn.HybridSequential(prefix="")
    cell.add(nn.Conv2D(channels, kernel_size=kernel, strides=stride, padding=padding, use_bias=False))
    cell.add(norm_layer(epsilon=1e-5, momentum=0.9, **(norm_kwargs or {})))
    cell.add(nn.LeakyReLU(0.1))
    return cell


class DarknetResidual(nn.HybridBlock):
    """``x + conv3x3(2c)(conv1x1(c)(x))``; the input must have ``2 * channels`` channels."""

    def __init__(self, channels: int, norm_layer: Callable = nn.BatchNorm,
                 norm_kwargs: Optional[Dict[str, Any]] = None, **kwargs):
        super().__init__(**kwargs)
        self.body = nn.HybridSequential(prefix="")
        self.body.add(conv_cell(channels, 1, 0, 1, norm_layer, norm_kwargs))
        self.body.add(conv_cell(channels * 2, 3, 1, 1, norm_layer, norm_kwargs))

    def hybrid_forward(self, F, x):
        return self.body(x) + x


def darknet_features(layers: Sequence[int] = DARKNET53_LAYERS,
                     channels: Sequence[int] = DARKNET53_CHANNELS,
                     norm_layer: Any = None, norm_kwargs: Optional[Dict[str, Any]] = None
                     ) -> nn.HybridSequential:
    """Flat Darknet feature sequence (no classifier).

    Parameters
    ----------
    layers : sequence of int
        Residual blocks after each stride-2 conv; ``len(layers) == len(channels) - 1``.
    channels : sequence of int
        Output channels of the stem and of each stage (even numbers).
    norm_layer, norm_kwargs
        See :func:`gluon_bof.model.backbones.norm.resolve_norm`.

    Returns
    -------
    HybridSequential
        Input ``(B, 3, H, W)``; output ``(B, channels[-1], H / 2**len(layers), W / 2**len(layers))``.
    """
    if len(layers) != len(channels) - 1:
        raise ValueError("darknet_features: len(channels)=%d must equal len(layers)+1=%d"
                         % (len(channels), len(layers) + 1))
    if any(c % 2 for c in channels[1:]):
        raise ValueError("darknet_features: stage channels must be even, got %s" % (list(channels),))
    norm, nkw = resolve_norm(norm_layer, norm_kwargs)
    features = nn.HybridSequential()
    with features.name_scope():
        features.add(conv_cell(channels[0], 3, 1, 1, norm, nkw))
        for n_blocks, c in zip(layers, channels[1:]):
            features.add(conv_cell(c, 3, 1, 2, norm, nkw))
            for _ in range(n_blocks):
                features.add(DarknetResidual(c // 2, norm, nkw))
    return features


def darknet53_stages(norm_layer: Any = None, norm_kwargs: Optional[Dict[str, Any]] = None):
    """Darknet-53 cut into YOLOv3's three stages (strides 8, 16, 32), GluonCV's cut points."""
    f = darknet_features(DARKNET53_LAYERS, DARKNET53_CHANNELS, norm_layer, norm_kwargs)
    return [f[:15], f[15:24], f[24:]]
