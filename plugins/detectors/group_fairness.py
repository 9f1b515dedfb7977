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

from audit_sdk.finding_builders import group_disparity_finding
from audit_sdk.group_statistics import compare_groups_many
from audit_sdk.hookspecs import hookimpl
from audit_sdk.interfaces import AuditContext, Detector, PluginParams
from audit_sdk.interfaces.requirements import MetricSpec, Needs, Requirement
from audit_sdk.report_model import Finding
from audit_sdk.thresholds import Threshold

__all__ = ["GroupFairnessDetector"]

REFERENCE = (
    "Group disparity of per-user quality as in Ekstrand et al., 'All the cool kids, how do they "
    "fit in?' (FAT* 2018); four-fifths rule (29 CFR 1607.4(D))"
)


class GroupFairnessParams(PluginParams):
    metrics: list[str] | None = None
    """Per-user metrics to compare (default: every quality metric of the audit)."""
    group_by: list[str] | None = None
    """Group attributes (default: every audited attribute and intersection)."""


class GroupFairnessDetector(Detector):
    name = "group_fairness"
    description = "Disparities in per-user recommendation quality between user groups."
    requires: ClassVar[frozenset[Requirement]] = frozenset({Needs.RECOMMENDATIONS})
    Params = GroupFairnessParams
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("*:min_max_ratio", "higher_is_better", 0.0, 1.0, "worst / best group"),
        MetricSpec("*", "higher_is_better", 0.0, 1.0, "a quality metric per group"),
    )
    default_thresholds: ClassVar[dict[str, Threshold]] = {
        "*:min_max_ratio": Threshold(statistic="ci_high", fail_below=0.8, warn_below=0.9)
    }

    def detect(self, context: AuditContext) -> list[Finding]:
        params: GroupFairnessParams = self.params  # type: ignore[assignment]
        metrics = params.metrics or context.metric_columns
        group_by = params.group_by or context.group_columns
        table = context.user_table
        pairs = [(m, a) for m in metrics if m in table.columns for a in group_by if a in table]
        # Every comparison from one stream of resampling weights (drawn once, not per pair).
        comparisons = dict(
            zip(
                pairs,
                compare_groups_many(
                    [(table[m], table[a]) for m, a in pairs],
                    min_group_size=context.min_group_size,
                    confidence=context.bootstrap.confidence,
                    n_resamples=context.bootstrap.n_resamples,
                    rng=context.rng(self.name),
                )
                if pairs
                else [],
                strict=True,
            )
        )
        findings = []
        for metric in metrics:
            if metric not in table.columns:
                findings.append(self._skipped(metric, None, f"no per-user metric {metric!r}"))
                continue
            for attribute in group_by:
                if attribute not in table.columns:
                    findings.append(
                        self._skipped(metric, attribute, f"no group column {attribute!r}")
                    )
                    continue
                findings.append(
                    group_disparity_finding(
                        context,
                        detector=self.name,
                        metric=metric,
                        values=table[metric],
                        attribute=attribute,
                        summary="ratio",
                        threshold=self.threshold_for(f"{metric}:min_max_ratio"),
                        reference=REFERENCE,
                        comparison=comparisons[metric, attribute],
                    )
                )
        return findings

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
