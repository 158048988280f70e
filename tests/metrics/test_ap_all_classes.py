"""``ranked_curves`` / ``class_aps`` (every class at once) give exactly the per-class numbers."""
import warnings

import numpy as np
import pytest

from gluon_bof.metrics.ap import class_aps, ranked_curves, recall_precision, voc_ap


def classes(rng):
    """Ranked matches of 9 classes, with the edge cases: no detection (with and without ground
    truth), ignored detections first, ground truth but nothing recalled, a single detection."""
    sizes = [0, 0, 1, 5, 40, 3, 0, 200, 2]
    n_pos = [0, 4, 1, 3, 10, 0, 0, 37, 2]
    parts = [rng.integers(-1, 2, size).astype(np.int8) for size in sizes]
    parts[3][:2] = -1          # precision 0/0 at first
    parts[8][:] = 0            # nothing recalled
    return parts, np.array(n_pos)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("use_07_metric", [True, False])
def test_all_classes_at_once_equal_class_by_class(seed, use_07_metric):
    parts, n_pos = classes(np.random.default_rng(seed))
    bounds = np.concatenate(([0], np.cumsum([p.size for p in parts])))
    recall, precision = ranked_curves(np.concatenate(parts), bounds, n_pos)
    aps = class_aps(recall, precision, bounds, n_pos, use_07_metric)
    for c, part in enumerate(parts):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rec, prec = recall_precision(part, int(n_pos[c]))
        expected = voc_ap(rec, prec, use_07_metric)
        if np.isnan(expected):
            assert np.isnan(aps[c]) and n_pos[c] == 0
            continue
        assert aps[c] == expected  # bit for bit, not approximately
        np.testing.assert_array_equal(recall[bounds[c]:bounds[c + 1]], rec)
        np.testing.assert_array_equal(precision[bounds[c]:bounds[c + 1]], np.nan_to_num(prec))
    assert aps[1] == 0.0 and aps[8] == 0.0 and np.isnan(aps[[0, 5, 6]]).all()


def test_eleven_points_keep_the_devkit_thresholds():
    # The thresholds are np.arange(0, 1.1, 0.1): 0.30000000000000004 is just above recall 3/10, so
    # that point takes the best precision at recall >= 0.4 (6/11), not the 1.0 reached at 0.3; and
    # 0.6000000000000001 is never reached by the final recall 6/10.
    matches = np.array([1, 1, 1] + [0] * 5 + [1] * 3 + [0] * 3, np.int8)
    recall, precision = ranked_curves(matches, np.array([0, matches.size]), np.array([10]))
    assert recall[2] == 0.3 and recall[-1] == 0.6
    ap = class_aps(recall, precision, np.array([0, matches.size]), np.array([10]), True)[0]
    assert ap == pytest.approx((3 * 1.0 + 3 * 6 / 11) / 11, abs=1e-15)
