"""Confidence intervals for ablation tables: means over seeds, paired deltas, bootstrap over images.

Every row of an ablation table is trained with the same seeds, so seed ``k`` of row A pairs with
seed ``k`` of row B. The delta of two rows is the mean of the per-seed differences and its interval
comes from those differences, which removes the variance the two rows share (the seed's data order
and initialisation). Intervals are Student-t intervals, ``mean +- t(0.975, n-1) * s / sqrt(n)``,
with the quantiles tabulated here because the package must not need scipy. A bootstrap over
validation images measures the uncertainty of the evaluation set for one model; it does not
replace seeds.
"""
import math
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = ["T_975", "t_quantile_975", "Interval", "mean_interval", "paired_delta", "bootstrap_interval",
           "format_interval"]

# t(0.975, df) for df = 1..30 (two-sided 95%); beyond 30 the normal quantile is within 2%.
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
_Z_975 = 1.960


def t_quantile_975(df: int) -> float:
    """Two-sided 95% Student-t quantile ``t(0.975, df)`` for ``df >= 1`` degrees of freedom."""
    if df < 1:
        raise ValueError("t quantile: degrees of freedom must be >= 1, got %d" % df)
    return T_975[df - 1] if df <= len(T_975) else _Z_975


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% interval; ``half`` is NaN (and ``low``/``high`` too) when ``n < 2``.

    ``n`` is the number of values (seeds, or seed pairs for a delta); ``std`` their sample standard
    deviation (ddof=1), NaN when ``n < 2``.
    """

    mean: float
    half: float
    n: int
    std: float

    @property
    def low(self) -> float:
        return self.mean - self.half

    @property
    def high(self) -> float:
        return self.mean + self.half

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of 0 (False without an interval)."""
        return not math.isnan(self.half) and (self.low > 0.0 or self.high < 0.0)


def mean_interval(values: Sequence[float]) -> Interval:
    """Mean of ``values`` (shape (n,)) with the Student-t 95% interval of the mean.

    NaN values are dropped first (a missing or undefined measurement), so ``n`` counts the rest.
    Raises ``ValueError`` when no value is left.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        raise ValueError("mean_interval: no values")
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, float("nan"), n, float("nan"))
    std = float(x.std(ddof=1))
    return Interval(mean, t_quantile_975(n - 1) * std / math.sqrt(n), n, std)


def paired_delta(after: Mapping[int, float], before: Mapping[int, float]) -> Interval:
    """Mean and 95% interval of ``after[k] - before[k]`` over the seeds ``k`` present in both.

    ``after`` and ``before`` map a seed to one measurement (e.g. mAP). Seeds present in only one
    of them (a crashed run) are left out, so ``n`` is the number of complete pairs.
    Raises ``ValueError`` when no seed pairs.
    """
    seeds = sorted(k for k in after if k in before
                   and not math.isnan(float(after[k])) and not math.isnan(float(before[k])))
    if not seeds:
        raise ValueError("paired_delta: no seed is present in both rows")
    return mean_interval([float(after[k]) - float(before[k]) for k in seeds])


def bootstrap_interval(statistic: Callable[[np.ndarray], float], num_items: int, reps: int = 1000,
                       seed: int = 0, level: float = 0.95) -> Tuple[float, float, float]:
    """Percentile bootstrap over items (e.g. validation images) of a statistic (e.g. mAP).

    Parameters
    ----------
    statistic : callable
        ``statistic(indices) -> float`` computed on the items at ``indices`` (int64, shape
        (num_items,), drawn with replacement; an item can appear several times).
    num_items : int
        Number of items to resample.
    reps : int
        Bootstrap replicates.
    seed : int
        Seed of the resampling generator, so the interval is reproducible.
    level : float
        Coverage of the interval, in (0, 1).

    Returns
    -------
    (estimate, low, high)
        ``statistic`` on all items, and the ``(1-level)/2`` and ``(1+level)/2`` percentiles of the
        replicates (replicates that return NaN are dropped).
    """
    if num_items < 1 or reps < 1 or not 0.0 < level < 1.0:
        raise ValueError("bootstrap_interval: need num_items >= 1, reps >= 1 and 0 < level < 1")
    rng = np.random.default_rng(seed)
    estimate = float(statistic(np.arange(num_items, dtype=np.int64)))
    reps_values = np.array([statistic(rng.integers(0, num_items, size=num_items)) for _ in range(reps)],
                           dtype=np.float64)
    reps_values = reps_values[~np.isnan(reps_values)]
    if reps_values.size == 0:
        return estimate, float("nan"), float("nan")
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(reps_values, [tail, 1.0 - tail])
    return estimate, float(low), float(high)


def format_interval(iv: Optional[Interval], scale: float = 100.0, signed: bool = False) -> str:
    """``'81.23 ± 0.45'`` (values times ``scale``, e.g. fractions to percent); ``'-'`` for None."""
    if iv is None:
        return "-"
    fmt = "%+.2f" if signed else "%.2f"
    text = fmt % (iv.mean * scale)
    if math.isnan(iv.half):
        return text + " (n=%d, no interval)" % iv.n
    return text + " ± %.2f" % (iv.half * scale)
