"""Multiple testing across treatments: Benjamini-Hochberg (1995) q-values and the
false-coverage-rate adjusted intervals of Benjamini & Yekutieli (2005, "False discovery
rate-adjusted multiple confidence intervals for selected parameters", JASA 100:71-81).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from audit_sdk.stats._aipw_results import AIPWResult


def apply_multiple_testing(
    results: list[AIPWResult],
    *,
    fdr_q: float = 0.05,
    bootstrap_draws: dict[int, np.ndarray] | None = None,
) -> list[AIPWResult]:
    """Benjamini-Hochberg q-values and FCR-adjusted intervals over the estimated results.

    BH via ``statsmodels.stats.multitest.multipletests(method="fdr_bh")``. For R selected of
    m tested, every estimated result gets an interval at level ``1 - max(R, 1) q / m``
    (Benjamini & Yekutieli 2005): normal from its standard error, or percentile from its
    bootstrap draws (``bootstrap_draws`` maps the result's index to them).
    """
    index = [i for i, r in enumerate(results) if r.estimated and r.p_value is not None]
    if not index:
        return list(results)
    pvals = np.array([results[i].p_value for i in index], dtype=float)
    reject, qvals, _, _ = multipletests(pvals, alpha=fdr_q, method="fdr_bh")
    m = len(index)
    selected = int(reject.sum())
    miscoverage = max(selected, 1) * fdr_q / m
    level = 1 - miscoverage
    z = float(sps.norm.ppf(1 - miscoverage / 2))
    out = list(results)
    for k, i in enumerate(index):
        r = results[i]
        assert r.ate is not None and r.se is not None
        if bootstrap_draws is not None and i in bootstrap_draws:
            lo, hi = np.quantile(bootstrap_draws[i], [miscoverage / 2, 1 - miscoverage / 2])
        else:
            lo, hi = r.ate - z * r.se, r.ate + z * r.se
        out[i] = replace(
            r,
            q_value=float(qvals[k]),
            significant=bool(reject[k]),
            fcr_ci_low=float(lo),
            fcr_ci_high=float(hi),
            fcr_level=float(level),
        )
    return out
