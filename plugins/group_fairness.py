"""Group fairness of per-user recommendation quality (NDCG@k, recall@k) by user group.

For every quality metric and every group attribute (and intersection), the detector reports
the group means with bootstrap CIs, ``n`` per group, a warning for groups too small to judge,
and the disparity between the worst and the best group: the ratio worst/best (the
"four-fifths rule" of US employment law, used as a default limit) and the difference
best - worst, both with stratified bootstrap CIs (see ``audit_sdk.stats.bootstrap``).

By default a finding fails when even the favourable end of the ratio's CI is below 0.8
(evidence of harm) and warns below 0.9.
"""

from __future__ import annotations

from typing import Any, ClassVar

from audit_sdk.group_statistics import compare_groups
from audit_sdk.hookspecs import hookimpl
from audit_sdk.interfaces import AuditContext, Detector, PluginParams
from audit_sdk.interfaces.detector import Requirement
from audit_sdk.report_model import Finding
from audit_sdk.thresholds import Threshold, evaluate_threshold

__all__ = ["GroupFairnessDetector"]


class GroupFairnessParams(PluginParams):
    metrics: list[str] | None = None
    """Per-user metrics to compare (default: every quality metric of the audit)."""
    group_by: list[str] | None = None
    """Group attributes (default: every audited attribute and intersection)."""


class GroupFairnessDetector(Detector):
    name = "group_fairness"
    description = "Disparities in per-user recommendation quality between user groups."
    requires: ClassVar[frozenset[Requirement]] = frozenset({"recommendations"})
    Params = GroupFairnessParams
    default_thresholds: ClassVar[dict[str, Threshold]] = {
        "*:min_max_ratio": Threshold(statistic="ci_high", fail_below=0.8, warn_below=0.9)
    }

    def detect(self, context: AuditContext) -> list[Finding]:
        params: GroupFairnessParams = self.params  # type: ignore[assignment]
        metrics = params.metrics or context.metric_columns
        group_by = params.group_by or context.group_columns
        table = context.user_table
        findings = []
        for metric in metrics:
            if metric not in table.columns:
                findings.append(self._skipped(metric, None, f"no per-user metric {metric!r}"))
                continue
            for attribute in group_by:
                findings.append(self._one(context, metric, attribute))
        return findings

    def _one(self, context: AuditContext, metric: str, attribute: str) -> Finding:
        table = context.user_table
        if attribute not in table.columns:
            return self._skipped(metric, attribute, f"no group column {attribute!r}")
        comparison = compare_groups(
            table[metric],
            table[attribute],
            min_group_size=context.min_group_size,
            confidence=context.bootstrap.confidence,
            n_resamples=context.bootstrap.n_resamples,
            rng=context.rng(f"{self.name}:{metric}:{attribute}"),
        )
        warnings = [f"group {r.group!r}: {r.warning}" for r in comparison.rows if r.warning]
        metric_name = f"{metric}:min_max_ratio"
        threshold = self.threshold_for(metric_name)
        disparity = comparison.disparity
        if disparity is None:
            return Finding(
                detector=self.name,
                metric=metric_name,
                group_by=attribute,
                subject=context.subject.name,
                n=int(sum(r.n for r in comparison.rows)),
                groups=comparison.rows,
                threshold=threshold,
                status="skipped",
                explanation=(
                    f"fewer than two groups of {attribute} have at least "
                    f"{context.min_group_size} users; no disparity can be judged"
                ),
                warnings=warnings,
                chart="bars",
            )
        ratio, diff = disparity.ratio, disparity.difference
        worst_mean = comparison.by_group[disparity.worst]
        best_mean = comparison.by_group[disparity.best]
        status = evaluate_threshold(threshold, ratio.estimate, ratio.low, ratio.high)
        details: dict[str, Any] = {
            "worst_group": disparity.worst,
            "best_group": disparity.best,
            "difference": {"estimate": diff.estimate, "ci_low": diff.low, "ci_high": diff.high},
            "groups_too_small": comparison.too_small,
            "overall": float(table[metric].mean()),
        }
        return Finding(
            detector=self.name,
            metric=metric_name,
            group_by=attribute,
            subject=context.subject.name,
            estimate=ratio.estimate,
            ci_low=ratio.low,
            ci_high=ratio.high,
            confidence=context.bootstrap.confidence,
            ci_method=ratio.method,
            n=ratio.n,
            groups=comparison.rows,
            threshold=threshold,
            status=status,
            explanation=(
                f"{attribute}={disparity.worst} gets {metric} {worst_mean:.3g} vs "
                f"{best_mean:.3g} for {disparity.best}: ratio {ratio.estimate:.2f} "
                f"[{ratio.low:.2f}, {ratio.high:.2f}], difference {diff.estimate:.3g} "
                f"[{diff.low:.3g}, {diff.high:.3g}]"
            ),
            warnings=warnings,
            chart="bars",
            reference=(
                "Group disparity of per-user quality as in Ekstrand et al., 'All the cool kids, "
                "how do they fit in?' (FAT* 2018); four-fifths rule (29 CFR 1607.4(D))"
            ),
            details=details,
        )

    def _skipped(self, metric: str, attribute: str | None, reason: str) -> Finding:
        return Finding(
            detector=self.name,
            metric=f"{metric}:min_max_ratio",
            group_by=attribute,
            status="skipped",
            explanation=reason,
        )


@hookimpl
def audit_sdk_register_detectors(register: Any) -> None:
    register(GroupFairnessDetector)
