"""Numpy batchify functions: turn a list of per-sample tuples into a tuple of batch arrays.

Numpy counterparts of GluonCV's ``Tuple(Stack(), Pad(pad_val=-1))``; they return plain numpy arrays
(no shared-memory NDArrays, see spec quirk 2), which the training loop moves to its devices.
"""
from typing import Callable, List, Sequence

import numpy as np


def stack(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Stack equally shaped arrays along a new axis 0: ``B x (d0, ...) -> (B, d0, ...)``."""
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"batchify.stack: all samples must have the same shape, got {sorted(shapes)}")
    return np.stack(arrays)


def pad(arrays: Sequence[np.ndarray], pad_val: float = -1.0, min_rows: int = 1) -> np.ndarray:
    """Pad arrays of shape ``(N_i, ...)`` with ``pad_val`` to ``(B, max(N_i, min_rows), ...)``.

    ``min_rows=1`` keeps the batch shape valid when no sample has a box (GluonCV's ``Pad`` would
    produce a zero-size axis).
    """
    arrays = [np.asarray(a) for a in arrays]
    tails = {a.shape[1:] for a in arrays}
    if len(tails) != 1:
        raise ValueError(f"batchify.pad: samples may differ only in axis 0, got shapes "
                         f"{[a.shape for a in arrays]}")
    rows = max(max(a.shape[0] for a in arrays), min_rows)
    out = np.full((len(arrays), rows) + arrays[0].shape[1:], pad_val, dtype=arrays[0].dtype)
    for i, a in enumerate(arrays):
        out[i, :a.shape[0]] = a
    return out


def pad_images(arrays: Sequence[np.ndarray], pad_val: float = 0.0) -> np.ndarray:
    """Pad ``(C, H_i, W_i)`` images at the bottom/right to ``(B, C, max H, max W)``."""
    chans = {a.shape[0] for a in arrays}
    if len(chans) != 1 or any(a.ndim != 3 for a in arrays):
        raise ValueError(f"batchify.pad_images: samples must be (C, H, W) with equal C, got "
                         f"{[a.shape for a in arrays]}")
    h = max(a.shape[1] for a in arrays)
    w = max(a.shape[2] for a in arrays)
    out = np.full((len(arrays), arrays[0].shape[0], h, w), pad_val, dtype=arrays[0].dtype)
    for i, a in enumerate(arrays):
        out[i, :, :a.shape[1], :a.shape[2]] = a
    return out


class Group:
    """Apply one batchify function per tuple position: ``Group(stack, pad)([(a0, b0), (a1, b1)])``.

    Parameters
    ----------
    *fns : callable
        ``fns[k]`` receives the list of the samples' k-th elements.
    """

    def __init__(self, *fns: Callable[[List[np.ndarray]], np.ndarray]) -> None:
        self.fns = fns

    def __call__(self, samples: Sequence[tuple]) -> tuple:
        if not samples:
            raise ValueError("batchify.Group: empty batch")
        for s in samples:
            if len(s) != len(self.fns):
                raise ValueError(f"batchify.Group: expected samples of {len(self.fns)} elements, got {len(s)}")
        return tuple(fn([s[k] for s in samples]) for k, fn in enumerate(self.fns))
