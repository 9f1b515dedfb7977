"""Is the audited model better than the reference baselines at all?

For each per-user quality metric the detector reports the subject's mean beside the
popularity, item-kNN and random baselines (each with a bootstrap CI), and the paired
difference subject - popularity over the same users, with a paired bootstrap CI (every
metric's difference from the same resamples of the users). It warns
when the subject is significantly worse than recommending the most popular items.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from audit_sdk.finding_builders import interval_finding, model_rows
from audit_sdk.hookspecs import hookimpl
from audit_sdk.interfaces import AuditContext, Detector
from audit_sdk.interfaces.requirements import MetricSpec, Needs, Requirement
from audit_sdk.report_model import Finding
from audit_sdk.stats.bootstrap import Interval, mean_cis
from audit_sdk.thresholds import Threshold

__all__ = ["BaselineComparisonDetector"]


class BaselineComparisonDetector(Detector):
    name = "baseline_comparison"
    description = "The subject's quality beside the reference baselines."
    requires: ClassVar[frozenset[Requirement]] = frozenset({Needs.RECOMMENDATIONS})
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("*:vs_*", "higher_is_better", -1.0, 1.0, "the model minus a baseline"),
    )
    default_thresholds: ClassVar[dict[str, Threshold]] = {
        "*:vs_popularity": Threshold(statistic="ci_high", warn_below=0.0)
    }

    def detect(self, context: AuditContext) -> list[Finding]:
        reference = context.baseline_user_tables.get("popularity")
        paired: dict[str, Interval] = {}
        if reference is not None:
            # Every metric's paired difference from one stream of resampling weights.
            own = context.user_table
            paired = mean_cis(
                {
                    metric: (own[metric] - reference[metric].reindex(own.index)).to_numpy()
                    for metric in context.metric_columns
                },
                confidence=context.bootstrap.confidence,
                n_resamples=context.bootstrap.n_resamples,
                rng=context.rng(f"{self.name}:paired"),
            )
        return [self._one(context, metric, paired.get(metric)) for metric in context.metric_columns]

    def _one(self, context: AuditContext, metric: str, diff: Interval | None) -> Finding:
        tables = {context.subject.name: context.user_table, **context.baseline_user_tables}
        rows, _ = model_rows(
            context,
            {label: table[metric] for label, table in tables.items()},
            salt=f"{self.name}:{metric}",
        )
        name = f"{metric}:vs_popularity"
        threshold = self.threshold_for(name)
        reference = context.baseline_user_tables.get("popularity")
        if reference is None or diff is None:
            return Finding(
                detector=self.name,
                metric=name,
                subject=context.subject.name,
                groups=rows,
                group_by="model",
                status="skipped",
                explanation="the popularity baseline is not part of this audit (config.baselines)",
                chart="bars",
            )
        own = context.user_table[metric]
        verdict = (
            "better than"
            if diff.low > 0
            else "worse than"
            if diff.high < 0
            else "not distinguishable from"
        )
        return interval_finding(
            context,
            diff,
            detector=self.name,
            metric=name,
            rows=rows,
            group_by="model",
            threshold=threshold,
            ci_method=f"paired {diff.method}",
            explanation=(
                f"{context.subject.name} is {verdict} the popularity baseline on {metric}: "
                f"{float(np.nanmean(own)):.3g} vs {float(reference[metric].mean()):.3g}, paired "
                f"difference {diff.estimate:.3g} [{diff.low:.3g}, {diff.high:.3g}]"
            ),
            reference=(
                "Paired comparison against non-personalised baselines (Cremonesi et al., "
                "RecSys 2010)"
            ),
        )


@hookimpl
def audit_sdk_register_detectors(register: Any) -> None:
    register(BaselineComparisonDetector)
