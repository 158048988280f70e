"""ResNet v1b / v1d backbones with GluonCV's parameter names.

ResNet "v1b" puts the stride-2 of a bottleneck on its 3x3 convolution (not on the first 1x1); "v1d"
adds the deep stem (three 3x3 convolutions instead of one 7x7) and average-pool downsampling on the
shortcut. Parameter *structural* names (``layer1.0.conv1.weight``...) and *global* name prefixes
(``layers2_conv0``, ``down3_conv0``...) equal GluonCV 0.10.5's ``resnetv1b.py``: the first makes
``.params`` files interchangeable, the second keeps GluonCV's Faster R-CNN ``train_patterns``
regular expressions meaningful.

Residual blocks deliberately create their layers *without* their own name scope, so a layer's global
name is ``<stage prefix>conv<k>`` (as in GluonCV), which is what those patterns match.
"""
from typing import Optional, Sequence, Type

from mxnet.gluon import HybridBlock, nn

__all__ = ["ResNetV1b", "BasicBlockV1b", "BottleneckV1b", "resnet18_v1b", "resnet50_v1b",
           "resnet101_v1b", "resnet50_v1d", "resnet101_v1d"]


class BasicBlockV1b(HybridBlock):
    """Two 3x3 convolutions plus identity (ResNet-18/34). Output channels = ``planes``."""

    expansion = 1

    def __init__(self, planes: int, strides: int = 1, downsample: Optional[HybridBlock] = None,
                 norm_layer=nn.BatchNorm, norm_kwargs: Optional[dict] = None, **kwargs):
        super().__init__(**kwargs)
        nkw = dict(norm_kwargs or {})
        self.conv1 = nn.Conv2D(planes, 3, strides, 1, use_bias=False)
        self.bn1 = norm_layer(in_channels=planes, **nkw)
        self.relu1 = nn.Activation("relu")
        self.conv2 = nn.Conv2D(planes, 3, 1, 1, use_bias=False)
        self.bn2 = norm_layer(in_channels=planes, **nkw)
        self.relu2 = nn.Activation("relu")
        self.downsample = downsample

    def hybrid_forward(self, F, x):
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu2(y + shortcut)


class BottleneckV1b(HybridBlock):
    """1x1 -> 3x3 (strided) -> 1x1 bottleneck (ResNet-50/101). Output channels = ``4 * planes``."""

    expansion = 4

    def __init__(self, planes: int, strides: int = 1, downsample: Optional[HybridBlock] = None,
                 norm_layer=nn.BatchNorm, norm_kwargs: Optional[dict] = None, **kwargs):
        super().__init__(**kwargs)
        nkw = dict(norm_kwargs or {})
        self.conv1 = nn.Conv2D(planes, 1, use_bias=False)
        self.bn1 = norm_layer(in_channels=planes, **nkw)
        self.relu1 = nn.Activation("relu")
        self.conv2 = nn.Conv2D(planes, 3, strides, 1, use_bias=False)
        self.bn2 = norm_layer(in_channels=planes, **nkw)
        self.relu2 = nn.Activation("relu")
        self.conv3 = nn.Conv2D(planes * 4, 1, use_bias=False)
        self.bn3 = norm_layer(in_channels=planes * 4, **nkw)
        self.relu3 = nn.Activation("relu")
        self.downsample = downsample

    def hybrid_forward(self, F, x):
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.relu2(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu3(y + shortcut)


class ResNetV1b(HybridBlock):
    """ResNet v1b/v1d classifier; detectors use its children ``conv1`` ... ``layer4``.

    Parameters
    ----------
    block : BasicBlockV1b or BottleneckV1b
    layers : four ints, blocks per stage.
    classes : int
        Size of the (unused by detectors) ``fc`` layer, kept so ImageNet files load.
    norm_layer : Gluon normalization block class (``nn.BatchNorm`` or ``SyncBatchNorm``).
    norm_kwargs : dict, extra arguments of every norm layer (e.g. ``num_devices``).
    use_global_stats : bool
        Frozen BatchNorm: always normalise with the stored running statistics.
    deep_stem : bool
        v1c/v1d stem: 3x3 (``stem_width``, stride 2) -> 3x3 -> 3x3 (``2*stem_width``).
    avg_down : bool
        v1d shortcut: ``AvgPool(stride)`` then a stride-1 1x1 convolution.
    name_prefix : str, global parameter-name prefix (``resnetv1b_``, ``resnetv1d_``).

    Input ``(B, 3, H, W)``; every stride-2 layer maps a size ``s`` to ``ceil(s / 2)``, so ``layer3``
    output is ``(B, C, ceil(H/16), ceil(W/16))``.
    """

    def __init__(self, block: Type[HybridBlock], layers: Sequence[int], classes: int = 1000,
                 norm_layer=nn.BatchNorm, norm_kwargs: Optional[dict] = None,
                 use_global_stats: bool = False, deep_stem: bool = False, stem_width: int = 32,
                 avg_down: bool = False, name_prefix: str = "", **kwargs):
        if len(layers) != 4:
            raise ValueError("ResNetV1b: `layers` must list 4 stage depths, got %r" % (layers,))
        super().__init__(prefix=name_prefix)
        self._norm_kwargs = dict(norm_kwargs or {})
        if use_global_stats:
            self._norm_kwargs["use_global_stats"] = True
        self._norm_layer = norm_layer
        self._in_channels = 2 * stem_width if deep_stem else 64
        nkw = self._norm_kwargs
        with self.name_scope():
            if deep_stem:
                self.conv1 = nn.HybridSequential(prefix="conv1")
                self.conv1.add(nn.Conv2D(stem_width, 3, 2, 1, use_bias=False),
                               norm_layer(in_channels=stem_width, **nkw), nn.Activation("relu"),
                               nn.Conv2D(stem_width, 3, 1, 1, use_bias=False),
                               norm_layer(in_channels=stem_width, **nkw), nn.Activation("relu"),
                               nn.Conv2D(2 * stem_width, 3, 1, 1, use_bias=False))
            else:
                self.conv1 = nn.Conv2D(64, 7, 2, 3, use_bias=False)
            self.bn1 = norm_layer(in_channels=self._in_channels, **nkw)
            self.relu = nn.Activation("relu")
            self.maxpool = nn.MaxPool2D(pool_size=3, strides=2, padding=1)
            for stage, (planes, depth) in enumerate(zip((64, 128, 256, 512), layers), start=1):
                strides = 1 if stage == 1 else 2
                setattr(self, "layer%d" % stage,
                        self._make_stage(stage, block, planes, depth, strides, avg_down))
            self.avgpool = nn.GlobalAvgPool2D()
            self.flat = nn.Flatten()
            self.fc = nn.Dense(in_units=512 * block.expansion, units=classes)

    def _make_stage(self, stage: int, block, planes: int, depth: int, strides: int,
                    avg_down: bool) -> nn.HybridSequential:
        out_channels = planes * block.expansion
        downsample = None
        if strides != 1 or self._in_channels != out_channels:
            downsample = nn.HybridSequential(prefix="down%d_" % stage)
            with downsample.name_scope():
                if avg_down:
                    downsample.add(nn.AvgPool2D(pool_size=strides, strides=strides, ceil_mode=True,
                                                count_include_pad=False),
                                   nn.Conv2D(out_channels, 1, 1, use_bias=False))
                else:
                    downsample.add(nn.Conv2D(out_channels, 1, strides, use_bias=False))
                downsample.add(self._norm_layer(in_channels=out_channels, **self._norm_kwargs))
        seq = nn.HybridSequential(prefix="layers%d_" % stage)
        with seq.name_scope():
            seq.add(block(planes, strides, downsample, self._norm_layer, self._norm_kwargs))
            self._in_channels = out_channels
            for _ in range(1, depth):
                seq.add(block(planes, 1, None, self._norm_layer, self._norm_kwargs))
        return seq

    def hybrid_forward(self, F, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.flat(self.avgpool(x)))


def resnet18_v1b(**kwargs) -> ResNetV1b:
    """ResNet-18 v1b (basic blocks 2-2-2-2), GluonCV names (``resnetv1b_`` prefix)."""
    return ResNetV1b(BasicBlockV1b, [2, 2, 2, 2], name_prefix="resnetv1b_", **kwargs)


def resnet50_v1b(**kwargs) -> ResNetV1b:
    """ResNet-50 v1b (bottlenecks 3-4-6-3)."""
    return ResNetV1b(BottleneckV1b, [3, 4, 6, 3], name_prefix="resnetv1b_", **kwargs)


def resnet101_v1b(**kwargs) -> ResNetV1b:
    """ResNet-101 v1b (bottlenecks 3-4-23-3)."""
    return ResNetV1b(BottleneckV1b, [3, 4, 23, 3], name_prefix="resnetv1b_", **kwargs)


def resnet50_v1d(**kwargs) -> ResNetV1b:
    """ResNet-50 v1d: deep stem (32-32-64) and average-pool shortcut downsampling."""
    return ResNetV1b(BottleneckV1b, [3, 4, 6, 3], deep_stem=True, avg_down=True,
                     name_prefix="resnetv1d_", **kwargs)


def resnet101_v1d(**kwargs) -> ResNetV1b:
    """ResNet-101 v1d: deep stem and average-pool shortcut downsampling."""
    return ResNetV1b(BottleneckV1b, [3, 4, 23, 3], deep_stem=True, avg_down=True,
                     name_prefix="resnetv1d_", **kwargs)
