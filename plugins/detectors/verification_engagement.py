"""Engagement with logged playlist answers: QualityScore per prompt and group, with CIs, and
how far embeddings predict it (cross-validated R-squared and Spearman).

"Verifying LLM-Driven Music Recommendation Systems" (Amazon Music, KDD 2025 LLM4ECommerce
workshop, Sec. 5): QualityScore(P, R) = alpha Plays/|R| + beta Saves/|R| + gamma
SavedPlays/max(1, Saves) (:mod:`audit_sdk.verification.engagement`). The log
(``params.log``) is all it needs: no model runs, so any audit (a baseline subject, a logged
one) can carry it. Findings:

* ``engagement:quality_score``: mean over prompts of each prompt's mean QualityScore (a BCa
  CI resampling prompts), one row per prompt; and one finding per ``params.group_by`` column;
* ``engagement:validation_r2`` and ``engagement:validation_spearman``: the ridge model on
  prompt and track embeddings (``params.embedding_role``, else the packaged WordLlama) plus
  ``acoustic_*`` columns, out-of-fold, with CIs resampling prompts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar

import pandas as pd
from audit_sdk.adapters.embedding_adapter import EmbeddingAdapter, EmbeddingParams
from pydantic import Field

from audit_sdk import Detector, Finding, GroupEstimate, MetricSpec, PluginParams, hookimpl
from audit_sdk.errors import AuditSDKError
from audit_sdk.interfaces import AuditContext
from audit_sdk.interfaces._params import PathParam
from audit_sdk.stats.bootstrap import Interval, mean_ci
from audit_sdk.thresholds import evaluate_threshold
from audit_sdk.verification.engagement import (
    QualityWeights,
    quality_scores,
    read_engagement_log,
    validation_model,
)

__all__ = ["EngagementParams", "EngagementVerificationDetector"]

REFERENCE = (
    "Verifying LLM-Driven Music Recommendation Systems (Amazon Music, KDD 2025 LLM4ECommerce "
    "workshop), Sec. 5: QualityScore(P, R) = alpha Plays/|R| + beta Saves/|R| + gamma "
    "SavedPlays/max(1, Saves); validation model: ridge (sklearn), GroupKFold by prompt"
)


class EngagementParams(PluginParams):
    log: Annotated[Path, PathParam()] | None = Field(
        None, description="the engagement log (CSV/TSV/JSON lines/Parquet), one row per answer"
    )
    columns: dict[str, str] = Field(
        default_factory=dict, description="standard name -> the file's column name"
    )
    alpha: float = Field(1.0, ge=0.0, description="weight of plays per track")
    beta: float = Field(1.0, ge=0.0, description="weight of saves per track")
    gamma: float = Field(1.0, ge=0.0, description="weight of plays per saved track")
    group_by: list[str] = Field(default_factory=list, description="log columns to break down by")
    embedding_role: str | None = Field(None, description="models: role that embeds")
    acoustic_prefix: str = "acoustic_"
    folds: int = Field(5, ge=2)
    min_answers: int = Field(20, ge=4, description="fewest answers for the validation model")
    min_prompts: int = Field(3, ge=1, description="a group with fewer prompts is flagged")


class EngagementVerificationDetector(Detector):
    name = "verification_engagement"
    description = (
        "QualityScore of logged playlist answers by prompt and group, and how well "
        "embeddings predict it (KDD 2025 LLM4ECommerce)."
    )
    Params = EngagementParams
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("engagement:quality_score", "higher_is_better", 0.0, None, "mean over prompts"),
        MetricSpec("engagement:validation_r2", "higher_is_better", None, 1.0, "out-of-fold"),
        MetricSpec("engagement:validation_spearman", "higher_is_better", -1.0, 1.0, "out-of-fold"),
    )

    def detect(self, context: AuditContext) -> list[Finding]:
        params: EngagementParams = self.params  # type: ignore[assignment]
        metrics = [m.name for m in self.metrics]
        if params.log is None:
            return [self._skipped(m, "no engagement log: set params.log") for m in metrics]
        try:
            log = read_engagement_log(params.log, columns=params.columns)
        except AuditSDKError as error:
            return [self._skipped(m, f"engagement log not used: {error}") for m in metrics]
        unknown = [c for c in params.group_by if c not in log.columns]
        if unknown:
            return [
                self._skipped(
                    m,
                    f"params.group_by names {unknown}, not columns of {params.log} "
                    f"(it has {', '.join(map(str, log.columns))})",
                )
                for m in metrics
            ]
        weights = QualityWeights(params.alpha, params.beta, params.gamma)
        log = log.assign(quality_score=quality_scores(log, weights))
        findings = [self._quality(context, log, "prompt", by_prompt=True)]
        findings += [self._quality(context, log, column) for column in params.group_by]
        findings += self._validation(context, log)
        return findings

    def _quality(
        self, context: AuditContext, log: pd.DataFrame, column: str, *, by_prompt: bool = False
    ) -> Finding:
        params: EngagementParams = self.params  # type: ignore[assignment]
        confidence, n_resamples = context.bootstrap.confidence, context.bootstrap.n_resamples
        rng = context.rng(f"{self.name}:{column}")
        per_prompt = log.groupby("prompt")["quality_score"].mean()
        rows = []
        if by_prompt:
            counts = log.groupby("prompt").size()
            for prompt, values in log.groupby("prompt")["quality_score"]:
                interval = mean_ci(
                    values.to_numpy(), confidence=confidence, n_resamples=n_resamples, rng=rng
                )
                rows.append(self._row(str(prompt), interval, int(counts[prompt]), "answers", 2))
        else:
            labels = log.groupby("prompt")[column].agg(lambda v: str(v.mode().iloc[0]))
            for label, prompts in labels.groupby(labels):
                values = per_prompt.loc[prompts.index].to_numpy()
                interval = mean_ci(values, confidence=confidence, n_resamples=n_resamples, rng=rng)
                rows.append(
                    self._row(str(label), interval, len(values), "prompts", params.min_prompts)
                )
        overall = mean_ci(
            per_prompt.to_numpy(), confidence=confidence, n_resamples=n_resamples, rng=rng
        )
        threshold = self.threshold_for("engagement:quality_score")
        return Finding(
            detector=self.name,
            metric="engagement:quality_score",
            estimate=overall.estimate,
            ci_low=overall.low,
            ci_high=overall.high,
            confidence=confidence,
            ci_method=overall.method,
            n=overall.n,
            groups=rows,
            group_by=column,
            subject=context.subject.name,
            threshold=threshold,
            status=evaluate_threshold(threshold, overall.estimate, overall.low, overall.high),
            explanation=(
                f"QualityScore (alpha={params.alpha}, beta={params.beta}, gamma={params.gamma}) "
                f"of {len(log)} logged answers to {overall.n} prompts: {overall.estimate:.3g} "
                f"[{overall.low:.3g}, {overall.high:.3g}], by {column}; resampled unit: prompts"
            ),
            warnings=[f"{r.group}: {r.warning}" for r in rows if r.warning],
            chart="bars",
            reference=REFERENCE,
            details={"log": str(params.log), "answers": len(log)},
        )

    def _row(
        self, group: str, interval: Interval, n: int, unit: str, minimum: int
    ) -> GroupEstimate:
        return GroupEstimate(
            group=group,
            n=n,
            estimate=interval.estimate,
            ci_low=interval.low,
            ci_high=interval.high,
            warning=f"only {n} {unit} (< {minimum})" if n < minimum else None,
        )

    def _validation(self, context: AuditContext, log: pd.DataFrame) -> list[Finding]:
        params: EngagementParams = self.params  # type: ignore[assignment]
        names = ("engagement:validation_r2", "engagement:validation_spearman")
        if len(log) < params.min_answers:
            reason = f"the log has {len(log)} answers (< min_answers {params.min_answers})"
            return [self._skipped(m, reason) for m in names]
        embed = (
            context.models.get(params.embedding_role).embed
            if params.embedding_role
            else EmbeddingAdapter(EmbeddingParams(backend="wordllama")).embed
        )
        try:
            result = validation_model(
                log,
                log["quality_score"],
                embed,
                rng=context.rng(f"{self.name}:validation"),
                acoustic_prefix=params.acoustic_prefix,
                folds=params.folds,
                n_resamples=context.bootstrap.n_resamples,
                confidence=context.bootstrap.confidence,
            )
        except AuditSDKError as error:
            return [self._skipped(m, f"validation model not fitted: {error}") for m in names]
        findings = []
        for name, interval in zip(names, (result.r2, result.spearman), strict=True):
            threshold = self.threshold_for(name)
            findings.append(
                Finding(
                    detector=self.name,
                    metric=name,
                    estimate=interval.estimate,
                    ci_low=interval.low,
                    ci_high=interval.high,
                    confidence=context.bootstrap.confidence,
                    ci_method=interval.method,
                    n=interval.n,
                    subject=context.subject.name,
                    threshold=threshold,
                    status=evaluate_threshold(
                        threshold, interval.estimate, interval.low, interval.high
                    ),
                    explanation=(
                        f"{name.split('_', 1)[1]} of a ridge model predicting QualityScore from "
                        f"prompt and track embeddings ({result.features} features), "
                        f"{result.folds}-fold cross-validated by prompt: {interval.estimate:.3g} "
                        f"[{interval.low:.3g}, {interval.high:.3g}] over {result.n_answers} "
                        f"answers to {result.n_prompts} prompts"
                    ),
                    reference=REFERENCE,
                    details={"folds": result.folds, "features": result.features},
                )
            )
        return findings

    def _skipped(self, metric: str, reason: str) -> Finding:
        return Finding(detector=self.name, metric=metric, status="skipped", explanation=reason)


@hookimpl
def audit_sdk_register_detectors(register: Any) -> None:
    register(EngagementVerificationDetector)
