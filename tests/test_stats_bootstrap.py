"""Bootstrap intervals: coverage on known distributions; fairlearn as the reference."""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn.metrics import MetricFrame

from audit_sdk.group_statistics import compare_groups, mean_of_true
from audit_sdk.stats.bootstrap import disparity_ci, mean_ci


def test_mean_ci_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(0)
    hits = 0
    reps = 300
    for _ in range(reps):
        x = rng.exponential(scale=2.0, size=80)  # skewed, like per-user NDCG
        iv = mean_ci(x, confidence=0.95, n_resamples=400, rng=rng)
        hits += iv.low <= 2.0 <= iv.high
    assert 0.90 <= hits / reps <= 0.985


def test_mean_ci_handles_constant_and_empty_samples() -> None:
    rng = np.random.default_rng(1)
    iv = mean_ci(np.full(10, 0.5), rng=rng)
    assert (iv.estimate, iv.low, iv.high, iv.method) == (0.5, 0.5, 0.5, "degenerate")
    empty = mean_ci(np.array([np.nan]), rng=rng)
    assert empty.n == 0 and np.isnan(empty.estimate)


def test_disparity_matches_fairlearn_point_estimates_and_intervals() -> None:
    rng = np.random.default_rng(2)
    groups = {
        "a": rng.normal(1.0, 0.3, 400),
        "b": rng.normal(0.8, 0.3, 300),
        "c": rng.normal(0.95, 0.3, 200),
    }
    values = np.concatenate(list(groups.values()))
    labels = np.concatenate([[g] * len(v) for g, v in groups.items()])
    mf = MetricFrame(
        metrics=mean_of_true,
        y_true=values,
        y_pred=values,
        sensitive_features=labels,
        n_boot=400,
        ci_quantiles=[0.025, 0.975],
        random_state=3,
    )
    ours = disparity_ci(groups, n_resamples=2000, rng=np.random.default_rng(4))
    assert ours.ratio.estimate == pytest.approx(mf.ratio())
    assert ours.difference.estimate == pytest.approx(mf.difference())
    assert (ours.worst, ours.best) == ("b", "a")
    # fairlearn's percentile intervals of the plug-in ratio ignore the selection of the worst
    # and best group; our simultaneous bounds include it, so they contain fairlearn's.
    lo, hi = mf.ratio_ci()
    assert ours.ratio.low <= lo + 0.01 and ours.ratio.high >= hi - 0.01
    dlo, dhi = mf.difference_ci()
    assert ours.difference.low <= dlo + 0.01 and ours.difference.high >= dhi - 0.01
    # ...but not absurdly wider: the groups here clearly differ, and the bounds say so.
    assert ours.ratio.high < 0.9 and ours.difference.low > 0.1


def test_compare_groups_flags_small_groups_and_leaves_them_out() -> None:
    import pandas as pd

    rng = np.random.default_rng(5)
    values = pd.Series(
        np.concatenate([rng.random(100), rng.random(100) * 0.5, rng.random(5) * 0.01])
    )
    groups = pd.Series(["big"] * 100 + ["mid"] * 100 + ["tiny"] * 5)
    result = compare_groups(
        values, groups, min_group_size=30, confidence=0.95, n_resamples=300, rng=rng
    )
    rows = {r.group: r for r in result.rows}
    assert rows["tiny"].warning and "too few to judge" in rows["tiny"].warning
    assert rows["tiny"].n == 5
    assert result.too_small == ["tiny"]
    assert result.disparity is not None
    assert result.disparity.worst == "mid"  # tiny would have been worst, but cannot be judged
    for row in result.rows:
        assert row.ci_low is not None and row.ci_high is not None
        assert row.ci_low <= row.estimate <= row.ci_high
