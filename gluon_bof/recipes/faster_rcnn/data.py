"""Faster R-CNN data paths: dataset -> mixup -> transform -> RPN targets -> batch, in the loader workers.

Training images keep their resized size (short side, long side capped) and are zero-padded at the
bottom/right to the largest of the batch; the RPN targets are made in the workers as GluonCV does.
Validation batches carry ``im_scale`` so detections and ground truth are compared in original image
coordinates (:class:`OriginalCoordinateLoader`).
"""
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from ...data.batchify import Group, pad, pad_images, stack
from ...data.loader import DetectionLoader, Shape
from ...data.mixup import MixupDetection
from ...data.pipelines import FixedRatioMixup, TrainLoader, ValSample, mixed_sample
from ...data.transforms.presets import FasterRCNNTrainTransform, FasterRCNNValTransform
from ...model.rcnn.rpn_targets import pad_rpn_targets


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
        img, label, aug_rng = mixed_sample(dataset, index, rng, options)
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
        if not samples or any(len(s) != 6 for s in samples):
            raise ValueError("FasterRCNNTrainBatchify: samples must be (img, label, 4 RPN targets), got "
                             "lengths %s" % sorted({len(s) for s in samples}))
        images = pad_images([s[0] for s in samples])
        labels = pad([s[1] for s in samples])
        return (images, labels, *pad_rpn_targets([s[2:] for s in samples]))


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
        transform = FasterRCNNValTransform(short, max_size)
    return DetectionLoader(dataset, ValSample(transform), Group(pad_images, pad, stack), batch_size, seed=0,
                           shuffle=False, num_workers=num_workers, last_batch="keep")


class OriginalCoordinateLoader:
    """Validation batches with the ground truth in original image coordinates (rows of class >= 0
    multiplied by ``im_scale``), to pair with :func:`to_original`."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def iter_epoch(self, epoch: int = 0, *args, **kwargs):
        for images, labels, im_scale, *rest in self.loader.iter_epoch(epoch, *args, **kwargs):
            labels = np.array(labels, dtype=np.float32)
            valid = labels[..., 4:5] >= 0
            scaled = labels[..., :4] * np.asarray(im_scale, dtype=np.float32).reshape(-1, 1, 1)
            labels[..., :4] = np.where(valid, scaled, labels[..., :4])
            yield (images, labels, im_scale, *rest)

    def __len__(self) -> int:
        return len(self.loader)
