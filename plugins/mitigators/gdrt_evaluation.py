"""GDRT's before/after measurements: held-out ranking, context reliance, popularity fairness.

For each model (the untouched one and every tuned arm) on the audit's held-out items:

* **NDCG@K, recall@K** per user (:func:`audit_sdk.metrics.ranking.ranking_metrics`) of the
  model's top-K unseen items, obtained through the ``huggingface`` adapter exactly as an audit
  obtains them;
* **the FAA auxiliary share and ratio** (arXiv 2510.10978's diagnosis, computed by
  :func:`audit_sdk.attribution.attribute`, the batched feature-ablation engine, and
  :func:`audit_sdk.attribution.summary.summarize_attribution`): the recommendation prompt's
  ``task`` span (auxiliary) and its whole ``history`` (interaction, merged into one span) are
  ablated in turn and the drop in the log-probability of the user's first held-out item is
  each span's attribution; share = sum aux / sum (aux + interaction) over users, ratio = sum
  aux / sum interaction. The paired difference of two models' shares reweights both models'
  users with the same Poisson(1) bootstrap weights;
* **MGU@K, DGU@K** over five item-popularity groups (:mod:`audit_sdk.metrics.popularity_groups`);
* **per-user-group fairness**: NDCG@K per user group (the audit's group columns) and the
  best-minus-worst gap.

Differences between two models are paired: bootstrap resamples of users, the same users for
both (:func:`audit_sdk.stats.bootstrap.mean_ci` of per-user differences).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit_sdk.data.tables import Dataset
from audit_sdk.metrics.popularity_groups import (
    group_counts,
    group_unfairness,
    paired_unfairness,
    popularity_groups,
)
from audit_sdk.metrics.ranking import ranking_metrics
from audit_sdk.recommendation_prompts import prompt_history
from audit_sdk.stats.bootstrap import Interval, mean_ci, statistic_ci

__all__ = ["ArmEvaluation", "compare_arms", "evaluate_arm", "faa_magnitudes"]


@dataclass
class ArmEvaluation:
    """One model's held-out measurements (per user) and its top-K popularity-group counts."""

    name: str
    model_dir: Path
    per_user: pd.DataFrame
    recommended_counts: np.ndarray
    faa: dict[str, dict[str, float]]


def faa_magnitudes(
    adapter: Any, train: Dataset, test: Dataset, users: Sequence[str], *, seed: int = 0
) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    """Per user with a held-out item in the model's vocabulary: the auxiliary (task text) and
    interaction (whole history) attribution magnitudes of the first held-out item."""
    from audit_sdk.attribution import attribute
    from audit_sdk.attribution.recommendation_spans import spanned_recommendation_prompt
    from audit_sdk.attribution.summary import summarize_attribution
    from audit_sdk.user_histories import user_histories

    ranker = adapter._ranker()
    manifest = ranker.manifest
    histories = user_histories(train.interactions, order=manifest.history_order)
    future = user_histories(test.interactions)  # first = earliest, or most played
    prompts, targets = [], []
    for user in users:
        shown = prompt_history(
            histories.get(user, []),
            ranker.title_of_item,
            order=manifest.history_order,
            max_history=manifest.max_history,
        )
        ahead = [i for i in future.get(user, []) if i in ranker.title_of_item]
        if not shown or not ahead:
            continue
        prompt = spanned_recommendation_prompt(
            [ranker.title_of_item[i] for i in shown],
            unit=manifest.unit,
            order=manifest.history_order,
            prompt_id=str(user),
        )
        prompts.append(prompt.merged("history"))
        targets.append(ranker.title_of_item[ahead[0]] + "\n")
    summary = summarize_attribution(attribute(adapter, prompts, targets), seed=seed)
    magnitudes = summary.magnitudes
    per_user = pd.DataFrame(
        {"faa_aux": magnitudes.auxiliary, "faa_interaction": magnitudes.interaction},
        index=pd.Index(list(magnitudes.prompt_ids), name="user_id"),
    )
    return per_user, {"aux_share": _as_dict(summary.share), "aux_ratio": _as_dict(summary.ratio)}


def evaluate_arm(
    name: str,
    model_dir: str | Path,
    *,
    train: Dataset,
    test: Dataset,
    users: Sequence[str],
    k: int,
    item_groups: pd.Series,
    n_item_groups: int,
) -> ArmEvaluation:
    """Recommend, score and attribute one model directory on the held-out users."""
    from audit_sdk.adapters.huggingface_adapter import HuggingFaceAdapter, HuggingFaceParams

    adapter = HuggingFaceAdapter(HuggingFaceParams(model_dir=str(model_dir)))
    index = pd.Index([str(u) for u in users], name="user_id")
    try:
        adapter.fit(train)
        recs = adapter.recommend(list(index), k=k)
        faa, faa_summary = faa_magnitudes(adapter, train, test, list(index))
    finally:
        adapter.close()
    scores = ranking_metrics(recs, test.interactions.frame, k=k).reindex(index)
    per_user = scores[[f"ndcg@{k}", f"recall@{k}"]].join(faa)
    counts = group_counts(recs, item_groups, index, n_groups=n_item_groups)
    return ArmEvaluation(name, Path(model_dir), per_user, counts, faa_summary)


def _interval(values: np.ndarray, seed: int, salt: str) -> dict[str, float]:
    from audit_sdk.adapters.tinyrec.training_loop import seed_from

    ci = mean_ci(values, rng=np.random.default_rng(seed_from(seed, salt)), n_resamples=1000)
    return _as_dict(ci)


def _as_dict(ci: Interval) -> dict[str, float]:
    return {"mean": ci.estimate, "low": ci.low, "high": ci.high, "n": float(ci.n)}


def compare_arms(
    arms: Mapping[str, ArmEvaluation],
    *,
    before: str,
    pairs: Sequence[tuple[str, str]],
    history_counts: np.ndarray,
    user_groups: pd.DataFrame | None,
    k: int,
    seed: int,
) -> dict[str, Any]:
    """Every arm's metrics with CIs, and the paired differences ``a - b`` for ``pairs``."""
    from audit_sdk.adapters.tinyrec.training_loop import seed_from

    metrics = [f"ndcg@{k}", f"recall@{k}"]
    out: dict[str, Any] = {"arms": {}, "paired": {}}
    for name, arm in arms.items():
        row: dict[str, Any] = {
            m: _interval(arm.per_user[m].to_numpy(dtype=float), seed, f"{name}:{m}")
            for m in metrics
        }
        gu = group_unfairness(
            arm.recommended_counts,
            history_counts,
            rng=np.random.default_rng(seed_from(seed, name, "gu")),
        )
        row.update(arm.faa)
        row[f"mgu@{k}"] = _as_dict(gu.mgu)
        row[f"dgu@{k}"] = _as_dict(gu.dgu)
        row["gu"] = list(gu.gu)
        if user_groups is not None and not user_groups.empty:
            row["user_groups"] = _user_group_fairness(
                arm.per_user[f"ndcg@{k}"],
                user_groups,
                other=arms[before].per_user[f"ndcg@{k}"] if name != before else None,
                seed=seed,
            )
        out["arms"][name] = row
    for a, b in [*[(name, before) for name in arms if name != before], *pairs]:
        diff = {
            m: _interval(
                (arms[a].per_user[m] - arms[b].per_user[m]).to_numpy(dtype=float),
                seed,
                f"{a}-{b}:{m}",
            )
            for m in metrics
        }
        gu_diff = paired_unfairness(
            arms[a].recommended_counts,
            arms[b].recommended_counts,
            history_counts,
            rng=np.random.default_rng(seed_from(seed, a, b, "gu")),
        )
        diff.update(
            _paired_faa(
                arms[a].per_user,
                arms[b].per_user,
                rng=np.random.default_rng(seed_from(seed, a, b, "faa")),
            )
        )
        diff[f"mgu@{k}"] = _as_dict(gu_diff["mgu"])
        diff[f"dgu@{k}"] = _as_dict(gu_diff["dgu"])
        out["paired"][f"{a} - {b}"] = diff
    return out


def _paired_faa(
    a: pd.DataFrame, b: pd.DataFrame, *, rng: np.random.Generator, n_resamples: int = 1000
) -> dict[str, dict[str, float]]:
    """Share and ratio of ``a`` minus ``b`` on the users both measured, each bootstrap
    resample weighting a user alike in both."""
    from audit_sdk.stats.resampling_weights import poisson_weight_blocks

    columns = ["faa_aux", "faa_interaction"]
    joined = pd.concat(
        [a[columns].add_suffix("_a"), b[columns].add_suffix("_b")], axis=1, join="inner"
    ).dropna()
    aux_a, int_a = joined["faa_aux_a"].to_numpy(float), joined["faa_interaction_a"].to_numpy(float)
    aux_b, int_b = joined["faa_aux_b"].to_numpy(float), joined["faa_interaction_b"].to_numpy(float)

    def stats(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            sa, sb = w @ aux_a / (w @ (aux_a + int_a)), w @ aux_b / (w @ (aux_b + int_b))
            ra, rb = w @ aux_a / (w @ int_a), w @ aux_b / (w @ int_b)
        return sa - sb, ra - rb

    point = stats(np.ones((1, len(joined))))
    reps = [
        stats(w) for w in poisson_weight_blocks(len(joined), n_resamples, rng, dtype=np.float64)
    ]
    out = {}
    for j, name in enumerate(("aux_share", "aux_ratio")):
        values = np.concatenate([r[j] for r in reps])
        ci = statistic_ci(
            values,
            float(point[j][0]),
            confidence=0.95,
            n=len(joined),
            method="paired-bootstrap-users",
        )
        out[name] = _as_dict(ci)
    return out


def _group_gaps(
    values: np.ndarray, codes: np.ndarray, n_groups: int, draws: np.ndarray
) -> np.ndarray:
    """Best-minus-worst group mean of ``values`` on each resample of users (rows of ``draws``,
    user positions); NaN where a resample leaves fewer than two groups."""
    sums = np.zeros((len(draws), n_groups))
    counts = np.zeros((len(draws), n_groups))
    for g in range(n_groups):
        in_group = codes[draws] == g
        sums[:, g] = np.where(in_group, values[draws], 0.0).sum(axis=1)
        counts[:, g] = in_group.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    enough = (counts > 0).sum(axis=1) >= 2
    gaps = np.nanmax(np.where(enough[:, None], means, 0.0), axis=1) - np.nanmin(
        np.where(enough[:, None], means, 0.0), axis=1
    )
    return np.where(enough, gaps, np.nan)


def _user_group_fairness(
    ndcg: pd.Series,
    user_groups: pd.DataFrame,
    *,
    other: pd.Series | None = None,
    seed: int = 0,
    n_resamples: int = 1000,
) -> dict[str, Any]:
    """Mean NDCG per user group of each group column and the best-minus-worst gap with a
    percentile bootstrap CI over users; with ``other`` (another arm's NDCG of the same users),
    the paired change of the gap (this arm minus ``other``, the same user draws for both)."""
    from audit_sdk.adapters.tinyrec.training_loop import seed_from

    out: dict[str, Any] = {}
    finite = ndcg.notna() if other is None else ndcg.notna() & other.reindex(ndcg.index).notna()
    for column in user_groups.columns:
        labels = user_groups[column].reindex(ndcg.index)
        keep = (finite & labels.notna()).to_numpy()
        means = ndcg[keep].groupby(labels[keep], observed=True).mean()
        sizes = labels[keep].value_counts()
        codes, _ = pd.factorize(labels[keep], sort=True)
        values = ndcg[keep].to_numpy(dtype=float)
        n = len(values)
        rng = np.random.default_rng(seed_from(seed, "user_group_gap", str(column)))
        draws = rng.integers(0, n, size=(n_resamples, n)) if n else np.zeros((0, 0), int)
        gap = float(means.max() - means.min()) if len(means) > 1 else 0.0
        entry: dict[str, Any] = {
            "mean_ndcg": {str(g): float(v) for g, v in means.items()},
            "n": {str(g): int(v) for g, v in sizes.items()},
            "gap": gap,
        }
        if n and len(means) > 1:
            gaps = _group_gaps(values, codes, len(means), draws)
            ci = statistic_ci(gaps, gap, confidence=0.95, n=n, method="bootstrap-percentile")
            entry["gap_ci"] = [ci.low, ci.high]
            if other is not None:
                base = other.reindex(ndcg.index)[keep].to_numpy(dtype=float)
                base_means = pd.Series(base).groupby(codes).mean()
                change = gap - float(base_means.max() - base_means.min())
                diffs = gaps - _group_gaps(base, codes, len(means), draws)
                paired = statistic_ci(
                    diffs, change, confidence=0.95, n=n, method="paired bootstrap-percentile"
                )
                entry["gap_change"] = {"mean": change, "low": paired.low, "high": paired.high}
        out[str(column)] = entry
    return out


def history_group_counts(
    train: Dataset, users: Sequence[str], *, n_groups: int = 5
) -> tuple[pd.Series, np.ndarray]:
    """The item popularity groups of the training data and the users' history counts."""
    frame = train.interactions.frame[["user_id", "item_id"]].drop_duplicates()
    groups = popularity_groups(frame, n_groups=n_groups)
    index = pd.Index([str(u) for u in users], name="user_id")
    return groups, group_counts(frame, groups, index, n_groups=n_groups)
