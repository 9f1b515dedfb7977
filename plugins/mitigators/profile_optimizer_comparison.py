"""The profile optimizer's before/after on the audit's own profiles, paired by user.

The writer's profiles in the audit (same prompts, windows and sampling parameters) are written
again by the tuned writer through the generation cache, so the re-audit that follows finds
them there. Both sets are measured the same way: downstream NDCG@k and recall@k of the audit's
held-out items with the ``downstream_utility`` bi-encoder (the same seeded negatives for both),
and artist recall, genre recall and hallucination rate against the two-step samples
(:func:`audit_sdk.metrics.profile_fidelity.profile_fidelity`). Each is averaged per user over
windows, and :func:`audit_sdk.preference.paired_change` gives the mean paired difference with
a CI resampling users, per group of the audit's attributes and of GS quintile, and the
best-minus-worst group gaps before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from audit_sdk.plugins.detectors._profile_utility import TextEncoder, profile_utility

from audit_sdk.errors import AuditSDKError
from audit_sdk.interfaces import AuditContext, GenerationParams, GeneratorAdapter
from audit_sdk.metrics.profile_fidelity import profile_fidelity
from audit_sdk.preference import change_table, paired_change

__all__ = ["before_after", "comparison_groups"]

FIDELITY = ("artist_recall", "genre_recall", "hallucination_rate")


def comparison_groups(context: AuditContext) -> pd.DataFrame:
    """One column per single group attribute the audit groups by (not raw user columns such
    as age or event counts), plus ``gs_quintile`` when the
    GS-score feature is registered; indexed by user."""
    table = context.groups.table
    columns = [c for c in context.group_columns if c in table and " × " not in str(c)]
    groups = table[columns].copy()
    groups.index = groups.index.astype(str)
    try:
        gs = context.features.get("gs_score")
    except AuditSDKError:
        return groups
    if isinstance(gs, pd.Series) and gs.notna().sum() >= 10:
        gs = gs.dropna()
        gs.index = gs.index.astype(str)
        quintiles = pd.qcut(gs.rank(method="first"), 5, labels=[f"Q{i}" for i in range(1, 6)])
        groups["gs_quintile"] = quintiles.astype(str).reindex(groups.index)
    return groups


def _rewrite(
    context: AuditContext, profiles: pd.DataFrame, tuned: GeneratorAdapter
) -> pd.DataFrame:
    after = profiles.copy()
    keys = ["temperature", "top_p", "max_new_tokens", "seed"]
    for values, part in profiles.groupby(keys, sort=False):
        temperature, top_p, max_new_tokens, seed = values
        params = GenerationParams(
            temperature=float(temperature),
            top_p=float(top_p),
            max_new_tokens=int(max_new_tokens),
            seed=int(seed),
        )
        results = context.generation.generate(
            tuned, part["prompt"].tolist(), params=params, label="profile_optimizer:after"
        )
        after.loc[part.index, "text"] = [r.text for r in results]
    return after


def _per_user(frame: pd.DataFrame, column: str) -> pd.Series:
    values = frame.groupby(frame["user_id"].astype(str))[column].mean()
    return values.astype(float)


def before_after(
    context: AuditContext,
    writer: GeneratorAdapter,
    tuned: GeneratorAdapter,
    *,
    k: int,
    encoder: Callable[[], TextEncoder],
) -> dict[str, Any]:
    """Paired before/after of the writer's profiles in the audit (JSON-ready)."""
    profiles = context.subject.profiles
    assert profiles is not None
    own = profiles[
        (profiles["model_fingerprint"] == writer.fingerprint()) & profiles["text"].notna()
    ]
    if own.empty:
        return {"skipped": "the audit holds no profiles written by the tuned writer's source"}
    base_columns = [c for c in own.columns if c not in FIDELITY and c != "n_artist_mentions"]
    before = own[base_columns].reset_index(drop=True)
    after = _rewrite(context, before, tuned)
    samples = context.samples
    by_window = (
        {str(w): part.drop(columns="window") for w, part in samples.groupby("window")}
        if samples is not None and "window" in samples
        else {}
    )
    catalog = context.dataset.catalog
    measured: dict[str, tuple[pd.Series, pd.Series]] = {}
    if by_window:
        fb = profile_fidelity(before, by_window, catalog)
        fa = profile_fidelity(after, by_window, catalog)
        for column in FIDELITY:
            measured[column] = (_per_user(fb, column), _per_user(fa, column))
    text_encoder = encoder()
    utilities = []
    for frame in (before, after):
        utilities.append(
            profile_utility(
                frame,
                train=context.train.interactions.frame,
                test=context.test.interactions.frame,
                catalog=catalog.frame,
                encoder=text_encoder,
                rng=np.random.default_rng(context.seed),  # the same negatives for both
                k=k,
            ).assign(user_id=frame["user_id"].to_numpy())
        )
    for column in (f"ndcg@{k}", f"recall@{k}"):
        measured[f"downstream:{column}"] = (
            _per_user(utilities[0], column),
            _per_user(utilities[1], column),
        )
    groups = comparison_groups(context)
    changes = {
        metric: paired_change(
            b,
            a,
            metric=metric,
            groups=groups,
            rng=context.rng(f"profile_optimizer:paired:{metric}"),
            n_resamples=context.bootstrap.n_resamples,
            confidence=context.bootstrap.confidence,
            min_group_size=context.min_group_size,
        )
        for metric, (b, a) in measured.items()
    }
    return {
        "profiles": len(before),
        "users": int(before["user_id"].nunique()),
        "metrics": {name: change.as_dict() for name, change in changes.items()},
        "table": change_table(changes).to_dict(orient="records"),
    }
