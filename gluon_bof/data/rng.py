"""Reproducible randomness for the data pipeline.

Every random choice of the data pipeline (augmentation parameters, mixup ratio and partner, random
training shape, shuffling) is drawn from a ``numpy.random.Generator`` derived from integers only:
``(seed, epoch, index)``. No code in ``gluon_bof.data`` touches the global ``np.random`` or ``random``
state. Consequences:

* forked data-loader workers never repeat each other's draws (GluonCV bug: they share numpy's state);
* a resumed run sees exactly the same samples as an uninterrupted one;
* the result does not depend on which worker processed a sample, nor on the number of workers.
"""
from typing import Sequence

import numpy as np

# Distinct streams so that, e.g., the shuffling of epoch 3 is independent of sample 3's augmentation.
STREAM_SAMPLE = 0
STREAM_SHUFFLE = 1
STREAM_SHAPE = 2


def make_rng(seed: int, *keys: int) -> np.random.Generator:
    """A generator that depends only on ``seed`` and the integer ``keys`` (e.g. stream, epoch, index)."""
    entropy: Sequence[int] = [int(seed) & 0xFFFFFFFF] + [int(k) & 0xFFFFFFFFFFFFFFFF for k in keys]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """Generator for all random choices made while producing sample ``index`` in ``epoch``."""
    return make_rng(seed, STREAM_SAMPLE, epoch, index)
