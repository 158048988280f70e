"""Numpy batchify functions: turn a list of per-sample tuples into a tuple of batch arrays.

Numpy counterparts of GluonCV's ``Tuple(Stack(), Pad(pad_val=-1))``; they return plain numpy arrays
(GluonCV's shared-memory NDArrays make a hybridized net fail with "CachedOp requires all inputs to
live on the same context"), which the training loop moves to its devices.

Every function takes an optional ``alloc(shape, dtype) -> ndarray`` that supplies the output array.
The loader passes one that carves arrays out of a reusable shared-memory buffer, so a batch is
written once, straight where the main process reads it (fresh memory costs a page fault per 4 KiB,
which can cost more than the copy itself). Without ``alloc`` a new array is made.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

Alloc = Callable[[Tuple[int, ...], np.dtype], np.ndarray]


def _new(shape: Tuple[int, ...], dtype: np.dtype, alloc: Optional[Alloc]) -> np.ndarray:
    return np.empty(shape, dtype) if alloc is None else alloc(shape, np.dtype(dtype))


def stack(arrays: Sequence[np.ndarray], alloc: Optional[Alloc] = None) -> np.ndarray:
    """Stack equally shaped arrays along a new axis 0: ``B x (d0, ...) -> (B, d0, ...)``."""
    shapes = {np.shape(a) for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"batchify.stack: all samples must have the same shape, got {sorted(shapes)}")
    if alloc is None:
        return np.stack(arrays)
    dtype = np.result_type(*[np.asarray(a).dtype for a in arrays])  # as np.stack, no value-based casting
    out = _new((len(arrays),) + shapes.pop(), dtype, alloc)
    for i, a in enumerate(arrays):
        out[i] = a
    return out


def pad(arrays: Sequence[np.ndarray], pad_val: float = -1.0, min_rows: int = 1,
        alloc: Optional[Alloc] = None) -> np.ndarray:
    """Pad arrays of shape ``(N_i, ...)`` with ``pad_val`` to ``(B, max(N_i, min_rows), ...)``.

    ``min_rows=1`` keeps the batch shape valid when no sample has a box (GluonCV's ``Pad`` would
    produce a zero-size axis).
    """
    arrays = [np.asarray(a) for a in arrays]
    tails = {a.shape[1:] for a in arrays}
    if len(tails) != 1 or any(a.ndim == 0 for a in arrays):
        raise ValueError(f"batchify.pad: samples may differ only in axis 0, got shapes "
                         f"{[a.shape for a in arrays]}")
    rows = max(max(a.shape[0] for a in arrays), min_rows)
    out = _new((len(arrays), rows) + arrays[0].shape[1:], arrays[0].dtype, alloc)
    for i, a in enumerate(arrays):
        out[i, :a.shape[0]] = a
        out[i, a.shape[0]:] = pad_val
    return out


def pad_images(arrays: Sequence[np.ndarray], pad_val: float = 0.0, alloc: Optional[Alloc] = None) -> np.ndarray:
    """Pad ``(C, H_i, W_i)`` images at the bottom/right to ``(B, C, max H, max W)``.

    Only the padding is filled, so each pixel of the batch is written once.
    """
    chans = {a.shape[0] for a in arrays}
    if len(chans) != 1 or any(a.ndim != 3 for a in arrays):
        raise ValueError(f"batchify.pad_images: samples must be (C, H, W) with equal C, got "
                         f"{[a.shape for a in arrays]}")
    h = max(a.shape[1] for a in arrays)
    w = max(a.shape[2] for a in arrays)
    out = _new((len(arrays), arrays[0].shape[0], h, w), arrays[0].dtype, alloc)
    for i, a in enumerate(arrays):
        ah, aw = a.shape[1:]
        out[i, :, :ah, :aw] = a
        out[i, :, :ah, aw:] = pad_val
        out[i, :, ah:, :] = pad_val
    return out


class Group:
    """Apply one batchify function per tuple position: ``Group(stack, pad)([(a0, b0), (a1, b1)])``.

    Parameters
    ----------
    *fns : callable
        ``fns[k]`` receives the list of the samples' k-th elements. The functions of this module
        (``ALLOC_AWARE``) write into ``alloc``'s arrays; others are called without it.
    """

    accepts_alloc = True  # the loader passes ``alloc=`` to batchify functions carrying this flag

    def __init__(self, *fns: Callable[..., np.ndarray]) -> None:
        self.fns = fns

    def __call__(self, samples: Sequence[tuple], alloc: Optional[Alloc] = None) -> tuple:
        if not samples:
            raise ValueError("batchify.Group: empty batch")
        for s in samples:
            if len(s) != len(self.fns):
                raise ValueError(f"batchify.Group: expected samples of {len(self.fns)} elements, got {len(s)}")
        out = []
        for k, fn in enumerate(self.fns):
            column: List[np.ndarray] = [s[k] for s in samples]
            out.append(fn(column, alloc=alloc) if alloc is not None and fn in ALLOC_AWARE else fn(column))
        return tuple(out)


ALLOC_AWARE = {stack, pad, pad_images}
