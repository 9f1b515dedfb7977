"""The four intrinsic embedding tests of "Verifying LLM-Driven Music Recommendation Systems"
(Amazon Music, KDD 2025 LLM4ECommerce workshop, Sec. 4, eqs. 1-4), with bootstrap CIs, and
the paper's models x tests table with an overall score.

Every vector is unit-normalised; ``cos`` is their dot product. Each test yields one value per
*unit* (an item, an analogy, a theme); its score is the mean over units with a BCa bootstrap
CI resampling units (:func:`audit_sdk.stats.bootstrap.bca_mean_interval`). Every model sees
the same resampling weights per test, so their intervals are paired. The overall score is the
unweighted mean of the available tests' scores (the paper's "overall" column); its interval
comes from the per-resample means of the test replicates (tests use disjoint draws).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import silhouette_samples

from audit_sdk.stats.bootstrap import Interval, bca_mean_interval, statistic_ci
from audit_sdk.stats.resampling_weights import group_mean_replicates
from audit_sdk.vectors import unit_rows
from audit_sdk.verification.catalog_attributes import satisfies_all
from audit_sdk.verification.test_sets import VerificationSuite

__all__ = [
    "TESTS",
    "EmbeddingScores",
    "TestScore",
    "analogy_hits",
    "era_consistency",
    "score_embedding",
    "subgenre_clustering",
    "theme_retrieval",
    "verification_table",
]

TESTS = ("era", "analogy", "subgenre", "theme")
Embed = Callable[[Sequence[str]], np.ndarray]


def era_consistency(groups: Mapping[str, np.ndarray]) -> np.ndarray:
    """Eq. 1, per item: the paper's E = sum_i cos(v_i, c_era(i)) w_era, made contrastive
    so that a model's overall cosine level (anisotropy) does not count:

        e_i = (cos(v_i, c_own^(-i)) - mean_{era' != own} cos(v_i, c_era')) / 2   in [-1, 1]

    with c_era the normalised centroid of the era's items (leave-one-out for the own era) and
    w_era = 1 for every item (the sets are sampled to equal sizes). A random embedding scores
    about 0; one that places eras apart, up to 1."""
    names = list(groups)
    sums = {e: np.asarray(groups[e], dtype=float).sum(axis=0) for e in names}
    centroids = {e: unit_rows(s) for e, s in sums.items()}
    values = []
    for era in names:
        vectors = np.asarray(groups[era], dtype=float)
        if len(vectors) < 2:
            continue
        own = unit_rows(sums[era][None, :] - vectors)
        own_cos = np.einsum("ij,ij->i", vectors, own)
        others = np.mean([vectors @ centroids[e] for e in names if e != era], axis=0)
        values.append((own_cos - others) / 2)
    return np.concatenate(values) if values else np.empty(0)


def analogy_hits(
    entities: Mapping[str, np.ndarray],
    analogies: Sequence[tuple[str, str, str, str]],
    *,
    eps: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 2, per analogy a : b :: c : d: hit = 1[ ||v_b - v_a + v_c - v_d|| < eps ].

    ``entities`` maps names to (unit) vectors. With ``eps=None`` the threshold of each
    analogy is the distance of the nearest other candidate (every entity but a, b, c), i.e. a
    hit is d being the nearest entity to v_b - v_a + v_c (3CosAdd; Mikolov et al., NAACL
    2013), which no scale of the embedding can game. Returns (hits, residual norms)."""
    names = list(entities)
    matrix = np.vstack([entities[n] for n in names])
    position = {n: i for i, n in enumerate(names)}
    hits, residuals = [], []
    for a, b, c, d in analogies:
        query = entities[b] - entities[a] + entities[c]
        distances = np.linalg.norm(matrix - query, axis=1)
        residual = distances[position[d]]
        if eps is None:
            others = np.delete(distances, [position[a], position[b], position[c], position[d]])
            threshold = others.min() if len(others) else np.inf
        else:
            threshold = eps
        hits.append(float(residual < threshold))
        residuals.append(float(residual))
    return np.asarray(hits), np.asarray(residuals)


def subgenre_clustering(
    tree: Mapping[str, Mapping[str, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 3, per item: its silhouette among the subgenres of its parent genre (Rousseeuw,
    J. Comput. Appl. Math. 1987; ``sklearn.metrics.silhouette_samples``, cosine distance),
    and its cosine to its subgenre's leave-one-out centroid. Returns (silhouettes, cosines);
    the score is the mean silhouette, the cosines are reported beside it."""
    silhouettes, cosines = [], []
    for subs in tree.values():
        usable = {s: np.asarray(v, dtype=float) for s, v in subs.items() if len(v) >= 2}
        if len(usable) < 2:
            continue
        x = np.vstack(list(usable.values()))
        labels = np.repeat(np.arange(len(usable)), [len(v) for v in usable.values()])
        silhouettes.append(silhouette_samples(x, labels, metric="cosine"))
        for vectors in usable.values():
            own = unit_rows(vectors.sum(axis=0)[None, :] - vectors)
            cosines.append(np.einsum("ij,ij->i", vectors, own))
    if not silhouettes:
        return np.empty(0), np.empty(0)
    return np.concatenate(silhouettes), np.concatenate(cosines)


def theme_retrieval(
    theme_vectors: np.ndarray,
    member_centroids: np.ndarray,
    pool_vectors: np.ndarray,
    allowed: np.ndarray,
    *,
    weight: float = 0.5,
    k: int = 10,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eq. 4, per theme t: T = lambda cos(v_t, c_t) + (1 - lambda) adherence, with v_t the
    theme text's vector, c_t the normalised centroid of the theme's items and adherence the
    share of the ``k`` pool items nearest to v_t that satisfy the theme's constraints
    (``allowed``: themes x pool). Returns (T, cosines, adherence)."""
    cosines = np.einsum("ij,ij->i", theme_vectors, unit_rows(member_centroids))
    similarity = theme_vectors @ pool_vectors.T
    top = np.argsort(-similarity, axis=1, kind="stable")[:, : min(k, pool_vectors.shape[0])]
    adherence = np.take_along_axis(allowed, top, axis=1).mean(axis=1)
    return weight * cosines + (1 - weight) * adherence, cosines, adherence


@dataclass(frozen=True)
class TestScore:
    test: str
    interval: Interval
    replicates: np.ndarray
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EmbeddingScores:
    """One embedding model's scores: per test, the overall score, and why tests were skipped."""

    model: str
    scores: Mapping[str, TestScore]
    overall: Interval | None
    skipped: Mapping[str, str]


def _interval(
    values: np.ndarray, seed: int, test: str, *, n_resamples: int, confidence: float
) -> tuple[Interval, np.ndarray]:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    rng = np.random.default_rng([seed, TESTS.index(test)])
    if len(values) < 2:
        return bca_mean_interval(values, np.empty(0), confidence=confidence), np.full(
            n_resamples, float(values.mean()) if len(values) else np.nan
        )
    replicates = group_mean_replicates(
        values, np.zeros(len(values), dtype=np.intp), 1, n_resamples=n_resamples, rng=rng
    )[:, 0]
    return bca_mean_interval(values, replicates, confidence=confidence), replicates


def score_embedding(
    suite: VerificationSuite,
    embed: Embed,
    texts: pd.Series,
    attrs: pd.DataFrame,
    *,
    model: str,
    seed: int,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    theme_weight: float = 0.5,
    k: int = 10,
    eps: float | None = None,
) -> EmbeddingScores:
    """Run every test of ``suite`` on the embedding ``embed`` (texts -> vectors) of the items'
    ``texts`` (item id -> text) and the themes' texts; ``attrs`` from
    :func:`~audit_sdk.verification.catalog_attributes.catalog_attributes`."""
    items = suite.items()
    theme_texts = [t.text for t in suite.themes]
    vectors = unit_rows(embed([str(texts.get(i, i)) for i in items] + theme_texts))
    if vectors.shape[0] != len(items) + len(theme_texts):
        raise ValueError(
            f"embedding model {model!r} returned {vectors.shape[0]} vectors for "
            f"{len(items) + len(theme_texts)} texts"
        )
    row = {item: r for r, item in enumerate(items)}

    def of(ids: Sequence[str]) -> np.ndarray:
        return vectors[[row[i] for i in ids]]

    skipped = dict(suite.skipped)
    raw: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}
    if suite.eras and "era" not in skipped:
        raw["era"] = (era_consistency({e: of(ids) for e, ids in suite.eras.items()}), {})
    if suite.analogies and "analogy" not in skipped:
        entity = {name: unit_rows(of(ids).mean(axis=0)) for name, ids in suite.entities.items()}
        hits, residuals = analogy_hits(entity, [a.names for a in suite.analogies], eps=eps)
        raw["analogy"] = (hits, {"mean_residual": float(residuals.mean()), "eps": eps})
    if suite.subgenres and "subgenre" not in skipped:
        tree = {p: {s: of(ids) for s, ids in subs.items()} for p, subs in suite.subgenres.items()}
        silhouettes, cosines = subgenre_clustering(tree)
        if len(silhouettes):
            raw["subgenre"] = (silhouettes, {"centroid_cos": float(cosines.mean())})
        else:
            skipped["subgenre"] = "no parent genre has two subgenres with two items each"
    if suite.themes and "theme" not in skipped:
        pool = [i for i in suite.pool if i in row]
        pool_attrs = attrs.reindex(pool)
        allowed = np.vstack([satisfies_all(pool_attrs, t.constraints) for t in suite.themes])
        centroids = np.vstack([of(t.members).mean(axis=0) for t in suite.themes])
        theme_values, cosines, adherence = theme_retrieval(
            vectors[len(items) :], centroids, of(pool), allowed, weight=theme_weight, k=k
        )
        raw["theme"] = (
            theme_values,
            {
                "cos_theme_centroid": float(cosines.mean()),
                "constraint_adherence": float(adherence.mean()),
                "lambda": theme_weight,
                "k": k,
                "pool": len(pool),
            },
        )
    scores: dict[str, TestScore] = {}
    for test in TESTS:
        if test not in raw:
            continue
        values, details = raw[test]
        interval, replicates = _interval(
            values, seed, test, n_resamples=n_resamples, confidence=confidence
        )
        scores[test] = TestScore(test, interval, replicates, details)
    overall = None
    if scores:
        estimate = float(np.mean([s.interval.estimate for s in scores.values()]))
        replicates = np.mean([s.replicates for s in scores.values()], axis=0)
        overall = statistic_ci(
            replicates,
            estimate,
            confidence=confidence,
            n=sum(s.interval.n for s in scores.values()),
            method="bootstrap-percentile (mean of the tests' replicates)",
        )
    return EmbeddingScores(model, scores, overall, skipped)


def verification_table(results: Sequence[EmbeddingScores]) -> pd.DataFrame:
    """The paper's table: one row per model, per test the score, its CI and n, and overall."""
    rows = []
    for result in results:
        row: dict[str, Any] = {"model": result.model}
        for test in (*TESTS, "overall"):
            interval = result.overall if test == "overall" else None
            if test in result.scores:
                interval = result.scores[test].interval
            row[test] = interval.estimate if interval else np.nan
            row[f"{test}_ci_low"] = interval.low if interval else np.nan
            row[f"{test}_ci_high"] = interval.high if interval else np.nan
            row[f"{test}_n"] = interval.n if interval else 0
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")
