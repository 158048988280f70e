"""Detector-independent pieces of the training and validation data paths.

``TrainLoader`` carries the mixup switch as an option sent with every task (``loader.set_mixup(False)``
before an epoch, or ``iter_epoch(e, options={'mixup': False})``), so switching mixup off for the last
epochs works with any number of workers. :func:`split_rng` splits each sample's generator into a
mixup stream and an augmentation stream, so switching mixup does not change the augmentation draws
of the first image. ``FixedRatioMixup`` is GluonCV's fixed 0.5 blend, ``ValSample`` the deterministic
validation sample. The detector-specific loaders (transform, targets, batch layout) are built by the
recipes (``gluon_bof.recipes.yolo3.data``, ``gluon_bof.recipes.faster_rcnn.data``).
"""
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from .loader import DetectionLoader, Shape
from .mixup import MixupDetection


def split_rng(rng: np.random.Generator) -> Tuple[np.random.Generator, np.random.Generator]:
    """Two independent generators (mixup, augmentation) derived from a sample's generator."""
    a, b = rng.integers(0, 2 ** 63, size=2)
    return np.random.default_rng(int(a)), np.random.default_rng(int(b))


def mixed_sample(dataset: MixupDetection, index: int, rng: np.random.Generator, options: Dict[str, Any]
                 ) -> Tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """``(img, label, aug_rng)``: item ``index`` mixed with a partner when ``options['mixup']`` is on,
    and the augmentation stream that the transform should draw from (see :func:`split_rng`)."""
    mix_rng, aug_rng = split_rng(rng)
    img, label = dataset.sample(index, mix_rng, bool(options.get("mixup", False)))
    return img, label, aug_rng


class TrainLoader(DetectionLoader):
    """A ``DetectionLoader`` whose default options include the mixup switch."""

    def set_mixup(self, enabled: bool) -> None:
        """Turn mixup on or off from the next ``iter_epoch`` on; reaches worker processes."""
        self.set_option("mixup", bool(enabled))

    @property
    def mixup(self) -> bool:
        """Current default mixup switch."""
        return bool(self.options.get("mixup", False))


class FixedRatioMixup(MixupDetection):
    """Mixup with a fixed blend ratio (GluonCV's Faster R-CNN: ``set_mixup(np.random.uniform, 0.5, 0.5)``).

    Draws from ``rng`` exactly as :class:`MixupDetection` does (so the partner choice is the same),
    then replaces ``lambda`` by ``ratio``.
    """

    def __init__(self, dataset: Sequence, ratio: float = 0.5) -> None:
        super().__init__(dataset)
        if not 0.0 <= float(ratio) <= 1.0:
            raise ValueError("FixedRatioMixup: ratio must be in [0, 1], got %r" % (ratio,))
        self.ratio = float(ratio)

    def draw(self, index: int, rng: np.random.Generator) -> Tuple[float, int]:
        _, partner = super().draw(index, rng)
        return self.ratio, partner


class ValSample:
    """``sample_fn`` of the validation loaders: a deterministic ``transform(img, label)``."""

    def __init__(self, transform: Callable) -> None:
        self.transform = transform

    def __call__(self, dataset: Any, index: int, rng: np.random.Generator, shape: Optional[Shape],
                 options: Dict[str, Any]) -> tuple:
        img, label = dataset[index]
        out = self.transform(img, label)
        return (out[0], np.asarray(out[1], dtype=np.float32)) + tuple(np.float32(v) for v in out[2:])
