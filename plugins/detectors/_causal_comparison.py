"""Generators compared, never pooled: the difference of each level's effect between two
logged generators, on the same users.

Both estimates are means of influence values over units that share users (a user's profiles
from both generators), so the difference's interval is cluster-robust by user
(:func:`audit_sdk.stats.cluster_robust.difference_of_estimates`); Benjamini-Hochberg across the
rows says which differences are significant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import norm
from statsmodels.stats.multitest import multipletests

from audit_sdk.report_model import Finding, GroupEstimate
from audit_sdk.stats.aipw import AIPWResult
from audit_sdk.stats.cluster_robust import difference_of_estimates

if TYPE_CHECKING:
    from audit_sdk.interfaces import AuditContext

__all__ = ["GeneratorEstimate", "generator_comparison"]


@dataclass(frozen=True)
class GeneratorEstimate:
    """One generator's per-level results with their influence values and the units' users."""

    generator: str
    results: list[AIPWResult]
    influence: np.ndarray  # units x levels
    users: np.ndarray  # user id of each unit
    untrusted: frozenset[str]


def generator_comparison(
    context: AuditContext,
    *,
    detector: str,
    family: str,
    outcome: str,
    estimates: list[GeneratorEstimate],
    fdr_q: float,
    reference: str,
) -> Finding:
    """``ate:<outcome>:difference`` by level: each generator minus the first (in name order)."""
    base, *others = estimates
    confidence = context.bootstrap.confidence
    rows: list[GroupEstimate] = []
    pvalues: list[float] = []
    for other in others:
        index = {r.treatment: j for j, r in enumerate(other.results)}
        for j, mine in enumerate(base.results):
            k = index.get(mine.treatment)
            if k is None:
                continue
            theirs = other.results[k]
            label = f"{mine.treatment}: {other.generator} - {base.generator}"
            if not (mine.estimated and theirs.estimated):
                rows.append(
                    GroupEstimate(group=label, n=0, estimate=None, warning="not estimated for both")
                )
                continue
            assert mine.ate is not None and theirs.ate is not None
            diff, se, low, high = difference_of_estimates(
                theirs.ate,
                other.influence[:, k],
                other.users,
                mine.ate,
                base.influence[:, j],
                base.users,
                confidence=confidence,
            )
            z = abs(diff) / se if se > 0 else 0.0
            p = float(2 * norm.sf(z))
            pvalues.append(p)
            shaky = [g.generator for g in (base, other) if mine.treatment in g.untrusted]
            rows.append(
                GroupEstimate(
                    group=label,
                    n=len(np.union1d(base.users.astype(str), other.users.astype(str))),
                    estimate=diff,
                    ci_low=low,
                    ci_high=high,
                    warning=f"untrusted for {', '.join(shaky)}" if shaky else None,
                    extra={"se": se, "p": p},
                )
            )
    tested = [r for r in rows if r.estimate is not None]
    level = confidence
    if tested:
        reject, qvalues, _, _ = multipletests(pvalues, alpha=fdr_q, method="fdr_bh")
        # FCR-adjusted intervals (Benjamini & Yekutieli 2005) at 1 - max(R, 1) q / m: a row is
        # significant exactly when its adjusted interval excludes 0
        miscoverage = max(int(reject.sum()), 1) * fdr_q / len(tested)
        level = 1 - miscoverage
        z = float(norm.ppf(1 - miscoverage / 2))
        for row, q, sig in zip(tested, qvalues, reject, strict=True):
            se = float(row.extra["se"])  # type: ignore[arg-type]
            assert row.estimate is not None
            row.extra["q"] = float(q)
            row.extra["fcr_ci_low"] = row.estimate - z * se
            row.extra["fcr_ci_high"] = row.estimate + z * se
            row.significant = bool(sig)
    names = ", ".join(e.generator for e in estimates)
    if not tested:
        return Finding(
            detector=detector,
            metric=f"ate:{outcome}:difference",
            group_by=family,
            subject=context.subject.name,
            groups=rows,
            status="skipped",
            explanation=f"generators {names}: no {family} level was estimated for two of them",
            chart="forest",
            reference=reference,
        )
    largest = max(tested, key=lambda r: abs(r.estimate or 0.0))
    n_sig = sum(bool(r.significant) for r in tested)
    return Finding(
        detector=detector,
        metric=f"ate:{outcome}:difference",
        group_by=family,
        subject=context.subject.name,
        estimate=largest.estimate,
        ci_low=largest.extra["fcr_ci_low"],
        ci_high=largest.extra["fcr_ci_high"],
        confidence=level,
        ci_method="difference of influence functions, cluster-robust by user; "
        f"{level:.1%} FCR-adjusted interval (Benjamini-Yekutieli)",
        n=max(r.n for r in tested),
        groups=rows,
        status="pass",
        explanation=(
            f"effects of {family} levels on {outcome}, each generator minus {base.generator} "
            f"on the same users: {n_sig} of {len(tested)} differ significantly (BH, "
            f"q={fdr_q:g}); largest: {largest.group} {largest.estimate:+.3g} "
            f"[{largest.extra['fcr_ci_low']:.3g}, {largest.extra['fcr_ci_high']:.3g}] "
            f"({level:.1%} FCR-adjusted interval)"
        ),
        warnings=[f"{r.group}: {r.warning}" for r in rows if r.warning],
        chart="forest",
        reference=reference,
        details={
            "reference_generator": base.generator,
            "generators": [e.generator for e in estimates],
            "significance": f"Significant (BH, q={fdr_q:g})",
            "row_confidence": confidence,
        },
    )
