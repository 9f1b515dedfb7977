"""Does the recommender understand *whose* preference it is? (PerRecBench-style.)

Tang et al., "Can Large Language Models Understand Preferences in Personalized
Recommendation?" (PerRecBench, arXiv 2501.13391) show that rating error (MAE/RMSE) says little
about personalization, and test it directly: users who rated the same item at about the same
time are ranked by their *relative* rating (rating minus the user's own mean), so neither
item quality nor a user's generosity helps. This detector

1. builds such groups of 2, 3 and 4 users (easy, medium, hard) from any dataset with ratings
   and timestamps (:mod:`._personalization_groups`; every threshold is a parameter);
2. ranks each group's users with reference scorers (random, user mean, item mean, or any
   ``package.module:function``) and with the subject's generating adapter (and any model
   roles in ``generators``) prompted pointwise, pairwise and listwise with each user's k most
   relevant earlier items by BM25 (:mod:`._personalization_methods`,
   :mod:`._personalization_prompts`);
3. scores each method by Kendall's tau-b between predicted and true rank vectors per group,
   averaged overall and per difficulty with bootstrap CIs over groups, beside MAE/RMSE of
   pointwise ratings and per user-group concordance (:mod:`._personalization_metrics`, which
   also documents the ordering-vs-rank-vector bug of PerRecBench's released evaluator).

Malformed answers are counted and reported, never dropped silently: a group with any
unusable answer leaves that method's average, and a method with no usable group is a ``warn``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Annotated, Any, ClassVar

from pydantic import Field

from audit_sdk.finding_builders import group_disparity_finding
from audit_sdk.group_statistics import compare_groups_many
from audit_sdk.hookspecs import hookimpl
from audit_sdk.interfaces import AuditContext, Detector, GenerationParams
from audit_sdk.interfaces._params import PathParam
from audit_sdk.interfaces.requirements import MetricSpec, Needs, Requirement
from audit_sdk.report_model import Finding, GroupEstimate
from audit_sdk.thresholds import Threshold, evaluate_threshold

from ._personalization_groups import GroupSettings, PersonalizationGroups, build_groups
from ._personalization_logged import read_logged_predictions, write_predictions
from ._personalization_methods import LLM_METHODS, LLMMethod, MethodRun, run_llm_method, run_scorer
from ._personalization_metrics import (
    error_intervals,
    group_taus,
    summarize_taus,
    user_concordance,
)
from ._personalization_prompts import member_contexts, with_profiles
from ._personalization_recommenders import rank_with_recommender, ranking_capability
from ._personalization_summary import tau_table, tau_vs_mae

__all__ = ["PersonalizationDetector", "PersonalizationParams", "tau_vs_mae"]

REFERENCE = (
    "Tang et al., PerRecBench, arXiv 2501.13391 (Sec. 3: relative-rating groups; Sec. 4: "
    "Kendall tau); Kendall 1945, Eq. 5 (tau-b)"
)
_REFERENCE_SCORERS = ("random", "user_mean", "item_mean", "constant_rating", "item_knn")


class PersonalizationParams(GroupSettings):
    history_k: int = Field(
        4, ge=0, description="history items per user in a prompt, the most relevant by BM25"
    )
    include_profile: bool = Field(
        False,
        description="also show each user's taste profile from the profile pipeline (the "
        "subject's profiles) in the prompts",
    )
    methods: list[LLMMethod] = Field(
        default_factory=lambda: list(LLM_METHODS),
        description="LLM prompting methods, run with every generating model",
    )
    scorers: list[str] = Field(
        default_factory=lambda: list(_REFERENCE_SCORERS),
        description="scorers ranked directly: random, user_mean, item_mean, constant_rating, "
        "item_knn, or "
        "'package.module:function' taking (queries, dataset) and returning one score per row",
    )
    generators: list[str] = Field(
        default_factory=list,
        description="model roles (config models: section) prompted besides the subject",
    )
    recommenders: list[str] = Field(
        default_factory=list,
        description="model roles (config models: section) ranked directly by their own "
        "affinity for the query item: its log-probability given the user's history where the "
        "adapter can score, else its position in a refit recommender's ranking of the whole "
        "catalog (the baselines exclude consumed items, so they are refit without the "
        "members' query ratings); adapters that can do neither are reported as unrankable",
    )
    rank_subject: bool = Field(
        True, description="also rank the subject directly (as 'affinity') when it can"
    )
    temperature: float = Field(0.0, ge=0)
    max_new_tokens: int = Field(
        64, ge=1, description="most new tokens of any answer (see cap_to_answer)"
    )
    cap_to_answer: bool = Field(
        True,
        description="generate at most the tokens the longest valid JSON answer of each method "
        "needs (+4), in the model's own tokenizer where it has one: answers cannot parse "
        "beyond that, and a model that never closes its JSON would decode to max_new_tokens",
    )
    predictions_path: Annotated[str | None, PathParam()] = Field(
        None, description="write every method's per-user predictions here (CSV)"
    )
    logged_predictions: Annotated[str | None, PathParam()] = Field(
        None,
        description="also score predictions produced elsewhere: a CSV with group_id, user_id, "
        "method, predicted (or rank) and relative (or rating and user_mean)",
    )


class PersonalizationDetector(Detector):
    name = "personalization"
    description = (
        "Ranks users who rated the same item by their relative rating (PerRecBench): Kendall "
        "tau per method and difficulty, with CIs."
    )
    requires: ClassVar[frozenset[Requirement]] = frozenset({Needs.RATINGS})
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("kendall_tau:*", "higher_is_better", low=-1.0, high=1.0),
        MetricSpec("mae:*", "lower_is_better", low=0.0),
        MetricSpec("rmse:*", "lower_is_better", low=0.0),
        MetricSpec("user_concordance:*", "lower_is_better", low=0.0, high=2.0),
        MetricSpec("groups", "none", low=0.0),
    )
    Params = PersonalizationParams
    default_thresholds: ClassVar[dict[str, Threshold]] = {
        # An LLM method whose whole CI lies below 0.05 shows no sign of personalization.
        "kendall_tau:*wise*": Threshold(statistic="ci_high", warn_below=0.05),
    }

    @property
    def _params(self) -> PersonalizationParams:
        assert isinstance(self.params, PersonalizationParams)
        return self.params

    def detect(self, context: AuditContext) -> list[Finding]:
        findings = self._from_dataset(context)
        if self._params.logged_predictions:
            for run in read_logged_predictions(self._params.logged_predictions):
                n_total = int(run.predictions["group_id"].nunique())
                logged = replace(run, name=f"logged:{run.name}")
                findings += self._method_findings(context, n_total, logged, judged=True)
        summary = next((f for f in findings if f.metric == "groups" and f.status == "pass"), None)
        if summary is not None:
            summary.details["tau_vs_mae"] = tau_vs_mae(findings)
            summary.details["tau_table"] = tau_table(findings)
        return findings

    def _from_dataset(self, context: AuditContext) -> list[Finding]:
        interactions = context.dataset.interactions
        missing = [
            what
            for what, present in (
                ("ratings", interactions.has_ratings),
                ("timestamps", interactions.has_timestamps),
            )
            if not present
        ]
        if missing:
            return [
                self._skipped(
                    context,
                    "groups",
                    f"the dataset {context.dataset.name!r} has no {' and no '.join(missing)} in "
                    "its interactions; personalization groups need a 'rating' and a "
                    "'timestamp' column (the tabular loader reads both)",
                )
            ]
        params = self._params
        settings = GroupSettings(**params.model_dump(include=set(GroupSettings.model_fields)))
        groups = build_groups(interactions.frame, settings, context.rng(f"{self.name}:groups"))
        if groups.n_groups == 0:
            return [
                self._skipped(
                    context,
                    "groups",
                    "no group of users passed the filters (window "
                    f"{settings.window_days:g} days, at least {settings.min_history} earlier "
                    f"ratings, relative ratings {settings.min_gap:g} apart); counts: "
                    f"{groups.counts}. Widen window_days or lower min_history/min_gap.",
                    details={"group_construction": groups.counts},
                )
            ]
        runs: list[tuple[MethodRun, bool]] = []
        for scorer in params.scorers:
            began, cpu = time.perf_counter(), time.process_time()
            run = run_scorer(scorer, groups, context.dataset, context.rng(f"{self.name}:{scorer}"))
            label = scorer.rpartition(":")[2]
            run = replace(
                run,
                name=label,
                seconds=time.perf_counter() - began,
                cpu_seconds=time.process_time() - cpu,
            )
            runs.append((run, False))
        findings: list[Finding] = [self._groups_finding(context, groups)]
        generators = self._generators(context) if params.methods else []
        prompt_context = (
            member_contexts(
                groups.members, groups.timelines, context.dataset.catalog.frame, k=params.history_k
            )
            if generators
            else ({}, {})
        )
        if generators and params.include_profile:
            with_profile, n_profiles = with_profiles(prompt_context[0], context.subject.profiles)
            prompt_context = (with_profile, prompt_context[1])
            findings[0].details["members_with_profile"] = n_profiles
        ratings = interactions.frame["rating"]
        scale = (float(ratings.min()), float(ratings.max()))
        for label, adapter in generators:
            for method in params.methods:
                began, cpu = time.perf_counter(), time.process_time()
                run = run_llm_method(
                    method,
                    groups,
                    prompt_context,
                    service=context.generation,
                    adapter=adapter,
                    params=GenerationParams(
                        temperature=params.temperature,
                        max_new_tokens=params.max_new_tokens,
                        seed=context.seed,
                    ),
                    label=label,
                    scale=scale,
                    cap_to_answer=params.cap_to_answer,
                )
                name = method if label == "subject" else f"{method}@{label}"
                run = replace(
                    run,
                    name=name,
                    seconds=time.perf_counter() - began,
                    cpu_seconds=time.process_time() - cpu,
                )
                runs.append((run, True))
        for label, adapter in self._recommenders(context):
            began, cpu = time.perf_counter(), time.process_time()
            name = "affinity" if label == "subject" else f"affinity@{label}"
            run = rank_with_recommender(adapter, groups, context.dataset, label=name)
            run = replace(
                run,
                kind="recommender",
                seconds=time.perf_counter() - began,
                cpu_seconds=time.process_time() - cpu,
            )
            runs.append((run, False))
        if not any(is_llm for _, is_llm in runs) and params.methods:
            findings.append(
                self._skipped(
                    context,
                    "kendall_tau:llm",
                    f"adapter {context.subject.adapter!r} does not generate text and no "
                    "generators roles are configured, so pointwise/pairwise/listwise did not run",
                )
            )
        for run, is_llm in runs:
            findings += self._method_findings(context, groups.n_groups, run, judged=is_llm)
        if params.predictions_path:
            write_predictions(params.predictions_path, [run for run, _ in runs])
        return findings

    # -- models -------------------------------------------------------------------------------
    def _generators(self, context: AuditContext) -> list[tuple[str, Any]]:
        found = []
        adapter = context.adapter
        if adapter is not None and adapter.supports("generate"):
            found.append(("subject", adapter))
        for role in self._params.generators:
            found.append((role, context.models.get(role)))
        return found

    def _recommenders(self, context: AuditContext) -> list[tuple[str, Any]]:
        found = []
        adapter = context.adapter
        if self._params.rank_subject and adapter is not None and ranking_capability(adapter):
            found.append(("subject", adapter))
        for role in self._params.recommenders:
            found.append((role, context.models.get(role)))
        return found

    # -- findings -----------------------------------------------------------------------------
    def _skipped(
        self, context: AuditContext, metric: str, reason: str, details: dict[str, Any] | None = None
    ) -> Finding:
        return Finding(
            detector=self.name,
            metric=metric,
            subject=context.subject.name,
            status="skipped",
            explanation=reason,
            reference=REFERENCE,
            details=details or {},
        )

    def _groups_finding(self, context: AuditContext, groups: PersonalizationGroups) -> Finding:
        sizes = groups.members.drop_duplicates("group_id")["difficulty"].value_counts()
        return Finding(
            detector=self.name,
            metric="groups",
            subject=context.subject.name,
            n=groups.n_groups,
            status="pass",
            explanation=(
                f"{groups.n_groups} groups of users who rated the same item ("
                + ", ".join(f"{d}: {n}" for d, n in sizes.items())
                + f") from {groups.counts['ratings']} ratings"
            ),
            groups=[GroupEstimate(group=str(d), n=int(n), estimate=None) for d, n in sizes.items()],
            group_by="difficulty",
            reference=REFERENCE,
            details={"group_construction": groups.counts},
        )

    def _method_findings(
        self, context: AuditContext, n_total: int, run: MethodRun, *, judged: bool
    ) -> list[Finding]:
        """Tau (overall and per difficulty), MAE/RMSE where ratings were predicted, and per
        user-group concordance of one method; ``judged``: the audited model's (thresholds
        apply), not a reference scorer's."""
        confidence, n_resamples = context.bootstrap.confidence, context.bootstrap.n_resamples
        metric = f"kendall_tau:{run.name}"
        kind = run.kind or (
            "logged" if run.name.startswith("logged:") else ("audited" if judged else "reference")
        )
        if run.unrankable:
            return [
                self._skipped(
                    context,
                    metric,
                    run.unrankable,
                    details={
                        "unrankable": run.unrankable,
                        "kind": kind,
                        "groups_total": n_total,
                        "groups_scored": 0,
                        "counts": run.counts,
                    },
                )
            ]
        scores = group_taus(run.predictions)
        unusable = n_total - len(scores.frame)
        details: dict[str, Any] = {
            "counts": run.counts,
            "groups_total": n_total,
            "groups_scored": len(scores.frame),
            "constant_predictions": scores.n_constant,
            "kind": kind,
            "seconds": round(run.seconds, 3),
            "cpu_seconds": round(run.cpu_seconds, 3),
        }
        if run.examples:
            details["malformed_examples"] = run.examples
        warnings = []
        if unusable:
            warnings.append(
                f"{unusable} of {n_total} groups had unusable answers "
                f"(malformed: {run.counts.get('malformed', 0)}, errors: "
                f"{run.counts.get('errors', 0)}, missing scores: "
                f"{run.counts.get('missing_scores', 0)})"
            )
        if scores.frame.empty:
            return [
                Finding(
                    detector=self.name,
                    metric=metric,
                    subject=context.subject.name,
                    n=0,
                    status="warn",
                    explanation=(
                        f"{run.name}: no group could be scored; of {run.counts.get('prompts', 0)} "
                        f"answers {run.counts.get('malformed', 0)} were malformed and "
                        f"{run.counts.get('errors', 0)} failed"
                    ),
                    warnings=warnings,
                    reference=REFERENCE,
                    details=details,
                )
            ]
        overall, by_difficulty = summarize_taus(
            scores, confidence=confidence, n_resamples=n_resamples, rng=context.rng(metric)
        )
        rows = [
            GroupEstimate(
                group=d,
                n=iv.n,
                estimate=iv.estimate,
                ci_low=iv.low,
                ci_high=iv.high,
                warning="few groups" if iv.n < context.min_group_size else None,
            )
            for d, iv in by_difficulty.items()
        ]
        threshold = self.threshold_for(metric) if judged else None
        text = f"{run.name}: mean Kendall tau-b {overall.estimate:.3f} [{overall.low:.3f}, " + (
            f"{overall.high:.3f}] over {overall.n} groups ("
            + ", ".join(f"{d} {iv.estimate:.2f}" for d, iv in by_difficulty.items())
            + ")"
        )
        out = [
            Finding(
                detector=self.name,
                metric=metric,
                subject=context.subject.name,
                estimate=overall.estimate,
                ci_low=overall.low,
                ci_high=overall.high,
                confidence=confidence,
                ci_method=f"{overall.method} over groups",
                n=overall.n,
                groups=rows,
                group_by="difficulty",
                threshold=threshold,
                status=evaluate_threshold(threshold, overall.estimate, overall.low, overall.high),
                explanation=text,
                warnings=warnings,
                chart="bars",
                reference=REFERENCE,
                details=details,
            )
        ]
        errors = error_intervals(
            run.predictions,
            confidence=confidence,
            n_resamples=n_resamples,
            rng=context.rng(f"{metric}:errors"),
        )
        if errors is not None:
            for name, iv in zip(("mae", "rmse"), errors, strict=True):
                out.append(
                    Finding(
                        detector=self.name,
                        metric=f"{name}:{run.name}",
                        subject=context.subject.name,
                        estimate=iv.estimate,
                        ci_low=iv.low,
                        ci_high=iv.high,
                        confidence=confidence,
                        ci_method=f"{iv.method} over groups",
                        n=iv.n,
                        status="pass",
                        explanation=(
                            f"{run.name}: {name.upper()} of predicted ratings {iv.estimate:.3f} "
                            f"[{iv.low:.3f}, {iv.high:.3f}] (beside tau "
                            f"{overall.estimate:.3f}: rating error says little about ranking)"
                        ),
                        reference="PerRecBench, arXiv 2501.13391, Sec. 4.2",
                    )
                )
        if judged or run.name not in _REFERENCE_SCORERS:
            out += self._by_user_group(context, run)
        return out

    def _by_user_group(self, context: AuditContext, run: MethodRun) -> list[Finding]:
        concordance = user_concordance(run.predictions)
        concordance = concordance[concordance.index.isin(context.user_table.index)]
        attributes = [a for a in context.group_columns if a in context.user_table]
        if concordance.empty or not attributes:
            return []
        # one stream of bootstrap weights serves every attribute
        comparisons = compare_groups_many(
            [(concordance, context.user_table[a].reindex(concordance.index)) for a in attributes],
            min_group_size=context.min_group_size,
            confidence=context.bootstrap.confidence,
            n_resamples=context.bootstrap.n_resamples,
            rng=context.rng(f"{self.name}:user_concordance:{run.name}"),
        )
        return [
            group_disparity_finding(
                context,
                detector=self.name,
                metric=f"user_concordance:{run.name}",
                values=concordance,
                attribute=attribute,
                summary="gap",
                threshold=self.threshold_for(f"user_concordance:{run.name}:group_gap"),
                reference=REFERENCE,
                label=run.name,
                comparison=comparison,
            )
            for attribute, comparison in zip(attributes, comparisons, strict=True)
        ]


@hookimpl
def audit_sdk_register_detectors(register: Any) -> None:
    register(PersonalizationDetector)
