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
* ``<metric>:difference`` by model (several generators): each generator minus the subject's
  (or, when the subject is not among them, the first in name order), paired by user, with a
  bootstrap CI over the users both profiled.

With several generators the per-window and per-group findings are computed for each
(``<metric>[<generator>]``) and every headline names its generator; nothing is pooled. A metric
column that is not numeric, or has no value at all (e.g. ``hallucination_rate`` when no
profile names a catalog artist), gives a ``skipped`` finding with the reason; the other
metrics are still measured.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from audit_sdk.finding_builders import group_disparity_finding, interval_row
from audit_sdk.hookspecs import hookimpl
from audit_sdk.interfaces import AuditContext, Detector, PluginParams
from audit_sdk.interfaces.requirements import MetricSpec, Needs, Requirement
from audit_sdk.report_model import Finding, GroupEstimate
from audit_sdk.stats.bootstrap import mean_ci
from audit_sdk.thresholds import Threshold, evaluate_threshold

__all__ = ["ProfileFidelityDetector"]

RECALLS = ("artist_recall", "genre_recall")
LOWER_IS_BETTER = ("hallucination_rate",)
_BUILTIN_RANGES: dict[str, tuple[float, float]] = {
    "artist_recall": (0.0, 1.0),
    "genre_recall": (0.0, 1.0),
    "hallucination_rate": (0.0, 1.0),
}
REFERENCE = (
    "Profile fidelity to the sampled listening (Sguerra et al., RecSys 2025, arXiv 2507.16708); "
    "group disparity as in group_fairness"
)


class ProfileFidelityParams(PluginParams):
    metrics: list[str] = Field(
        default_factory=lambda: ["artist_recall", "genre_recall", "hallucination_rate"],
        description="numeric columns of the profiles to compare (the fidelity metrics, or "
        "any logged number such as 'rating')",
    )
    group_by: list[str] | None = Field(
        None, description="user attributes to compare groups on (default: the audit's groups)"
    )
    value_ranges: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="each metric's possible range, for chart axes (e.g. {rating: [1, 7]}); "
        "recalls and hallucination_rate are [0, 1]",
    )


class ProfileFidelityDetector(Detector):
    name = "profile_fidelity"
    description = "How faithfully generated taste profiles reflect listening, and for whom."
    requires: ClassVar[frozenset[Requirement]] = frozenset({Needs.PROFILES})
    Params = ProfileFidelityParams
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("*:min_max_ratio*", "higher_is_better", 0.0, 1.0, "worst / best group"),
        MetricSpec("*:group_gap*", "lower_is_better", 0.0, None, "largest minus smallest group"),
        MetricSpec("*:difference", "none", description="each generator minus the reference"),
        MetricSpec("hallucination_rate*", "lower_is_better", 0.0, 1.0),
        MetricSpec("*_recall*", "higher_is_better", 0.0, 1.0),
    )
    default_thresholds: ClassVar[dict[str, Threshold]] = {
        "*_recall:min_max_ratio": Threshold(statistic="ci_high", fail_below=0.8, warn_below=0.9),
        "hallucination_rate": Threshold(statistic="ci_low", warn_above=0.1, fail_above=0.3),
    }

    def detect(self, context: AuditContext) -> list[Finding]:
        params: ProfileFidelityParams = self.params  # type: ignore[assignment]
        profiles = context.subject.profiles
        assert profiles is not None
        profiles = profiles[profiles["error"].isna()] if "error" in profiles else profiles
        models = sorted(profiles["model"].dropna().astype(str).unique())
        profiles = profiles.assign(model=profiles["model"].astype(str))
        reference = context.subject.name if context.subject.name in models else None
        findings = []
        for metric in params.metrics:
            values, problem = _numeric(profiles, metric)
            if problem is not None:
                findings.append(self._skipped(metric, problem))
                continue
            frame = profiles.assign(**{metric: values})
            by_model = self._by_model(context, frame, metric, models, reference)
            span = params.value_ranges.get(metric) or _BUILTIN_RANGES.get(metric)
            if span is not None:
                by_model.details["value_range"] = list(span)
            findings.append(by_model)
            if len(models) > 1:
                findings.append(
                    self._differences(context, frame, metric, models, reference or models[0])
                )
            for model in models:
                own = frame[frame["model"] == model]
                tag = None if len(models) == 1 else model
                window = self._by_window(context, own, metric, model)
                if span is not None:
                    window.details["value_range"] = list(span)
                findings.append(_tagged(window, tag))
                per_user = own.groupby("user_id")[metric].mean()
                for attribute in params.group_by or context.group_columns:
                    finding = self._by_group(context, per_user, metric, attribute, model)
                    if span is not None and finding.chart == "bars":
                        finding.details["value_range"] = list(span)
                    findings.append(_tagged(finding, tag))
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
        return interval_row(label, interval, min_n=context.min_group_size)

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
        reference: str | None,
    ) -> Finding:
        rows = []
        for model in models:
            per_user = profiles[profiles["model"] == model].groupby("user_id")[metric].mean()
            rows.append(self._interval_row(context, per_user.dropna(), model, f"{metric}:{model}"))
        rated = [r for r in rows if r.estimate is not None]
        if reference is not None or len(rated) <= 1:
            own = next((r for r in rows if r.group == reference), rated[0] if rated else None)
            why = ""
        else:
            # the subject is not among the logged generators: the headline is the worst one
            worse = max if metric in LOWER_IS_BETTER else min
            own = worse(rated, key=lambda r: r.estimate if r.estimate is not None else 0.0)
            why = f" (the subject {context.subject.name!r} is not in the log: worst shown)"
        summary = ", ".join(f"{r.group} {r.estimate:.3g}" for r in rated)
        head = f"generator {own.group}: " if own is not None and len(models) > 1 else ""
        finding = self._finding(
            context,
            metric,
            "model",
            rows,
            own,
            f"{head}mean {metric} of profiles per user{why}: {summary or 'no values'}",
        )
        if own is not None:
            finding.details["generator"] = own.group
        return finding

    def _differences(
        self,
        context: AuditContext,
        profiles: pd.DataFrame,
        metric: str,
        models: list[str],
        reference: str,
    ) -> Finding:
        """Each generator minus the reference, paired by user (users profiled by both)."""
        per_user = profiles.pivot_table(
            index="user_id", columns="model", values=metric, aggfunc="mean"
        )
        rows = []
        for model in models:
            if model == reference:
                continue
            diff = (per_user[model] - per_user[reference]).dropna()
            rows.append(
                self._interval_row(context, diff, f"{model} - {reference}", f"{metric}:d:{model}")
            )
        shown = [r for r in rows if r.estimate is not None]
        text = ", ".join(
            f"{r.group} {r.estimate:+.3g} [{r.ci_low:.3g}, {r.ci_high:.3g}]" for r in shown
        )
        return Finding(
            detector=self.name,
            metric=f"{metric}:difference",
            group_by="model pair",
            subject=context.subject.name,
            confidence=context.bootstrap.confidence,
            ci_method="bootstrap-BCa over users, paired",
            n=int(per_user[reference].notna().sum()),
            groups=rows,
            status="pass" if shown else "skipped",
            explanation=f"{metric} of each generator minus {reference}'s, same users: "
            + (text or "no users profiled by both"),
            warnings=[f"{r.group}: {r.warning}" for r in rows if r.warning],
            chart="forest",
            reference=REFERENCE,
            details={"reference_generator": reference},
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


def _numeric(profiles: pd.DataFrame, metric: str) -> tuple[pd.Series, str | None]:
    """The metric column as floats, or the reason it cannot be compared."""
    if metric not in profiles.columns:
        return pd.Series(dtype=float), f"the profiles carry no {metric!r} column"
    raw = profiles[metric]
    values = pd.to_numeric(raw, errors="coerce").astype(float)
    present = raw.notna() & (raw.astype(str).str.strip() != "")
    bad = present & values.isna()
    if bool(bad.any()):
        first = raw[bad].iloc[0]
        return values, (
            f"column {metric!r} of the profiles is not numeric ({int(bad.sum())} values such "
            f"as {first!r}); declare it numeric or drop it from params.metrics"
        )
    if not bool(np.isfinite(values.to_numpy()).any()):
        why = (
            "no profile names a catalog artist, so the rate is undefined"
            if metric == "hallucination_rate"
            else "no profile has a value"
        )
        return values, f"{metric} skipped: {why}"
    return values, None


def _tagged(finding: Finding, generator: str | None) -> Finding:
    """One generator's copy of a finding (``Finding.generator``; its label is
    ``<metric>[<generator>]``), the generator also in details."""
    if generator is None:
        return finding
    details = {**finding.details, "generator": generator}
    return finding.model_copy(update={"generator": generator, "details": details})


@hookimpl
def audit_sdk_register_detectors(register: Any) -> None:
    register(ProfileFidelityDetector)
