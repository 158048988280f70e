"""YOLOv3 data paths: dataset -> mixup -> transform -> targets -> batch, all inside the loader workers.

The transforms come from ``gluon_bof.data.transforms.presets`` and the target generator from
``gluon_bof.model.yolo.targets``; every builder accepts a ready-made ``transform`` (and
``target_generator``) instead, e.g. for custom augmentation.
"""
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from ...data.batchify import Group, pad, stack
from ...data.loader import DetectionLoader, Shape
from ...data.mixup import MixupDetection
from ...data.pipelines import FixedRatioMixup, TrainLoader, ValSample, mixed_sample
from ...data.transforms.presets import YOLO3TrainTransform, YOLO3ValTransform
from ...model.yolo.targets import YOLOv3TargetGenerator

# Square sizes of the paper's random-shape training (section 3.6): 320, 352, ..., 608.
PAPER_RANDOM_SHAPES: Tuple[int, ...] = tuple(range(320, 609, 32))
STRIDE = 32


def parse_random_shapes(text: str) -> Tuple[int, ...]:
    """``'320:608'`` -> (320, 352, ..., 608) in steps of 32; ``'256,288'`` -> (256, 288).

    Raises ``ValueError`` naming the rule broken: sizes must be positive multiples of the deepest
    head's stride (32), and a range needs MIN <= MAX.
    """
    text = str(text)
    try:
        if ":" in text:
            lo, hi = (int(v) for v in text.split(":"))
            if lo > hi:
                raise ValueError("--random-shapes %r: MIN %d is larger than MAX %d (expected MIN:MAX, e.g. "
                                 "320:608)" % (text, lo, hi))
            shapes = tuple(range(lo, hi + 1, STRIDE))
            if lo % STRIDE or hi % STRIDE:
                shapes = ()
        else:
            shapes = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as err:
        if "MIN" in str(err):
            raise
        raise ValueError("--random-shapes %r: expected MIN:MAX or a comma-separated list of sizes, e.g. 320:608"
                         % text) from None
    if not shapes or any(s <= 0 or s % STRIDE for s in shapes):
        raise ValueError("--random-shapes %r: need sizes that are positive multiples of 32 (stride of the "
                         "deepest head), e.g. 320:608 or 256,288,320" % text)
    return shapes


class YOLO3TrainSample:
    """``sample_fn`` of the YOLOv3 train loader.

    Returns ``(img (3,H,W) float32, objectness (A,1), center (A,2), scale (A,2), weights (A,2),
    class (A,K), gt_boxes (M,4))`` for one sample; ``dataset`` is a ``MixupDetection``.
    ``per_box_weights=False`` sets every box's mixup weight (the label's last column) to 1 before the
    targets are made (the paper's "0.5:0.5 evenly" row: blended images, unweighted losses).
    """

    def __init__(self, transform: Callable, target_generator: Callable, data_shape: Shape,
                 per_box_weights: bool = True) -> None:
        self.transform = transform
        self.target_generator = target_generator
        self.data_shape = data_shape
        self.per_box_weights = per_box_weights

    def __call__(self, dataset: MixupDetection, index: int, rng: np.random.Generator,
                 shape: Optional[Shape], options: Dict[str, Any]) -> tuple:
        img, label, aug_rng = mixed_sample(dataset, index, rng, options)
        img, label = self.transform(img, label, aug_rng, shape=shape or self.data_shape)
        if not self.per_box_weights:
            label = np.array(label, dtype=np.float32)
            label[:, -1] = 1.0
        targets = self.target_generator(label, input_hw=tuple(img.shape[1:3]), has_weight=True)
        return (img, *targets, np.asarray(label[:, :4], dtype=np.float32))


def _hw(data_shape: Union[int, Shape]) -> Shape:
    if np.isscalar(data_shape):
        return int(data_shape), int(data_shape)  # type: ignore[arg-type]
    h, w = data_shape  # type: ignore[misc]
    return int(h), int(w)


def build_yolo3_train_loader(dataset: Sequence, num_classes: int, anchors: Any, strides: Sequence[int],
                             batch_size: int, seed: int, num_workers: int = 0,
                             data_shape: Union[int, Shape] = 416, random_shape: bool = True,
                             shapes: Sequence[Union[int, Shape]] = PAPER_RANDOM_SHAPES, shape_interval: int = 10,
                             mixup: bool = False, mixup_alpha: float = 1.5, mixup_beta: float = 1.5,
                             label_smooth: bool = False, color_jitter: bool = True, expand: bool = True,
                             crop: bool = True, flip: bool = True, random_interp: bool = True,
                             last_batch: str = "rollover", transform: Optional[Callable] = None,
                             target_generator: Optional[Callable] = None,
                             mixup_mode: str = "weighted") -> TrainLoader:
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
    mixup_mode : {'weighted', 'even'}
        ``'weighted'``: blend ratio from ``Beta(mixup_alpha, mixup_beta)``, each box's loss weighted by
        its image's ratio (the paper's Beta rows); ``'even'``: ratio 0.5 and unweighted boxes.
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
        transform = YOLO3TrainTransform(w, h, color_jitter=color_jitter, expand=expand, crop=crop,
                                        flip=flip, random_interp=random_interp)
    if target_generator is None:
        target_generator = YOLOv3TargetGenerator(num_classes, anchors, strides, label_smooth=label_smooth)
    if mixup_mode not in ("weighted", "even"):
        raise ValueError("build_yolo3_train_loader: mixup_mode must be 'weighted' or 'even', got %r" % (mixup_mode,))
    even = mixup_mode == "even"
    mixed = FixedRatioMixup(dataset, 0.5) if even else MixupDetection(dataset, mixup_alpha, mixup_beta)
    return TrainLoader(mixed, YOLO3TrainSample(transform, target_generator, (h, w), per_box_weights=not even),
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
        transform = YOLO3ValTransform(w, h)
    return DetectionLoader(dataset, ValSample(transform), Group(stack, pad), batch_size, seed=0,
                           shuffle=False, num_workers=num_workers, last_batch="keep")
