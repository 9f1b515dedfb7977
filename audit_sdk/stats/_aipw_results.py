"""What the cross-fitted AIPW estimator returns: one result per treatment and its overlap
diagnostic (re-exported by :mod:`audit_sdk.stats.aipw`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OverlapDiagnostic:
    """How well the treated and control units overlap in their estimated propensities.

    ``share_clipped`` is the share of units whose raw cross-fitted propensity fell outside
    the clipping range (their weights were capped). The histogram has fixed edges on [0, 1]
    and one count vector per arm.
    """

    share_clipped: float
    n_clipped: int
    propensity_min: float
    propensity_max: float
    edges: tuple[float, ...]
    counts_treated: tuple[int, ...]
    counts_control: tuple[int, ...]

    def histogram(self) -> dict[str, list[float] | list[int]]:
        """The form ``Finding.details["histogram"]`` takes."""
        return {
            "edges": list(self.edges),
            "counts_treated": list(self.counts_treated),
            "counts_control": list(self.counts_control),
        }


@dataclass(frozen=True)
class AIPWResult:
    """The estimate for one treatment, its uncertainty, and what it rests on.

    ``ci_low``/``ci_high`` is the marginal interval at ``confidence``; ``fcr_ci_low``/
    ``fcr_ci_high`` the interval at ``fcr_level`` = 1 - max(R, 1) q / m after selecting R of
    m treatments with Benjamini-Hochberg at level q (Benjamini & Yekutieli 2005). For a
    selected treatment that is the FCR-adjusted interval; when nothing is selected (R = 0)
    the level uses R = 1, i.e. the Bonferroni simultaneous interval, which stays valid for a
    treatment picked after looking (say, the most negative one). ``naive_*`` is the plain
    difference in means, treated minus control, with its Welch interval (cluster-robust when
    the units are clustered). A treatment that could
    not be estimated has ``skipped`` set to the reason and no estimate.
    """

    treatment: str
    n: int
    n_treated: int
    n_control: int
    ate: float | None = None
    se: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_method: str | None = None
    p_value: float | None = None
    q_value: float | None = None
    significant: bool | None = None
    fcr_ci_low: float | None = None
    fcr_ci_high: float | None = None
    fcr_level: float | None = None
    naive_diff: float | None = None
    naive_ci_low: float | None = None
    naive_ci_high: float | None = None
    overlap: OverlapDiagnostic | None = None
    skipped: str | None = None
    warnings: tuple[str, ...] = ()
    overlap_failed: str | None = None  # the reason, when positivity/overlap fails

    @property
    def trusted(self) -> bool:
        """Estimated, with adequate overlap (the detector gates only on trusted rows)."""
        return self.estimated and self.overlap_failed is None

    @property
    def estimated(self) -> bool:
        return self.skipped is None and self.ate is not None
