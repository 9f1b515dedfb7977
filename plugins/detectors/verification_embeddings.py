"""Intrinsic verification of embedding models: the paper-style table of models x tests.

"Verifying LLM-Driven Music Recommendation Systems" (Amazon Music, KDD 2025 LLM4ECommerce
workshop, Sec. 4) benchmarks embedding models on era consistency (eq. 1), analogies (eq. 2),
subgenre clustering (eq. 3) and theme retrieval with constraint adherence (eq. 4); the
estimators are in :mod:`audit_sdk.verification.intrinsic_tests`. Test sets come from the
catalog's metadata and, with ``params.test_set``, from a user file
(:mod:`audit_sdk.verification.test_sets`). Items are embedded from their metadata text
(``title by artist (genres; country; year)``, the downstream-utility detector's
:func:`item_texts`).

The models: ``params.models`` (roles of the config's ``models:`` section, each an adapter
with ``embed``); by default every configured role with ``embed``, and where there is none the
two packaged ones, all-MiniLM-L6-v2 and WordLlama (``adapters/embedding_adapter.py``).
One finding per test and suite (``verification:era``, ``verification:user:theme`` ...) and one
``verification:overall``, each with one row per model; ``details["table"]`` holds the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
import pandas as pd
from audit_sdk.adapters.embedding_adapter import EmbeddingAdapter, EmbeddingParams
from audit_sdk.plugins.detectors._profile_utility import item_texts
from pydantic import Field

from audit_sdk import Detector, Finding, GroupEstimate, MetricSpec, PluginParams, hookimpl
from audit_sdk.errors import AuditSDKError
from audit_sdk.interfaces import AuditContext
from audit_sdk.interfaces._params import PathParam
from audit_sdk.thresholds import evaluate_threshold
from audit_sdk.verification.catalog_attributes import catalog_attributes
from audit_sdk.verification.intrinsic_tests import (
    TESTS,
    Embed,
    EmbeddingScores,
    score_embedding,
    verification_table,
)
from audit_sdk.verification.test_sets import VerificationSuite, load_suite, suite_from_catalog

__all__ = [
    "EmbeddingVerificationDetector",
    "EmbeddingVerificationParams",
    "embedding_models",
    "metadata_texts",
]

REFERENCE = (
    "Verifying LLM-Driven Music Recommendation Systems (Amazon Music, KDD 2025 LLM4ECommerce "
    "workshop), Sec. 4: era consistency eq. 1, analogies eq. 2, subgenre clustering eq. 3 "
    "(silhouette, Rousseeuw 1987), theme retrieval with constraint adherence eq. 4"
)
_EQUATION = {"era": "eq. 1", "analogy": "eq. 2", "subgenre": "eq. 3", "theme": "eq. 4"}


class EmbeddingVerificationParams(PluginParams):
    models: list[str] | None = Field(
        None,
        description="roles of the config's models: section to compare (default: every role "
        "with embed, else the packaged MiniLM and WordLlama)",
    )
    test_set: Annotated[Path, PathParam()] | None = Field(
        None, description="a user test-set file (YAML or JSON; see audit_sdk.verification)"
    )
    catalog_tests: bool = Field(True, description="also build test sets from the catalog")
    max_per_group: int = Field(10, ge=2, description="items sampled per era, cell, subgenre")
    min_per_group: int = Field(5, ge=2, description="smallest era, cell or subgenre used")
    max_analogies: int = Field(40, ge=1)
    max_themes: int = Field(16, ge=1)
    pool_size: int = Field(150, ge=10, description="random catalog items theme retrieval ranks")
    theme_weight: float = Field(0.5, ge=0.0, le=1.0, description="lambda of eq. 4")
    k: int = Field(10, ge=1, description="items retrieved per theme (eq. 4)")
    eps: float | None = Field(
        None, gt=0, description="eq. 2 threshold (default: d must be the nearest entity)"
    )


def metadata_texts(catalog: pd.DataFrame) -> pd.Series:
    """Each item's metadata line (:func:`item_texts`), index as strings; missing values
    (``pd.NA`` in HetRec's country and era columns) read as unknown."""
    known = catalog.astype(object).where(catalog.notna(), None)
    texts = item_texts(known)
    texts.index = texts.index.astype(str)
    return texts


def embedding_models(context: AuditContext, roles: list[str] | None) -> dict[str, Embed]:
    """Label -> embed function: the named roles, else every configured role with ``embed``,
    else the packaged all-MiniLM-L6-v2 and WordLlama."""
    models = context.models
    if roles is None:
        roles = [r for r in models.roles() if models.get(r).supports("embed")]
    if roles:
        chosen: dict[str, Embed] = {}
        for role in roles:
            adapter = models.get(role)
            if not adapter.supports("embed"):
                raise AuditSDKError(
                    f"models.{role} (adapter {adapter.name!r}) has no 'embed' capability; "
                    "verification compares embedding models (e.g. adapter: embedding)"
                )
            chosen[role] = adapter.embed
        return chosen
    return {
        "all-MiniLM-L6-v2": EmbeddingAdapter(EmbeddingParams()).embed,
        "wordllama-l2-256": EmbeddingAdapter(EmbeddingParams(backend="wordllama")).embed,
    }


class EmbeddingVerificationDetector(Detector):
    name = "verification_embeddings"
    description = (
        "Intrinsic tests of embedding models (era, analogy, subgenre, theme; KDD 2025 "
        "LLM4ECommerce), per model with bootstrap CIs."
    )
    Params = EmbeddingVerificationParams
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("verification:*", "higher_is_better", -1.0, 1.0, "mean over test units"),
    )

    def detect(self, context: AuditContext) -> list[Finding]:
        params: EmbeddingVerificationParams = self.params  # type: ignore[assignment]
        attrs = catalog_attributes(context.dataset.catalog.frame)
        suites: dict[str, VerificationSuite] = {}
        findings: list[Finding] = []
        if params.catalog_tests:
            suites["catalog"] = suite_from_catalog(
                attrs,
                rng=context.rng(f"{self.name}:suite"),
                max_per_group=params.max_per_group,
                min_per_group=params.min_per_group,
                max_analogies=params.max_analogies,
                max_themes=params.max_themes,
                pool_size=params.pool_size,
            )
        if params.test_set is not None:
            try:
                suites["user"] = load_suite(
                    params.test_set,
                    attrs,
                    max_per_group=params.max_per_group,
                    pool=suites["catalog"].pool if "catalog" in suites else (),
                )
            except AuditSDKError as error:
                findings += [
                    self._skipped(f"verification:user:{t}", f"test set not used: {error}")
                    for t in TESTS
                ]
        if not suites:
            return findings or [self._skipped("verification:overall", "no test set to run")]
        models = embedding_models(context, params.models)
        texts = metadata_texts(context.dataset.catalog.frame)
        for label, suite in suites.items():
            results = [
                score_embedding(
                    suite,
                    embed,
                    texts,
                    attrs.set_axis(attrs.index.astype(str)),
                    model=model,
                    seed=context.seed,
                    n_resamples=context.bootstrap.n_resamples,
                    confidence=context.bootstrap.confidence,
                    theme_weight=params.theme_weight,
                    k=params.k,
                    eps=params.eps,
                )
                for model, embed in models.items()
            ]
            findings += self._suite_findings(context, label, suite, results)
        return findings

    def _suite_findings(
        self,
        context: AuditContext,
        label: str,
        suite: VerificationSuite,
        results: list[EmbeddingScores],
    ) -> list[Finding]:
        prefix = "verification:" if label == "catalog" else f"verification:{label}:"
        table = verification_table(results)
        table_details = {
            "columns": ["model", *TESTS, "overall"],
            "rows": [
                [model]
                + [
                    _cell(row[t], row[f"{t}_ci_low"], row[f"{t}_ci_high"])
                    for t in (*TESTS, "overall")
                ]
                for model, row in table.iterrows()
            ],
        }
        findings = []
        for test in (*TESTS, "overall"):
            metric = f"{prefix}{test}"
            if test != "overall" and test in suite.skipped:
                findings.append(self._skipped(metric, suite.skipped[test]))
                continue
            rows = []
            for result in results:
                interval = result.overall if test == "overall" else None
                if test in result.scores:
                    interval = result.scores[test].interval
                if interval is None:
                    continue
                extra: dict[str, Any] = {}
                if test in result.scores:
                    extra = {
                        k: v
                        for k, v in result.scores[test].details.items()
                        if isinstance(v, (int, float, str)) or v is None
                    }
                rows.append(
                    GroupEstimate(
                        group=result.model,
                        n=interval.n,
                        estimate=interval.estimate,
                        ci_low=interval.low,
                        ci_high=interval.high,
                        extra=extra,
                    )
                )
            if not rows:
                reason = "; ".join(f"{r.model}: {r.skipped.get(test, 'no score')}" for r in results)
                findings.append(self._skipped(metric, reason))
                continue
            first = rows[0]
            assert first.estimate is not None
            threshold = self.threshold_for(metric)
            best = max(rows, key=lambda r: r.estimate if r.estimate is not None else -np.inf)
            findings.append(
                Finding(
                    detector=self.name,
                    metric=metric,
                    estimate=first.estimate,
                    ci_low=first.ci_low,
                    ci_high=first.ci_high,
                    confidence=context.bootstrap.confidence,
                    ci_method="bootstrap-BCa over test units (paired across models)",
                    n=first.n,
                    groups=rows,
                    group_by="embedding model",
                    subject=context.subject.name,
                    threshold=threshold,
                    status=evaluate_threshold(
                        threshold, first.estimate, first.ci_low, first.ci_high
                    ),
                    explanation=(
                        f"{test} score ({_EQUATION.get(test, 'mean of the tests')}) on the "
                        f"{label} test set: {first.group} {first.estimate:.3g} "
                        f"[{first.ci_low:.3g}, {first.ci_high:.3g}] over {first.n} units; best "
                        f"{best.group} {best.estimate:.3g}; resampled unit: test items"
                    ),
                    chart="bars",
                    reference=REFERENCE,
                    details={"suite": suite.source, "table": table_details},
                )
            )
        return findings

    def _skipped(self, metric: str, reason: str) -> Finding:
        return Finding(detector=self.name, metric=metric, status="skipped", explanation=reason)


def _cell(estimate: float, low: float, high: float) -> str:
    if not np.isfinite(estimate):
        return "n/a"
    return f"{estimate:.3f} [{low:.3f}, {high:.3f}]"


@hookimpl
def audit_sdk_register_detectors(register: Any) -> None:
    register(EmbeddingVerificationDetector)
