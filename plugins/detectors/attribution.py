"""Feature-ablation attribution (FAA) of the recommendation prompt: does the model read the
user's history, or the words around it?

For a sample of audited users, the detector builds each user's recommendation prompt with
named spans (:func:`audit_sdk.attribution.spanned_recommendation_prompt`: the task header,
one span per history item), takes as the target the title line of the item the subject
recommends first (or, without recommendations, the user's first held-out item), and measures
how much each span and the answer prefix move the target's log-probability
(:func:`audit_sdk.attribution.attribute`). It reports, with bootstrap CIs over users
(:func:`audit_sdk.attribution.summarize_attribution`):

* ``attribution:auxiliary_share``: A_aux / (A_aux + A_int), per user group in the rows;
* ``attribution:aux_interaction_ratio``: A_aux / A_int, which fails when the CI's lower bound
  exceeds ``max_ratio`` (arXiv 2510.10978 finds about 1:1 before fine-tuning, 6:1 after);

with, in ``details``, the attribution of each prompt field, the curve by history position
(recency) and the prompts with the most extreme ratios and their spans. Needs the adapter
capability ``score``; a prompt or endpoint it cannot score gives a ``skipped`` finding that
names the prompt and span.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from audit_sdk.attribution import (
    AttributionInputError,
    AttributionResult,
    AttributionSummary,
    SpannedPrompt,
    spanned_recommendation_prompt,
    summarize_attribution,
)
from audit_sdk.errors import AdapterError, MissingCapabilityError
from audit_sdk.execution_attribution import attribute_subject
from audit_sdk.finding_builders import interval_row
from audit_sdk.hookspecs import hookimpl
from audit_sdk.interfaces import AuditContext, Detector, PluginParams
from audit_sdk.interfaces.requirements import AdapterCapability, MetricSpec, Requirement
from audit_sdk.recommendation_prompts import catalog_unit, clean_title
from audit_sdk.report_model import Finding, GroupEstimate
from audit_sdk.stats.bootstrap import Interval
from audit_sdk.thresholds import Threshold, evaluate_threshold
from audit_sdk.user_histories import history_order_for, user_histories

__all__ = ["AttributionDetector", "AttributionParams", "recommendation_attribution_prompts"]

REFERENCE = (
    "Feature-ablation attribution, auxiliary:interaction ratio: 'Does LLM Focus on the Right "
    "Words? Diagnosing Language Bias in LLM-based Recommenders', arXiv 2510.10978 (WWW 2026); "
    "estimators in audit_sdk.attribution.results and .summary"
)
SHARE = "attribution:auxiliary_share"
RATIO = "attribution:aux_interaction_ratio"


class AttributionParams(PluginParams):
    max_users: int = Field(64, ge=2, description="users sampled for attribution (seeded)")
    max_history: int = Field(10, ge=1, description="history items shown per prompt")
    baseline: str | None = Field(
        None, description="text an ablated span becomes (default: the span is removed)"
    )
    max_ratio: float | None = Field(
        3.0,
        gt=0,
        description="fail when the CI's lower bound of the aux:interaction ratio exceeds it",
    )
    group_by: str | None = Field(
        None, description="user-group column for the per-group rows (default: the first)"
    )
    extreme_prompts: int = Field(5, ge=0, description="prompts with the highest ratio shown")
    max_batch_tokens: int = Field(8192, ge=64, description="padded tokens per forward pass")


def recommendation_attribution_prompts(
    context: AuditContext, *, max_users: int, max_history: int, group_by: str | None
) -> tuple[list[SpannedPrompt], list[str]]:
    """Each sampled user's recommendation prompt with spans, and its target line."""
    train = context.train
    order = history_order_for(train.interactions)
    unit = catalog_unit(train.catalog)
    histories = user_histories(train.interactions, order=order)
    titles = train.catalog.frame["title"]
    adapter = context.adapter
    manifest = getattr(adapter, "manifest_", None)
    known = set(manifest.item_tokens.values()) if manifest is not None else None
    targets_of = _targets(context, known)
    users = [u for u in map(str, context.users) if histories.get(u) and u in targets_of]
    rng = context.rng("attribution")
    if len(users) > max_users:
        users = sorted(rng.choice(users, size=max_users, replace=False).tolist())
    column = group_by or (context.group_columns[0] if context.group_columns else None)
    groups = context.user_table[column] if column is not None else None
    prompts: list[SpannedPrompt] = []
    targets: list[str] = []
    for user in users:
        history = [i for i in histories[user] if known is None or i in known]
        shown = history[-max_history:] if order == "chronological" else history[:max_history]
        if not shown:
            continue
        group = None
        if groups is not None and user in groups.index and pd.notna(groups.loc[user]):
            group = str(groups.loc[user])
        prompts.append(
            spanned_recommendation_prompt(
                [str(titles.get(i, i)) for i in shown],
                unit=unit,
                order=order,
                prompt_id=f"user {user}",
                group=group,
            )
        )
        targets.append(f"{clean_title(titles.get(targets_of[user], targets_of[user]))}\n")
    return prompts, targets


def _targets(context: AuditContext, known: set[str] | None) -> dict[str, str]:
    recs = context.subject.recommendations
    if recs is not None and not recs.empty:
        first = recs.sort_values(["user_id", "rank"]).drop_duplicates("user_id")
        return dict(zip(first["user_id"].astype(str), first["item_id"].astype(str), strict=True))
    frame = context.test.interactions.frame
    if known is not None:
        frame = frame.loc[frame["item_id"].astype(str).isin(known)]
    first = frame.drop_duplicates("user_id")
    return dict(zip(first["user_id"].astype(str), first["item_id"].astype(str), strict=True))


class AttributionDetector(Detector[AttributionParams]):
    name = "attribution"
    description = (
        "Feature-ablation attribution of the recommendation prompt: auxiliary share and "
        "auxiliary:interaction ratio (task words and answer prefix vs the user's history)."
    )
    requires: ClassVar[frozenset[Requirement]] = frozenset({AdapterCapability("score")})
    metrics = (
        MetricSpec(SHARE, "lower_is_better", 0.0, 1.0, "share of attribution on auxiliary spans"),
        MetricSpec(RATIO, "lower_is_better", 0.0, None, "auxiliary : interaction attribution"),
    )
    Params = AttributionParams

    def detect(self, context: AuditContext) -> list[Finding]:
        params = self.params
        adapter = context.adapter
        if adapter is None:
            return [self._skipped("the subject has no live adapter to score prompts with")]
        prompts, targets = recommendation_attribution_prompts(
            context,
            max_users=params.max_users,
            max_history=params.max_history,
            group_by=params.group_by,
        )
        if len(prompts) < 2:
            return [
                self._skipped(
                    f"{len(prompts)} users have both a history and a target item; "
                    f"attribution needs at least 2"
                )
            ]
        try:
            result = attribute_subject(  # shards of users over the audit's executor
                context,
                prompts,
                targets,
                baseline=params.baseline,
                max_batch_tokens=params.max_batch_tokens,
            )
        except (AttributionInputError, AdapterError, MissingCapabilityError) as exc:
            return [self._skipped(f"cannot attribute with adapter {adapter.name!r}: {exc}")]
        summary = summarize_attribution(
            result,
            confidence=context.bootstrap.confidence,
            n_resamples=context.bootstrap.n_resamples,
            seed=context.seed,
        )
        return self._findings(context, result, summary)

    def _skipped(self, reason: str) -> Finding:
        return Finding(detector=self.name, metric=SHARE, status="skipped", explanation=reason)

    def _findings(
        self, context: AuditContext, result: AttributionResult, summary: AttributionSummary
    ) -> list[Finding]:
        params = self.params
        details = attribution_details(result, summary, extreme=params.extreme_prompts)
        warnings = [f"{n}" for n in summary.notes]
        small = [g for g, (share, _) in summary.groups.items() if share.n < context.min_group_size]
        if small:
            warnings.append(
                f"groups with fewer than {context.min_group_size} prompts: {', '.join(small)}"
            )
        out = []
        thresholds: dict[str, Threshold | None] = {
            SHARE: self.threshold_for(SHARE),
            RATIO: self.threshold_for(RATIO)
            or (
                Threshold(statistic="ci_low", fail_above=params.max_ratio)
                if params.max_ratio is not None
                else None
            ),
        }
        for metric, overall, index, what in (
            (SHARE, summary.share, 0, "auxiliary share A_aux / (A_aux + A_int)"),
            (RATIO, summary.ratio, 1, "auxiliary : interaction ratio A_aux / A_int"),
        ):
            rows = [_row(group, pair[index], context) for group, pair in summary.groups.items()]
            threshold = thresholds[metric]
            out.append(
                Finding(
                    detector=self.name,
                    metric=metric,
                    subject=context.subject.name,
                    estimate=_finite(overall.estimate),
                    ci_low=_finite(overall.low),
                    ci_high=_finite(overall.high),
                    confidence=summary.confidence,
                    ci_method=overall.method,
                    n=overall.n,
                    groups=rows,
                    group_by=params.group_by
                    or (context.group_columns[0] if context.group_columns else None),
                    threshold=threshold,
                    status=evaluate_threshold(
                        threshold, overall.estimate, overall.low, overall.high
                    ),
                    explanation=(
                        f"{what} of the recommendation prompt, by feature ablation "
                        f"({'baseline ' + repr(result.baseline) if result.baseline else 'spans removed'}; "
                        f"{result.engine} engine): {overall.estimate:.3g} "
                        f"[{overall.low:.3g}, {overall.high:.3g}] over {overall.n} users' prompts; "
                        f"auxiliary = task header + answer prefix, interaction = history items; "
                        f"resampled unit: users"
                    ),
                    warnings=warnings,
                    chart="bars",
                    reference=REFERENCE,
                    details=details if metric == SHARE else {"engine": result.engine},
                )
            )
        return out


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _row(group: str, interval: Interval, context: AuditContext) -> GroupEstimate:
    return interval_row(group, interval, min_n=context.min_group_size, unit="prompts")


def _interval(interval: Interval) -> dict[str, Any]:
    return {
        "estimate": _finite(interval.estimate),
        "low": _finite(interval.low),
        "high": _finite(interval.high),
        "n": interval.n,
    }


def attribution_details(
    result: AttributionResult, summary: AttributionSummary, *, extreme: int
) -> dict[str, Any]:
    """What the report draws: per field (bars with CIs), by recency (a curve), and the most
    extreme prompts with each span's text, role and attribution."""
    prompts = []
    for index in summary.extreme_prompts(extreme):
        p = result.prompts[index]
        magnitude = np.abs(p.token_attributions).sum(axis=0)
        by_name = dict(zip(p.span_names, magnitude, strict=True))
        spans: list[dict[str, Any]] = []
        cursor = 0
        for span in p.prompt.spans:
            if span.start > cursor:
                spans.append({"text": p.prompt.text[cursor : span.start], "role": "none"})
            spans.append(
                {
                    "name": span.name,
                    "text": p.prompt.text[span.start : span.end],
                    "role": span.role,
                    "attribution": float(by_name.get(span.name, 0.0)),
                }
            )
            cursor = span.end
        if cursor < len(p.prompt.text):
            spans.append({"text": p.prompt.text[cursor:], "role": "none"})
        prefix = p.prefix_attributions
        prompts.append(
            {
                "prompt_id": p.prompt_id,
                "group": p.group,
                "target": p.target,
                "ratio": _finite(float(summary.magnitudes.ratio[index])),
                "answer_prefix": float(np.abs(prefix).sum()) if prefix is not None else None,
                "spans": spans,
            }
        )
    return {
        "engine": result.engine,
        "baseline": result.baseline,
        "fields": {name: _interval(iv) for name, iv in summary.fields.items()},
        "recency": [{"recency": r, **_interval(iv)} for r, iv in summary.recency.items()],
        "extreme_prompts": prompts,
    }


@hookimpl
def audit_sdk_register_detectors(register: Any) -> None:
    register(AttributionDetector)
