"""Stage 4, profiles: sample each user's listening per window, write a taste profile with every
generator through the generation service, and measure each profile's fidelity to its sample.

A subject that replays logged profiles is read as it is (no model runs); its samples are still
drawn, so fidelity can be measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from audit_sdk.config import AuditConfig
from audit_sdk.data.tables import Dataset
from audit_sdk.interfaces import GenerationParams, GeneratorAdapter, ProfileSampler
from audit_sdk.metrics.profile_fidelity import profile_fidelity
from audit_sdk.profile_pipeline import generate_profiles
from audit_sdk.progress_display import ProgressDisplay
from audit_sdk.sampling import time_window, window_label
from audit_sdk.services import GenerationService

__all__ = ["ProfileOutputs", "write_profiles"]


@dataclass(frozen=True)
class ProfileOutputs:
    profiles: pd.DataFrame
    """one row per (generator, window, user), with fidelity columns"""
    samples: pd.DataFrame
    """the samples the profiles were written from, with a ``window`` column"""


def _profiled_users(config: AuditConfig, users: Sequence[str], notes: list[str]) -> list[str]:
    chosen = list(users)
    limit = config.profiles.max_users
    if limit is not None and len(chosen) > limit:
        rng = np.random.default_rng(config.seed + 1)
        chosen = sorted(rng.choice(chosen, size=limit, replace=False).tolist())
        notes.append(
            f"profiles were written for a seeded random subset of {len(chosen)} of "
            f"{len(users)} audited users (profiles.max_users)"
        )
    return chosen


def write_profiles(
    config: AuditConfig,
    train: Dataset,
    users: Sequence[str],
    generators: Mapping[str, GeneratorAdapter],
    *,
    sampler: ProfileSampler,
    generation: GenerationService,
    progress: ProgressDisplay,
    notes: list[str],
    logged: pd.DataFrame | None = None,
) -> ProfileOutputs:
    """Profiles of ``users`` by every generator (or the ``logged`` ones) and their samples."""
    chosen = (
        _profiled_users(config, users, notes)
        if logged is None
        else sorted(logged["user_id"].unique())
    )
    frame = train.interactions.frame
    subset = train.replace(
        interactions=train.interactions.with_frame(frame[frame["user_id"].isin(chosen)])
    )
    with progress.step("Sampling listening windows"):
        samples = sampler.sample(subset, config.sampling)
        played = _played_artists(subset, samples, config)
    if logged is not None:
        profiles = logged
    else:
        pcfg = config.profiles
        params = GenerationParams(
            temperature=pcfg.temperature,
            top_p=pcfg.top_p,
            max_new_tokens=pcfg.max_new_tokens,
            seed=config.seed,
        )
        total = sum(s["user_id"].nunique() for s in samples.values()) * len(generators)
        with progress.step("Writing taste profiles", total=total) as step:
            done: dict[str, int] = {}

            def advance(label: str, finished: int, _total: int) -> None:
                step.advance(finished - done.get(label, 0))
                done[label] = finished

            profiles = generate_profiles(
                samples,
                subset.catalog,
                generators,
                params=params,
                service=generation,
                progress=advance,
                template=pcfg.template,
            )
    profiles = profile_fidelity(profiles, samples, subset.catalog, played_artists=played)
    sample_table = pd.concat([s.assign(window=w) for w, s in samples.items()], ignore_index=True)
    return ProfileOutputs(profiles, sample_table)


def _played_artists(
    train: Dataset, samples: Mapping[str, pd.DataFrame], config: AuditConfig
) -> dict[str, pd.DataFrame]:
    """Per window label, the (user, artist) pairs played in that window."""
    catalog = train.catalog.frame["artist"]
    by_label = {window_label(d): d for d in config.sampling.windows}
    out = {}
    for label in samples:
        if label == "all" or not train.interactions.has_timestamps or label not in by_label:
            frame = train.interactions.frame
        else:
            windowed = time_window(
                train, days=by_label[label], reference=config.sampling.reference_date
            )
            frame = windowed.interactions.frame
        pairs = frame[["user_id", "item_id"]].drop_duplicates()
        out[label] = pd.DataFrame(
            {
                "user_id": pairs["user_id"].to_numpy(),
                "artist": pairs["item_id"].map(catalog).to_numpy(),
            }
        )
    return out
