"""Visually coherent mixup for detection (paper section 3.1, GluonCV ``MixupDetection``).

Two images are blended with a ratio ``lambda ~ Beta(alpha, beta)`` on a canvas as large as the larger
of the two, both anchored at the top-left corner, so no box moves or changes size. The boxes of both
images are kept; each gets a weight column (``lambda`` for the first image, ``1 - lambda`` for the
partner) that the loss uses to weight the objects.

Unlike GluonCV, the switch is not state stored in the dataset object (which forked loader workers copy
once and never see change): ``sample`` takes ``enabled`` and the ``rng`` per call, so the loader can
send the current epoch's setting with every task.
"""
from typing import Any, Sequence, Tuple

import numpy as np


def _check_item(img: Any, label: Any, where: str) -> Tuple[np.ndarray, np.ndarray]:
    """Validate one dataset item: ``HxWx3`` uint8 image and ``(N, C>=5)`` float label."""
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"{where}: image must be an HxWx3 numpy array, got "
                         f"{type(img).__name__} with shape {getattr(img, 'shape', None)}")
    label = np.asarray(label, dtype=np.float32)
    if label.ndim != 2 or label.shape[1] < 5:
        raise ValueError(f"{where}: label must have shape (N, C>=5) [xmin, ymin, xmax, ymax, class, ...], "
                         f"got shape {label.shape}")
    return img, label


def blend(img1: np.ndarray, img2: np.ndarray, lam: float) -> np.ndarray:
    """Blend two images top-left aligned, exactly as GluonCV does.

    Parameters
    ----------
    img1, img2 : numpy.ndarray
        ``(H1, W1, 3)`` and ``(H2, W2, 3)`` images (uint8 pixel values).
    lam : float
        Weight of ``img1``; ``img2`` gets ``1 - lam``.

    Returns
    -------
    numpy.ndarray
        ``(max(H1, H2), max(W1, W2), 3)`` uint8. The float32 sum is truncated (not rounded) to uint8,
        and pixels covered by one image only are that image scaled by its weight (darker), as in GluonCV.
    """
    h1, w1 = img1.shape[:2]
    h2, w2 = img2.shape[:2]
    out = np.zeros((max(h1, h2), max(w1, w2), 3), dtype=np.float32)
    lam32 = np.float32(lam)
    np.multiply(img1, lam32, out=out[:h1, :w1], dtype=np.float32)
    out[:h2, :w2] += np.multiply(img2, np.float32(1.0) - lam32, dtype=np.float32)
    return out.astype(np.uint8)


def with_weight(label: np.ndarray, weight: float) -> np.ndarray:
    """Append the blend-weight column: ``(N, C) -> (N, C+1)`` float32."""
    col = np.full((label.shape[0], 1), weight, dtype=np.float32)
    return np.hstack((label.astype(np.float32, copy=False), col))


class MixupDetection:
    """Mixup wrapper around a detection dataset of ``(HxWx3 uint8 image, (N, C) float32 label)`` items.

    Parameters
    ----------
    dataset : Sequence
        Indexable dataset with ``len``; items are ``(image, label)`` as in docs/architecture.md.
    alpha, beta : float
        Parameters of the Beta distribution the blend ratio is drawn from (paper: 1.5, 1.5).
    """

    def __init__(self, dataset: Sequence, alpha: float = 1.5, beta: float = 1.5) -> None:
        if not (alpha > 0 and beta > 0):
            raise ValueError(f"MixupDetection: alpha and beta must be > 0, got alpha={alpha}, beta={beta}")
        self.dataset = dataset
        self.alpha = float(alpha)
        self.beta = float(beta)

    def __len__(self) -> int:
        return len(self.dataset)

    def _item(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        img, label = self.dataset[index]
        return _check_item(img, label, f"{type(self.dataset).__name__}[{index}]")

    def draw(self, index: int, rng: np.random.Generator) -> Tuple[float, int]:
        """Draw ``(lambda, partner index)`` for sample ``index``; ``lambda`` clipped to ``[0, 1]``.

        The partner is uniform over all indices except ``index`` (``-1`` when the dataset has one item).
        Two draws from ``rng``, always in this order, so results are reproducible.
        """
        n = len(self.dataset)
        lam = float(np.clip(rng.beta(self.alpha, self.beta), 0.0, 1.0))
        if n < 2:
            return lam, -1
        partner = int(rng.integers(n - 1))
        if partner >= index:
            partner += 1
        return lam, partner

    def mix(self, index: int, lam: float, partner: int) -> Tuple[np.ndarray, np.ndarray]:
        """Blend item ``index`` (weight ``lam``) with item ``partner`` (weight ``1 - lam``).

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            uint8 image ``(max H, max W, 3)`` and float32 label ``(N1 + N2, C + 1)``; with
            ``lam >= 1`` or no partner, item ``index`` unchanged with a weight column of ones.
        """
        img1, label1 = self._item(index)
        if lam >= 1.0 or partner < 0:
            return img1, with_weight(label1, 1.0)
        img2, label2 = self._item(partner)
        if label1.shape[1] != label2.shape[1]:
            raise ValueError(f"MixupDetection: items {index} and {partner} have labels with different "
                             f"column counts ({label1.shape[1]} vs {label2.shape[1]})")
        lam32 = np.float32(lam)
        label = np.vstack((with_weight(label1, lam32), with_weight(label2, np.float32(1.0) - lam32)))
        return blend(img1, img2, lam), label

    def sample(self, index: int, rng: np.random.Generator, enabled: bool = True
               ) -> Tuple[np.ndarray, np.ndarray]:
        """Item ``index``, mixed with a random partner when ``enabled``.

        Parameters
        ----------
        index : int
            Dataset index of the first image.
        rng : numpy.random.Generator
            Source of ``lambda`` and the partner (untouched when ``enabled`` is False).
        enabled : bool
            Mixup switch for the current epoch.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            ``(H, W, 3)`` uint8 image and ``(N, C + 1)`` float32 label whose last column is the weight.
        """
        if not enabled:
            img, label = self._item(index)
            return img, with_weight(label, 1.0)
        lam, partner = self.draw(index, rng)
        return self.mix(index, lam, partner)

    def __getitem__(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        """Item ``index`` without mixup (weight column of ones); use ``sample`` to mix."""
        img, label = self._item(index)
        return img, with_weight(label, 1.0)
