"""The blocked Poisson-weight bootstrap: reference agreement, coverage over seeds, and results
that do not depend on the memory budget's block size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame
from scipy import stats

from audit_sdk.errors import ConfigError
from audit_sdk.group_statistics import (
    GroupComparison,
    compare_groups,
    compare_groups_many,
    mean_of_true,
)
from audit_sdk.memory_budget import (
    MemoryBudget,
    MemoryBudgetError,
    budget_from_config,
    parse_memory_size,
    use_memory_budget,
)
from audit_sdk.stats.bootstrap import mean_ci, mean_cis
from audit_sdk.stats.resampling_weights import POISSON_TABLE, poisson_weight_blocks


def test_poisson_table_matches_poisson_1_to_within_2_to_the_minus_16() -> None:
    shares = np.bincount(POISSON_TABLE, minlength=12) / len(POISSON_TABLE)
    assert np.abs(shares - stats.poisson.pmf(np.arange(12), 1.0)).max() <= 2**-16


def test_weights_do_not_depend_on_the_block_size() -> None:
    def draw(budget: MemoryBudget) -> np.ndarray:
        with use_memory_budget(budget):
            blocks = list(poisson_weight_blocks(1001, 50, np.random.default_rng(7)))
        return np.concatenate(blocks)

    whole = draw(MemoryBudget())
    tiny = MemoryBudget(4 * 7 * 1004 * 3)  # three resamples a block
    assert len(list(poisson_weight_blocks(1001, 50, np.random.default_rng(7)))) == 1
    np.testing.assert_array_equal(draw(tiny), whole)
    assert whole.mean() == pytest.approx(1.0, abs=0.01)
    assert whole.var() == pytest.approx(1.0, abs=0.03)


def test_bca_interval_agrees_with_scipy_bca() -> None:
    rng = np.random.default_rng(3)
    x = rng.lognormal(0.0, 1.0, size=300)  # skewed: BCa's corrections matter
    ours = mean_ci(x, n_resamples=20_000, rng=np.random.default_rng(4))
    ref = stats.bootstrap(
        (x,), np.mean, n_resamples=20_000, method="BCa", random_state=np.random.default_rng(5)
    ).confidence_interval
    width = ref.high - ref.low
    assert ours.method == "bootstrap-BCa"
    assert ours.low == pytest.approx(ref.low, abs=0.05 * width)
    assert ours.high == pytest.approx(ref.high, abs=0.05 * width)


def test_group_intervals_cover_the_true_means_over_seeds() -> None:
    """Each group's 95% interval covers its true mean about 95% of the time (skewed values,
    groups of 40 to 200 users)."""
    sizes, true_means = [40, 90, 200], [0.1, 0.2, 0.3]
    hits = np.zeros(3)
    reps = 200
    for seed in range(reps):
        rng = np.random.default_rng(seed)
        values = np.concatenate(
            [rng.exponential(m, n) for m, n in zip(true_means, sizes, strict=True)]
        )
        labels = np.repeat(["a", "b", "c"], sizes)
        result = compare_groups(
            pd.Series(values),
            pd.Series(labels),
            min_group_size=30,
            confidence=0.95,
            n_resamples=400,
            rng=rng,
        )
        for g, row in enumerate(result.rows):
            hits[g] += row.ci_low <= true_means[g] <= row.ci_high
    coverage = hits / reps
    assert np.all(coverage >= 0.90) and np.all(coverage <= 0.99), coverage


def test_compare_groups_estimates_equal_fairlearn_and_ignore_the_budget() -> None:
    rng = np.random.default_rng(11)
    values = pd.Series(np.r_[rng.random(500), [np.nan, np.inf], rng.random(300) * 0.7])
    groups = pd.Series(["25-34"] * 250 + ["<25"] * 252 + ["55+"] * 300)
    groups.iloc[3] = None

    def run(budget: MemoryBudget) -> GroupComparison:
        with use_memory_budget(budget):
            return compare_groups(
                values,
                groups,
                min_group_size=30,
                confidence=0.95,
                n_resamples=300,
                rng=np.random.default_rng(2),
            )

    result = run(MemoryBudget())
    ok = np.isfinite(values.to_numpy()) & groups.notna().to_numpy()
    frame = MetricFrame(
        metrics=mean_of_true,
        y_true=values[ok].to_numpy(),
        y_pred=values[ok].to_numpy(),
        sensitive_features=groups[ok].to_numpy(),
    )
    assert [r.group for r in result.rows] == ["<25", "25-34", "55+"]  # natural order
    for row in result.rows:
        assert row.estimate == pytest.approx(frame.by_group[row.group], rel=1e-12)
        assert row.n == int((groups[ok] == row.group).sum())
    assert result.disparity is not None
    assert result.disparity.ratio.estimate == pytest.approx(frame.ratio(), rel=1e-12)
    assert result.disparity.difference.estimate == pytest.approx(frame.difference(), rel=1e-12)
    # Five resamples a block: the same draws; sums agree to float32 rounding.
    small = run(MemoryBudget(4 * 7 * 800 * 5))
    for a, b in zip(small.rows, result.rows, strict=True):
        assert (a.ci_low, a.ci_high) == pytest.approx((b.ci_low, b.ci_high), rel=1e-6)
    assert small.disparity is not None
    assert small.disparity.critical_value == pytest.approx(
        result.disparity.critical_value, rel=1e-6
    )


def test_memory_sizes_parse_with_decimal_and_binary_units() -> None:
    assert parse_memory_size("4GB") == 4 * 10**9
    assert parse_memory_size("4GiB") == parse_memory_size("4G") == 4 * 2**30
    assert parse_memory_size("1.5 MB") == 1_500_000
    assert parse_memory_size("2048") == 2048
    assert budget_from_config(None).limit_bytes is None


@pytest.mark.parametrize("bad", ["four gigs", "4 XB", "0GB", ""])
def test_a_bad_memory_size_is_one_clear_error(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"execution\.max_memory") as info:
        parse_memory_size(bad)
    assert "Traceback" not in str(info.value)


def test_too_little_memory_stops_at_once_saying_how_much_is_needed() -> None:
    budget = budget_from_config("1MB")
    with pytest.raises(MemoryBudgetError, match=r"at least 28\.0 MB"):
        budget.check_audit_fits(n_users=1_000_000, n_items=2000)
    with use_memory_budget(budget), pytest.raises(MemoryBudgetError, match="bootstrap draw"):
        mean_ci(np.arange(1_000_000.0), rng=np.random.default_rng(0))
    budget_from_config("1GB").check_audit_fits(n_users=1_000_000, n_items=20_000)


def test_comparisons_from_one_weight_stream_keep_estimates_and_coverage() -> None:
    """Several (metric, attribute) pairs resampled together, also split into packs by a small
    budget: the same point estimates as one at a time, and intervals that still cover."""
    hits, reps = 0, 100
    for seed in range(reps):
        rng = np.random.default_rng(seed)
        a = pd.Series(rng.exponential(0.2, 400))
        b = pd.Series(rng.normal(1.0, 0.5, 400))
        g1 = pd.Series(rng.integers(0, 3, 400).astype(str))
        g2 = pd.Series(rng.integers(0, 4, 400).astype(str))
        pairs = [(a, g1), (a, g2), (b, g1), (b, g2)]
        with use_memory_budget(MemoryBudget(4 * 4 * 400 * 10)):  # packs of about one pair
            many = compare_groups_many(
                pairs, min_group_size=30, confidence=0.95, n_resamples=300, rng=rng
            )
        for (values, groups), result in zip(pairs, many, strict=True):
            alone = compare_groups(
                values, groups, min_group_size=30, confidence=0.95, n_resamples=50, rng=rng
            )
            assert [r.estimate for r in result.rows] == [r.estimate for r in alone.rows]
        hits += sum(r.ci_low <= 1.0 <= r.ci_high for r in many[2].rows)
    assert 0.90 <= hits / (3 * reps) <= 0.99


def test_several_means_from_one_weight_stream() -> None:
    rng = np.random.default_rng(8)
    skewed = rng.exponential(2.0, 500)
    with_gaps = np.where(rng.random(500) < 0.3, np.nan, rng.normal(1.0, 1.0, 500))
    out = mean_cis(
        {"skewed": skewed, "gaps": with_gaps, "flat": np.full(500, 0.5)},
        n_resamples=2000,
        rng=rng,
    )
    alone = mean_ci(skewed, n_resamples=2000, rng=np.random.default_rng(9))
    assert out["skewed"].estimate == alone.estimate
    assert out["skewed"].low == pytest.approx(alone.low, abs=0.05)
    assert out["skewed"].high == pytest.approx(alone.high, abs=0.05)
    assert out["gaps"].n == int(np.isfinite(with_gaps).sum())
    assert out["gaps"].estimate == pytest.approx(np.nanmean(with_gaps))
    assert out["gaps"].low < out["gaps"].estimate < out["gaps"].high
    assert (out["flat"].low, out["flat"].high, out["flat"].method) == (0.5, 0.5, "degenerate")


def test_packs_share_one_weight_stream_so_the_budget_does_not_change_intervals() -> None:
    """A budget that splits the comparisons into several packs multiplies each weight block by
    every pack: the intervals equal those of one pack (to float rounding), and the weights are
    drawn once, not once per pack."""
    rng0 = np.random.default_rng(7)
    a = pd.Series(rng0.exponential(0.2, 500))
    b = pd.Series(rng0.normal(1.0, 0.5, 500))
    g1 = pd.Series(rng0.integers(0, 3, 500).astype(str))
    g2 = pd.Series(rng0.integers(0, 4, 500).astype(str))
    pairs = [(a, g1), (a, g2), (b, g1), (b, g2)]

    def run(budget: MemoryBudget) -> list[tuple[float, float]]:
        with use_memory_budget(budget):
            many = compare_groups_many(
                pairs,
                min_group_size=30,
                confidence=0.95,
                n_resamples=200,
                rng=np.random.default_rng(1),
            )
        return [(r.ci_low, r.ci_high) for c in many for r in c.rows]  # type: ignore[misc]

    one_pack = run(MemoryBudget())
    several = run(MemoryBudget(4 * 4 * 500 * 10))
    np.testing.assert_allclose(np.array(several), np.array(one_pack), rtol=1e-5)
