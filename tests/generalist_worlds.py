"""Audits with a planted generalist penalty (or none), for the generalist_gap detector's tests.

A small synthetic world gives real listening, so the GS-score is the feature's own (computed
through ``context.features``); quality is then planted as a linear function of that GS-score:

    quality = 0.3 + slope * (GS - mean GS) + activity * z(log activity) + user effect + noise

per user (``user_table["ndcg@10"]``), or per profile (one row per user x generator x window,
with a user random effect shared by a user's rows, so rows of a user are correlated and only a
cluster bootstrap over users covers). ``slope`` is the planted truth of
``gs_gap:<quality>:slope``; a positive one serves generalists (low GS) worse.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from audit_sdk.plugins.features.generalist_specialist import GeneralistSpecialistScore

from audit_sdk.config import AuditConfig
from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world
from audit_sdk.data.tables import Dataset
from audit_sdk.features import UserFeatures
from audit_sdk.interfaces import AuditContext, SubjectOutputs


@dataclass(frozen=True)
class GeneralistWorld:
    context: AuditContext
    slope: float
    """the planted coefficient of quality on GS"""
    signal: pd.Series
    """each user's noiseless quality (planted GS and activity terms), index user_id"""
    gs: pd.Series


@lru_cache(maxsize=4)
def _listening(seed: int, n_users: int) -> tuple[Dataset, UserFeatures]:
    world = generate_world(
        SyntheticWorldParams(seed=seed, n_users=n_users, mean_events_per_user=80.0)
    )
    extra = {"gs_score": GeneralistSpecialistScore()}
    features = UserFeatures(world, list(world.users.frame.index), extra=extra)
    features.get("gs_score")
    return world, features


def generalist_world(
    seed: int,
    *,
    slope: float,
    n_users: int = 400,
    activity: float = 0.01,
    profiles: tuple[str, ...] = (),
    windows: tuple[str, ...] = ("30d",),
    generator_slopes: dict[str, float] | None = None,
    noise: float = 0.06,
    user_effect: float = 0.03,
    resamples: int = 400,
) -> GeneralistWorld:
    """An audit whose quality drops with breadth by ``slope`` per unit of GS.

    ``profiles`` empty: per-user ``ndcg@10`` in the user table. Otherwise a profile table with
    one row per user x generator (``profiles``) x window and a ``downstream_ndcg@10`` column;
    ``generator_slopes`` overrides ``slope`` for some generators.
    """
    world, features = _listening(seed, n_users)
    users = world.users.frame
    gs = features.get("gs_score")
    assert isinstance(gs, pd.Series)
    rng = np.random.default_rng([seed, 1010, int(slope * 1000)])
    log_activity = np.log1p(features.activity_events.to_numpy(dtype=float))
    z_activity = (log_activity - log_activity.mean()) / log_activity.std()
    centred = gs.to_numpy(dtype=float) - float(np.nanmean(gs))
    covariate_part = 0.3 + activity * z_activity
    base = covariate_part + user_effect * rng.standard_normal(len(users))
    table = users.copy()
    subject_profiles = None
    metric_columns: list[str] = []
    if not profiles:
        table["ndcg@10"] = base + slope * centred + noise * rng.standard_normal(len(users))
        metric_columns = ["ndcg@10"]
    else:
        rows = []
        for generator in profiles:
            g_slope = (generator_slopes or {}).get(generator, slope)
            for window in windows:
                quality = base + g_slope * centred + noise * rng.standard_normal(len(users))
                rows.append(
                    pd.DataFrame(
                        {
                            "user_id": users.index.to_numpy(),
                            "window": window,
                            "model": generator,
                            "downstream_ndcg@10": quality,
                        }
                    )
                )
        subject_profiles = pd.concat(rows, ignore_index=True)
    subject = SubjectOutputs(
        name="subject", adapter="test", fingerprint="0" * 64, profiles=subject_profiles
    )
    context = AuditContext.from_tables(
        config=AuditConfig(seed=seed, stats={"bootstrap_resamples": resamples}),
        dataset=world,
        user_table=table,
        group_columns=["country"],
        metric_columns=metric_columns,
        subject=subject,
    )
    # the pipeline's context stage does the same: the features computed once are the context's
    context.__dict__["features"] = features
    signal = pd.Series(covariate_part + slope * centred, index=users.index)
    return GeneralistWorld(context, slope, signal, gs)
