"""Fidelity of generated taste profiles, per generator, per window and per user group.

Uses the per-profile metrics of :mod:`audit_sdk.metrics.profile_fidelity` (artist recall,
genre recall, hallucination rate), which the runner computes when an audit generates
profiles. Units of analysis are users: a user's profiles over several windows are averaged
first, so intervals do not treat one user's windows as independent people.

* ``<metric>`` by model: each generator's mean with a bootstrap CI (the subject's is the
  finding's estimate).
* ``<metric>`` by window: the subject's mean per time window.
* ``<metric>:min_max_ratio`` by user group (recalls; higher is better): worst/best group ratio
  with simultaneous bounds, as in ``group_fairness``; fails like it (four-fifths rule).
* ``hallucination_rate:group_gap`` by user group: highest minus lowest group.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pandas as pd
from pydantic import Field

from audit_sdk.finding_builders import group_disparity_finding
from audit_sdk.hookspecs import hookimpl
from audit_sdk.interfaces import AuditContext, Detector, PluginParams
from audit_sdk.interfaces.detector import Requirement
from audit_sdk.report_model import Finding, GroupEstimate
from audit_sdk.stats.bootstrap import mean_ci
from audit_sdk.thresholds import Threshold, evaluate_threshold

__all__ = ["ProfileFidelityDetector"]

RECALLS = ("artist_recall", "genre_recall")
REFERENCE = (
    "Profile fidelity to the sampled listening (Sguerra et al., RecSys 2025, arXiv 2507.16708); "
    "group disparity as in group_fairness"
)


class ProfileFidelityParams(PluginParams):
    metrics: list[str] = Field(
        default_factory=lambda: ["artist_recall", "genre_recall", "hallucination_rate"]
    )
    group_by: list[str] | None = None


class ProfileFidelityDetector(Detector):
    name = "profile_fidelity"
    description = "How faithfully generated taste profiles reflect listening, and for whom."
    requires: ClassVar[frozenset[Requirement]] = frozenset({"profiles"})
    Params = ProfileFidelityParams
    default_thresholds: ClassVar[dict[str, Threshold]] = {
        "*_recall:min_max_ratio": Threshold(statistic="ci_high", fail_below=0.8, warn_below=0.9),
        "hallucination_rate": Threshold(statistic="ci_low", warn_above=0.1, fail_above=0.3),
    }

    def detect(self, context: AuditContext) -> list[Finding]:
        params: ProfileFidelityParams = self.params  # type: ignore[assignment]
        profiles = context.subject.profiles
        assert profiles is not None
        profiles = profiles[profiles["error"].isna()] if "error" in profiles else profiles
        subject_model = context.subject.name
        models = list(dict.fromkeys(profiles["model"]))
        if subject_model not in models and models:
            subject_model = models[0]
        findings = []
        for metric in params.metrics:
            if metric not in profiles.columns:
                findings.append(self._skipped(metric, f"the profiles carry no {metric!r} column"))
                continue
            findings.append(self._by_model(context, profiles, metric, models, subject_model))
            own = profiles[profiles["model"] == subject_model]
            findings.append(self._by_window(context, own, metric, subject_model))
            per_user = own.groupby("user_id")[metric].mean()
            for attribute in params.group_by or context.group_columns:
                findings.append(self._by_group(context, per_user, metric, attribute, subject_model))
        return findings

    def _interval_row(
        self, context: AuditContext, values: pd.Series, label: str, salt: str
    ) -> GroupEstimate:
        interval = mean_ci(
            values.to_numpy(dtype=float),
            confidence=context.bootstrap.confidence,
            n_resamples=context.bootstrap.n_resamples,
            rng=context.rng(f"{self.name}:{salt}"),
        )
        return GroupEstimate(
            group=label,
            n=interval.n,
            estimate=interval.estimate if interval.n else None,
            ci_low=interval.low if interval.n else None,
            ci_high=interval.high if interval.n else None,
            warning=None
            if interval.n >= context.min_group_size
            else f"only {interval.n} users (< {context.min_group_size})",
        )

    def _finding(
        self,
        context: AuditContext,
        metric: str,
        group_by: str,
        rows: list[GroupEstimate],
        own: GroupEstimate | None,
        explanation: str,
    ) -> Finding:
        threshold = self.threshold_for(metric)
        estimate = own.estimate if own else None
        low, high = (own.ci_low, own.ci_high) if own else (None, None)
        status = evaluate_threshold(threshold, estimate, low, high) if own else "skipped"
        return Finding(
            detector=self.name,
            metric=metric,
            group_by=group_by,
            subject=context.subject.name,
            estimate=estimate,
            ci_low=low,
            ci_high=high,
            confidence=context.bootstrap.confidence,
            ci_method="bootstrap-BCa over users",
            n=own.n if own else None,
            groups=rows,
            threshold=threshold,
            status=status,
            explanation=explanation,
            warnings=[f"{r.group}: {r.warning}" for r in rows if r.warning],
            chart="bars",
            reference=REFERENCE,
        )

    def _by_model(
        self,
        context: AuditContext,
        profiles: pd.DataFrame,
        metric: str,
        models: list[str],
        subject_model: str,
    ) -> Finding:
        rows = []
        for model in models:
            per_user = profiles[profiles["model"] == model].groupby("user_id")[metric].mean()
            rows.append(self._interval_row(context, per_user.dropna(), model, f"{metric}:{model}"))
        own = next((r for r in rows if r.group == subject_model), None)
        summary = ", ".join(f"{r.group} {r.estimate:.3g}" for r in rows if r.estimate is not None)
        return self._finding(
            context,
            metric,
            "model",
            rows,
            own,
            f"mean {metric} of profiles per user: {summary or 'no values'}",
        )

    def _by_window(
        self, context: AuditContext, own: pd.DataFrame, metric: str, model: str
    ) -> Finding:
        rows = []
        for window, part in own.groupby("window", sort=False):
            values = part.groupby("user_id")[metric].mean().dropna()
            rows.append(self._interval_row(context, values, str(window), f"{metric}:w:{window}"))
        overall = own.groupby("user_id")[metric].mean().dropna()
        total = self._interval_row(context, overall, "all windows", f"{metric}:all")
        finding = self._finding(
            context,
            metric,
            "window",
            rows,
            total,
            f"{model}: {metric} per listening window: "
            + ", ".join(f"{r.group} {r.estimate:.3g}" for r in rows if r.estimate is not None),
        )
        finding.details["overall"] = total.estimate
        return finding

    def _by_group(
        self,
        context: AuditContext,
        per_user: pd.Series,
        metric: str,
        attribute: str,
        model: str,
    ) -> Finding:
        summary: Literal["ratio", "gap"] = "ratio" if metric in RECALLS else "gap"
        name = f"{metric}:min_max_ratio" if summary == "ratio" else f"{metric}:group_gap"
        return group_disparity_finding(
            context,
            detector=self.name,
            metric=metric,
            values=per_user,
            attribute=attribute,
            summary=summary,
            threshold=self.threshold_for(name),
            reference=REFERENCE,
            label=model,
        )

    def _skipped(self, metric: str, reason: str) -> Finding:
        return Finding(detector=self.name, metric=metric, status="skipped", explanation=reason)


@hookimpl
def audit_sdk_register_detectors(register: Any) -> None:
    register(ProfileFidelityDetector)
