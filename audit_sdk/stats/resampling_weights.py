"""Poisson(1) bootstrap weights, drawn in blocks of resamples.

The Poisson bootstrap gives each user an independent Poisson(1) count in each resample instead
of the multinomial counts of drawing n users with replacement (Hanley & MacGibbon, Comput.
Methods Programs Biomed. 2006; Chamandy et al., "Estimating uncertainty for massive data
streams", Google 2012, Sec. 3). A resampled mean is the weighted mean ``sum w x / sum w``; it
has the same first-order distribution as the multinomial bootstrap's (the counts differ by
O(1/n) in covariance), and because each user's weight is drawn on its own:

* one draw of weights serves every group at once, and within each group it is a bootstrap of
  that group (the stratified bootstrap up to the group size varying by O(sqrt n_g));
* draws never need an ``n_resamples x n`` matrix: blocks of draws are generated and reduced,
  one after the other, each block as large as the memory budget allows
  (:mod:`audit_sdk.memory_budget`); the block size does not change the draws.

Weights are 16-bit uniform integers mapped through the Poisson(1) quantile function
(:data:`POISSON_TABLE`), which matches every Poisson(1) probability to within 2^-16; that is
about six times faster than ``Generator.poisson``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import stats

from audit_sdk.memory_budget import current_memory_budget

__all__ = ["POISSON_TABLE", "group_mean_replicates", "poisson_weight_blocks"]

_LEVELS = 2**16
POISSON_TABLE: np.ndarray = np.searchsorted(
    stats.poisson.cdf(np.arange(32), 1.0) * _LEVELS, np.arange(_LEVELS) + 0.5, side="right"
).astype(np.uint8)
# Bytes one weight costs while a block is built: the uniform (2), the count (1), a float (4).
BYTES_PER_WEIGHT = 7


def poisson_weight_blocks(
    n: int, n_resamples: int, rng: np.random.Generator, *, dtype: type = np.float32
) -> Iterator[np.ndarray]:
    """Poisson(1) weights for ``n`` units and ``n_resamples`` resamples, as consecutive blocks
    of shape ``(block, n)``; the block follows the active memory budget. Each resample takes
    whole 64-bit words of the generator's raw stream (four 16-bit uniforms a word), so the
    weights are the same for any block size."""
    padded = -(-n // 4) * 4  # 4 uint16 per 64-bit word
    block = current_memory_budget().chunk_rows(
        BYTES_PER_WEIGHT * padded,
        total_rows=n_resamples,
        what=f"one bootstrap draw over {n:,} users",
    )
    for start in range(0, n_resamples, block):
        rows = min(block, n_resamples - start)
        words = rng.bit_generator.random_raw(rows * padded // 4)
        weights = POISSON_TABLE[words.view(np.uint16).reshape(rows, padded)[:, :n]]
        yield weights.astype(dtype)


def group_mean_replicates(
    values: np.ndarray,
    codes: np.ndarray,
    n_groups: int,
    *,
    n_resamples: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Bootstrap replicates of every group's mean, shape ``(n_resamples, n_groups)``: the
    Poisson-weighted mean of each group's values in each resample (NaN in the rare resample
    where all of a group's weights are zero).

    :param values: finite values, one per unit.
    :param codes: group of each unit, ``0 .. n_groups - 1``.
    """
    x = np.asarray(values, dtype=float)
    order = np.argsort(codes, kind="stable")
    x, sorted_codes = x[order], np.asarray(codes)[order]
    bounds = np.searchsorted(sorted_codes, np.arange(n_groups + 1))
    counts = np.diff(bounds)
    means = np.bincount(sorted_codes, weights=x, minlength=n_groups) / np.maximum(counts, 1)
    # float32 sums of centred values keep ~7 digits of the deviation, far below bootstrap
    # noise; integer weight totals stay exact in float32 below 2^24.
    dtype = np.float32 if len(x) < 2**23 else np.float64
    design = np.column_stack([x - means[sorted_codes], np.ones_like(x)]).astype(dtype)
    out = np.empty((n_resamples, n_groups))
    done = 0
    for weights in poisson_weight_blocks(len(x), n_resamples, rng, dtype=dtype):
        rows = slice(done, done + len(weights))
        for g in range(n_groups):
            lo, hi = bounds[g], bounds[g + 1]
            sums = weights[:, lo:hi] @ design[lo:hi]
            with np.errstate(invalid="ignore", divide="ignore"):
                out[rows, g] = means[g] + sums[:, 0] / sums[:, 1]
        done += len(weights)
    return out
