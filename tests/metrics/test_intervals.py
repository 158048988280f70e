import math

import numpy as np
import pytest

from gluon_bof.metrics.intervals import (T_975, bootstrap_interval, format_interval, mean_interval, paired_delta,
                                         t_quantile_975)


def test_t_quantiles_for_small_samples_are_the_tabulated_ones():
    expected = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262]
    assert [t_quantile_975(n - 1) for n in range(2, 11)] == expected
    assert T_975[:9] == tuple(expected)
    assert t_quantile_975(1000) == pytest.approx(1.96)
    with pytest.raises(ValueError):
        t_quantile_975(0)


def test_mean_interval_by_hand():
    iv = mean_interval([0.80, 0.82, 0.81])
    assert iv.mean == pytest.approx(0.81)
    assert iv.std == pytest.approx(0.01)
    assert iv.half == pytest.approx(4.303 * 0.01 / math.sqrt(3))  # 0.024843
    assert (iv.low, iv.high) == pytest.approx((0.81 - 0.0248434, 0.81 + 0.0248434), abs=1e-6)
    one = mean_interval([0.5, float("nan")])
    assert one.n == 1 and math.isnan(one.half) and not one.excludes_zero


def test_paired_delta_by_hand_and_seed_pairing():
    before = {0: 0.80, 1: 0.82, 2: 0.81}
    after = {0: 0.83, 1: 0.84, 2: 0.80}
    d = paired_delta(after, before)  # differences 0.03, 0.02, -0.01
    assert d.mean == pytest.approx(0.04 / 3)
    assert d.half == pytest.approx(4.303 * 0.0208167 / math.sqrt(3), rel=1e-5)  # 0.051716
    assert not d.excludes_zero
    # A constant gain on very different seeds: the rows' own intervals overlap, the paired one excludes 0.
    before = {0: 0.70, 1: 0.80, 2: 0.90}
    after = {0: 0.710, 1: 0.812, 2: 0.911}
    d = paired_delta(after, before)
    assert d.mean == pytest.approx(0.011) and d.half == pytest.approx(4.303 * 0.001 / math.sqrt(3))
    assert d.excludes_zero
    assert mean_interval(list(after.values())).low < mean_interval(list(before.values())).high
    # A seed missing from one row (crashed run) is left out of the pairs.
    d = paired_delta({0: 0.5, 1: 0.6}, {1: 0.4, 2: 0.1})
    assert d.n == 1 and d.mean == pytest.approx(0.2)
    with pytest.raises(ValueError):
        paired_delta({0: 0.5}, {1: 0.5})


def test_bootstrap_over_items_is_reproducible_and_brackets_the_estimate():
    values = np.linspace(0.0, 1.0, 50)
    est, low, high = bootstrap_interval(lambda idx: float(values[idx].mean()), 50, reps=400, seed=3)
    assert est == pytest.approx(0.5)
    assert low < est < high
    # standard error of the mean of U-like values: 0.2946 / sqrt(50) = 0.0417; 95% half-width ~0.082
    assert high - low == pytest.approx(2 * 1.96 * values.std(ddof=1) / math.sqrt(50), rel=0.25)
    assert bootstrap_interval(lambda idx: float(values[idx].mean()), 50, reps=400, seed=3) == (est, low, high)


def test_format_interval_in_percent():
    assert format_interval(mean_interval([0.80, 0.82, 0.81])) == "81.00 ± 2.48"
    assert format_interval(paired_delta({0: 0.6}, {0: 0.5}), signed=True) == "+10.00 (n=1, no interval)"
    assert format_interval(None) == "-"
