"""Training and validation loaders for YOLOv3 and Faster R-CNN: dataset -> mixup -> transform ->
targets -> batch, all inside the loader workers.

Mixup is an option sent with every task (``loader.set_mixup(False)`` before an epoch, or
``iter_epoch(e, options={'mixup': False})``), so switching it off for the last epochs works with any
number of workers. Each sample's generator is split into a mixup stream and an augmentation stream,
so switching mixup does not change the augmentation draws of the first image.

The transforms and the YOLOv3 target generator come from ``gluon_bof.data.transforms.presets`` and
``gluon_bof.model.yolo.targets`` (contracts in docs/architecture.md); every builder accepts a
ready-made ``transform`` (and ``target_generator``) instead, e.g. for custom augmentation.
"""
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from .batchify import Group, pad, pad_images, stack
from .loader import DetectionLoader, Shape
from .mixup import MixupDetection

RANDOM_SHAPES: Tuple[int, ...] = tuple(range(320, 609, 32))


def split_rng(rng: np.random.Generator) -> Tuple[np.random.Generator, np.random.Generator]:
    """Two independent generators (mixup, augmentation) derived from a sample's generator."""
    a, b = rng.integers(0, 2 ** 63, size=2)
    return np.random.default_rng(int(a)), np.random.default_rng(int(b))


class TrainLoader(DetectionLoader):
    """A ``DetectionLoader`` whose default options include the mixup switch."""

    def set_mixup(self, enabled: bool) -> None:
        """Turn mixup on or off from the next ``iter_epoch`` on; reaches worker processes."""
        self.set_option("mixup", bool(enabled))

    @property
    def mixup(self) -> bool:
        """Current default mixup switch."""
        return bool(self.options.get("mixup", False))


class YOLO3TrainSample:
    """``sample_fn`` of the YOLOv3 train loader.

    Returns ``(img (3,H,W) float32, objectness (A,1), center (A,2), scale (A,2), weights (A,2),
    class (A,K), gt_boxes (M,4))`` for one sample; ``dataset`` is a ``MixupDetection``.
    """

    def __init__(self, transform: Callable, target_generator: Callable, data_shape: Shape) -> None:
        self.transform = transform
        self.target_generator = target_generator
        self.data_shape = data_shape

    def __call__(self, dataset: MixupDetection, index: int, rng: np.random.Generator,
                 shape: Optional[Shape], options: Dict[str, Any]) -> tuple:
        mix_rng, aug_rng = split_rng(rng)
        img, label = dataset.sample(index, mix_rng, bool(options.get("mixup", False)))
        img, label = self.transform(img, label, aug_rng, shape=shape or self.data_shape)
        targets = self.target_generator(label, input_hw=tuple(img.shape[1:3]), has_weight=True)
        return (img, *targets, np.asarray(label[:, :4], dtype=np.float32))


class FasterRCNNTrainSample:
    """``sample_fn`` of the Faster R-CNN train loader: ``(img (3,H,W) float32, label (N, C+1))``.

    With ``rpn_target_fn`` (e.g. ``gluon_bof.model.rcnn.RPNTargetTransform``), called as
    ``rpn_target_fn((H, W), label, rng)``, the RPN targets of the transformed image are appended:
    ``cls (h,w,A), box (h,w,4A), mask (h,w,4A), weight (h,w,A)`` (GluonCV computes them in its
    workers too). Their generator is derived from the augmentation stream after the transform, so
    the image and label draws are the same with or without targets.
    """

    def __init__(self, transform: Callable, rpn_target_fn: Optional[Callable] = None) -> None:
        self.transform = transform
        self.rpn_target_fn = rpn_target_fn

    def __call__(self, dataset: MixupDetection, index: int, rng: np.random.Generator,
                 shape: Optional[Shape], options: Dict[str, Any]) -> tuple:
        mix_rng, aug_rng = split_rng(rng)
        img, label = dataset.sample(index, mix_rng, bool(options.get("mixup", False)))
        img, label = self.transform(img, label, aug_rng)
        label = np.asarray(label, dtype=np.float32)
        if self.rpn_target_fn is None:
            return img, label
        rpn_rng = np.random.default_rng(int(aug_rng.integers(0, 2 ** 63)))
        return (img, label, *self.rpn_target_fn(tuple(img.shape[1:3]), label, rpn_rng))


class FasterRCNNTrainBatchify:
    """Batch ``(img, label, rpn cls, rpn box, rpn mask, rpn weight)`` samples.

    Images are zero-padded bottom/right to the largest, labels padded with -1 rows, and the RPN
    targets padded spatially to the largest feature map and flattened in the network's anchor order
    by ``gluon_bof.model.rcnn.pad_rpn_targets``: ``(B, N)``, ``(B, N, 4)``, ``(B, N, 4)``, ``(B, N)``.
    """

    def __call__(self, samples: Sequence[tuple]) -> tuple:
        from ..model.rcnn.rpn_targets import pad_rpn_targets
        if not samples or any(len(s) != 6 for s in samples):
            raise ValueError("FasterRCNNTrainBatchify: samples must be (img, label, 4 RPN targets), got "
                             "lengths %s" % sorted({len(s) for s in samples}))
        images = pad_images([s[0] for s in samples])
        labels = pad([s[1] for s in samples])
        return (images, labels, *pad_rpn_targets([s[2:] for s in samples]))


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


def _hw(data_shape: Union[int, Shape]) -> Shape:
    if np.isscalar(data_shape):
        return int(data_shape), int(data_shape)  # type: ignore[arg-type]
    h, w = data_shape  # type: ignore[misc]
    return int(h), int(w)


def build_yolo3_train_loader(dataset: Sequence, num_classes: int, anchors: Any, strides: Sequence[int],
                             batch_size: int, seed: int, num_workers: int = 0,
                             data_shape: Union[int, Shape] = 416, random_shape: bool = True,
                             shapes: Sequence[Union[int, Shape]] = RANDOM_SHAPES, shape_interval: int = 10,
                             mixup: bool = False, mixup_alpha: float = 1.5, mixup_beta: float = 1.5,
                             label_smooth: bool = False, color_jitter: bool = True, expand: bool = True,
                             crop: bool = True, flip: bool = True, random_interp: bool = True,
                             last_batch: str = "rollover", transform: Optional[Callable] = None,
                             target_generator: Optional[Callable] = None) -> TrainLoader:
    """The YOLOv3 training loader (GluonCV ``train_yolo3.py`` data path, fixed for workers).

    Parameters
    ----------
    dataset : Sequence
        Items ``(HxWx3 uint8, (N, 6) float32)``.
    num_classes, anchors, strides, label_smooth
        Passed to ``YOLOv3TargetGenerator``; anchors in pixels, e.g. ``[[10,13,16,30,33,23], ...]``.
    batch_size, seed, num_workers, last_batch
        See ``DetectionLoader``.
    data_shape : int or (h, w)
        Input size without random shapes (and the transform's nominal size).
    random_shape, shapes, shape_interval
        One shape from ``shapes`` for every ``shape_interval`` batches (paper section 3.6).
    mixup, mixup_alpha, mixup_beta
        Initial mixup switch (change with ``set_mixup``) and the Beta parameters.
    color_jitter, expand, crop, flip, random_interp
        Augmentation switches of ``YOLO3TrainTransform``.
    transform, target_generator : callable, optional
        Replace the default ``YOLO3TrainTransform`` / ``YOLOv3TargetGenerator``.

    Returns
    -------
    TrainLoader
        Batches ``(images (B,3,H,W), objectness (B,A,1), center (B,A,2), scale (B,A,2),
        weights (B,A,2), class (B,A,K), gt_boxes (B,M,4) padded with -1)``, float32 numpy.
    """
    h, w = _hw(data_shape)
    if transform is None:
        from .transforms.presets import YOLO3TrainTransform
        transform = YOLO3TrainTransform(w, h, color_jitter=color_jitter, expand=expand, crop=crop,
                                        flip=flip, random_interp=random_interp)
    if target_generator is None:
        from ..model.yolo.targets import YOLOv3TargetGenerator
        target_generator = YOLOv3TargetGenerator(num_classes, anchors, strides, label_smooth=label_smooth)
    return TrainLoader(MixupDetection(dataset, mixup_alpha, mixup_beta),
                       YOLO3TrainSample(transform, target_generator, (h, w)),
                       Group(stack, stack, stack, stack, stack, stack, pad),
                       batch_size, seed, shuffle=True, num_workers=num_workers,
                       shapes=shapes if random_shape else None, shape_interval=shape_interval,
                       last_batch=last_batch, options={"mixup": bool(mixup)})


def build_yolo3_val_loader(dataset: Sequence, data_shape: Union[int, Shape] = 416, batch_size: int = 1,
                           num_workers: int = 0, transform: Optional[Callable] = None) -> DetectionLoader:
    """YOLOv3 validation loader: ``(images (B,3,H,W) float32, labels (B,M,6) padded with -1)``.

    In dataset order, the last batch kept even if short (GluonCV ``last_batch='keep'``).
    """
    h, w = _hw(data_shape)
    if transform is None:
        from .transforms.presets import YOLO3ValTransform
        transform = YOLO3ValTransform(w, h)
    return DetectionLoader(dataset, ValSample(transform), Group(stack, pad), batch_size, seed=0,
                           shuffle=False, num_workers=num_workers, last_batch="keep")


def build_faster_rcnn_train_loader(dataset: Sequence, batch_size: int = 1, seed: int = 0,
                                   num_workers: int = 0, short: Union[int, Tuple[int, int]] = 600,
                                   max_size: int = 1000, flip: bool = True, mixup: bool = False,
                                   mixup_alpha: float = 1.5, mixup_beta: float = 1.5,
                                   last_batch: str = "rollover",
                                   transform: Optional[Callable] = None,
                                   rpn_target_fn: Optional[Callable] = None,
                                   mixup_ratio: Optional[float] = None) -> TrainLoader:
    """Faster R-CNN training loader: ``(images (B,3,H,W) zero-padded, labels (B,N,7) padded -1)``.

    Images keep their resized size (short side ``short``, long side at most ``max_size``) and are
    padded at the bottom/right to the largest in the batch; labels carry the mixup weight column.

    With ``rpn_target_fn`` (``RPNTargetTransform.from_net(net)``) the workers also make the RPN
    targets and batches are ``(images, labels, rpn_cls (B,N), rpn_box (B,N,4), rpn_mask (B,N,4),
    rpn_weight (B,N))`` (:class:`FasterRCNNTrainBatchify`). ``mixup_ratio`` fixes the blend ratio
    (GluonCV: 0.5) instead of drawing it from ``Beta(mixup_alpha, mixup_beta)``.
    """
    if transform is None:
        from .transforms.presets import FasterRCNNTrainTransform
        transform = FasterRCNNTrainTransform(short=short, max_size=max_size, flip=flip)
    mixed = (MixupDetection(dataset, mixup_alpha, mixup_beta) if mixup_ratio is None
             else FixedRatioMixup(dataset, mixup_ratio))
    batchify = Group(pad_images, pad) if rpn_target_fn is None else FasterRCNNTrainBatchify()
    return TrainLoader(mixed, FasterRCNNTrainSample(transform, rpn_target_fn),
                       batchify, batch_size, seed, shuffle=True, num_workers=num_workers,
                       last_batch=last_batch, options={"mixup": bool(mixup)})


def build_faster_rcnn_val_loader(dataset: Sequence, short: int = 600, max_size: int = 1000,
                                 batch_size: int = 1, num_workers: int = 0,
                                 transform: Optional[Callable] = None) -> DetectionLoader:
    """Faster R-CNN validation loader: ``(images (B,3,H,W) zero-padded, labels (B,M,6) padded -1,
    im_scale (B,))`` where ``im_scale = original height / resized height`` maps boxes back."""
    if transform is None:
        from .transforms.presets import FasterRCNNValTransform
        transform = FasterRCNNValTransform(short, max_size)
    return DetectionLoader(dataset, ValSample(transform), Group(pad_images, pad, stack), batch_size, seed=0,
                           shuffle=False, num_workers=num_workers, last_batch="keep")
