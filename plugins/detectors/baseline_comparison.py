"""Is the audited model better than the reference baselines at all?

For each per-user quality metric the detector reports the subject's mean beside the
popularity, item-kNN and random baselines (each with a bootstrap CI), and the paired
difference subject - popularity over the same users, with a paired bootstrap CI. It warns
when the subject is significantly worse than recommending the most popular items.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from audit_sdk.finding_builders import interval_finding, model_rows
from audit_sdk.hookspecs import hookimpl
from audit_sdk.interfaces import AuditContext, Detector
from audit_sdk.interfaces.detector import Requirement
from audit_sdk.report_model import Finding
from audit_sdk.stats.bootstrap import mean_ci
from audit_sdk.thresholds import Threshold

__all__ = ["BaselineComparisonDetector"]


class BaselineComparisonDetector(Detector):
    name = "baseline_comparison"
    description = "The subject's quality beside the reference baselines."
    requires: ClassVar[frozenset[Requirement]] = frozenset({"recommendations"})
    default_thresholds: ClassVar[dict[str, Threshold]] = {
        "*:vs_popularity": Threshold(statistic="ci_high", warn_below=0.0)
    }

    def detect(self, context: AuditContext) -> list[Finding]:
        return [self._one(context, metric) for metric in context.metric_columns]

    def _one(self, context: AuditContext, metric: str) -> Finding:
        confidence = context.bootstrap.confidence
        n_resamples = context.bootstrap.n_resamples
        tables = {context.subject.name: context.user_table, **context.baseline_user_tables}
        rows, _ = model_rows(
            context,
            {label: table[metric] for label, table in tables.items()},
            salt=f"{self.name}:{metric}",
        )
        name = f"{metric}:vs_popularity"
        threshold = self.threshold_for(name)
        reference = context.baseline_user_tables.get("popularity")
        if reference is None:
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
        paired = (own - reference[metric].reindex(own.index)).to_numpy()
        diff = mean_ci(
            paired,
            confidence=confidence,
            n_resamples=n_resamples,
            rng=context.rng(f"{self.name}:{metric}:paired"),
        )
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
