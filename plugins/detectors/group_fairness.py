"""Group fairness of per-user recommendation quality (NDCG@k, recall@k) by user group.

For every quality metric and every group attribute (and intersection), the detector reports
the group means with bootstrap CIs, ``n`` per group, a warning for groups too small to judge,
and the disparity between the worst and the best group: the ratio worst/best (the
"four-fifths rule" of US employment law, used as a default limit) and the difference
best - worst, both with stratified bootstrap CIs (see ``audit_sdk.stats.bootstrap``).

By default a finding fails when even the favourable end of the ratio's CI is below 0.8
(evidence of harm) and warns below 0.9.

With ``profile_metrics`` (e.g. ``downstream_ndcg@10``), the same comparison runs on the
downstream utility of each generator's taste profiles (Sguerra et al., RecSys 2025, Sec. 5):
a user's profiles (windows) averaged first, per generator, by every group attribute (age
bucket, country, mainstreamness, ...) and by GS-score quintile (``gs_quintile``: Q1
generalists ... Q5 specialists, Waller & Anderson, WWW 2019). A ``downstream_*`` column the
profiles lack is computed by the ``downstream_utility`` bi-encoder.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

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
    profile_metrics: list[str] | None = None
    """Per-profile utility columns compared across groups per generator (e.g.
    ``downstream_ndcg@10``, ``downstream_recall@10``, ``rating``); none by default."""
    gs_bins: int = 5
    """GS-score quantile bins for ``gs_quintile`` (with ``profile_metrics``)."""


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
        if params.profile_metrics:
            findings += self._profile_utility(context, params, group_by)
        return findings

    # -- downstream utility of profiles by group --------------------------------------------
    def _profile_utility(
        self, context: AuditContext, params: GroupFairnessParams, group_by: list[str]
    ) -> list[Finding]:
        profiles = context.subject.profiles
        metrics = params.profile_metrics or []
        if profiles is None or profiles.empty:
            return [self._skipped(m, None, "the audit has no profiles") for m in metrics]
        if any(m.startswith("downstream_") and m not in profiles for m in metrics):
            from audit_sdk.plugins.detectors.downstream_utility import downstream_utility_table

            utility = downstream_utility_table(context).drop(columns=["n_positives"])
            computed = utility.add_prefix("downstream_")
            profiles = profiles.join(computed[computed.columns.difference(profiles.columns)])
        table = context.user_table
        groups = {a: table[a] for a in group_by if a in table.columns}
        gs = _gs_quintiles(context, profiles, params.gs_bins)
        if gs is not None:
            groups["gs_quintile"] = gs
        generators = profiles["model"].astype(str) if "model" in profiles else None
        scopes = [(None, profiles)] if generators is None else list(profiles.groupby(generators))
        findings: list[Finding] = []
        for generator, part in scopes:
            label = None if generator is None or len(scopes) == 1 else str(generator)
            for metric in metrics:
                name = metric if label is None else f"{metric}:{label}"
                if metric not in part:
                    skipped = self._skipped(metric, None, f"no profile column {metric!r}")
                    findings.append(skipped.model_copy(update={"generator": label}))
                    continue
                values = pd.to_numeric(part[metric], errors="coerce")
                per_user = values.groupby(part["user_id"].astype(str)).mean().dropna()
                index = table.index.astype(str)
                per_user = per_user.reindex(index).set_axis(table.index)
                pairs = [(per_user, g.reindex(table.index)) for g in groups.values()]
                comparisons = compare_groups_many(
                    pairs,
                    min_group_size=context.min_group_size,
                    confidence=context.bootstrap.confidence,
                    n_resamples=context.bootstrap.n_resamples,
                    rng=context.rng(f"{self.name}:{name}"),
                )
                for attribute, comparison in zip(groups, comparisons, strict=True):
                    finding = group_disparity_finding(
                        context,
                        detector=self.name,
                        metric=metric,
                        values=per_user.dropna(),
                        attribute=attribute,
                        summary="ratio",
                        threshold=self.threshold_for(f"{metric}:min_max_ratio"),
                        reference=REFERENCE,
                        label=f"profiles by {generator}" if generator is not None else None,
                        comparison=comparison,
                    )
                    findings.append(finding.model_copy(update={"generator": label}))
        return findings

    def _skipped(self, metric: str, attribute: str | None, reason: str) -> Finding:
        return Finding(
            detector=self.name,
            metric=f"{metric}:min_max_ratio",
            group_by=attribute,
            status="skipped",
            explanation=reason,
        )


def _gs_quintiles(context: AuditContext, profiles: pd.DataFrame, bins: int) -> pd.Series | None:
    """GS-score quantile bin of each user (Q1 generalists .. Qn specialists), from a
    ``gs_score`` column of the user table or the profiles, else the ``gs_score`` feature."""
    table = context.user_table
    if "gs_score" in table.columns:
        gs = pd.to_numeric(table["gs_score"], errors="coerce")
    elif "gs_score" in profiles.columns:
        by_user = pd.to_numeric(profiles["gs_score"], errors="coerce")
        gs = by_user.groupby(profiles["user_id"].astype(str)).mean()
        gs = gs.reindex(table.index.astype(str)).set_axis(table.index)
    elif "gs_score" in context.features.names():
        feature = context.features.get("gs_score")
        if not isinstance(feature, pd.Series):
            return None
        gs = feature.set_axis(feature.index.astype(str)).reindex(table.index.astype(str))
        gs = gs.set_axis(table.index)
    else:
        return None
    if gs.notna().sum() < bins:
        return None
    labels = [f"Q{i + 1}" for i in range(bins)]
    labels[0], labels[-1] = f"{labels[0]} (generalists)", f"{labels[-1]} (specialists)"
    ranks = gs.rank(method="first")
    binned = pd.qcut(ranks, bins, labels=labels)
    return binned.astype(object).where(gs.notna(), np.nan).rename("gs_quintile")


@hookimpl
def audit_sdk_register_detectors(register: Any) -> None:
    register(GroupFairnessDetector)
