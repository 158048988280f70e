"""A plain stack of 3x3 convolution cells: the CPU-fast backbone of ``yolo3_tiny_shapes``.

No depthwise convolutions, no residual blocks: every layer is one Darknet conv cell (3x3 conv without
bias, BatchNorm, LeakyReLU 0.1), as in Darknet's own small YOLOv3. At the small widths of a CPU
model, MXNet's CPU kernels run full 3x3 convolutions much faster per useful channel than MobileNet's
depthwise-separable pairs (two kernels, two norms and two activations per layer), so this stack
trains faster per image than MobileNet 0.25 at a similar parameter count.

Layout (channels at ``multiplier`` 1; each stage starts with a stride-2 cell)::

    stride  2: 32         stride  4: 64         stride  8: 128, 128      <- first YOLOv3 stage
    stride 16: 256, 256                                                  <- second stage
    stride 32: 512, 512, 512                                             <- third stage

``features`` is flat (9 cells), cut at ``[:4]``, ``[4:6]``, ``[6:]`` like the other backbones'
stages. GluonCV publishes no ImageNet weights for it: it is trained from scratch.
"""
from typing import Any, Dict, List, Optional, Tuple

from mxnet.gluon import nn

from .darknet import conv_cell
from .norm import resolve_norm

# (output channels at multiplier 1, cells) per stride level 2, 4, 8, 16, 32.
PLAIN_LEVELS: Tuple[Tuple[int, int], ...] = ((32, 1), (64, 1), (128, 2), (256, 2), (512, 3))
#: Cut points of ``features`` into YOLOv3's stride-8, -16 and -32 stages.
PLAIN_CUTS = (4, 6, None)


def plain_channels(multiplier: float) -> List[int]:
    """Output channels of the five stride levels at width ``multiplier`` (at least 1 each)."""
    if not multiplier > 0 or int(PLAIN_LEVELS[0][0] * multiplier) < 1:
        raise ValueError("plain_features: multiplier=%r must give >= 1 channel (>= 1/32)" % (multiplier,))
    return [int(channels * multiplier) for channels, _ in PLAIN_LEVELS]


def plain_features(multiplier: float = 0.25, norm_layer: Any = None,
                   norm_kwargs: Optional[Dict[str, Any]] = None) -> nn.HybridSequential:
    """The flat sequence of conv cells (see the module docstring for the layout).

    Parameters
    ----------
    multiplier : float
        Width multiplier of the channels (0.25: 8, 16, 32, 64, 128 channels per level).
    norm_layer, norm_kwargs
        See :func:`gluon_bof.model.backbones.norm.resolve_norm`.

    Returns
    -------
    HybridSequential
        9 children mapping ``(B, 3, H, W)`` to ``(B, int(512 * multiplier), H / 32, W / 32)``.
    """
    norm, nkw = resolve_norm(norm_layer, norm_kwargs)
    features = nn.HybridSequential(prefix="")
    with features.name_scope():
        for channels, (_, cells) in zip(plain_channels(multiplier), PLAIN_LEVELS):
            for cell in range(cells):
                features.add(conv_cell(channels, 3, 1, 2 if cell == 0 else 1, norm, nkw))
    return features
