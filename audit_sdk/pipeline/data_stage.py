"""Stage 2, data: load, keep real streams, split held-out items, choose the audited users."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit_sdk.config import AuditConfig
from audit_sdk.data.tables import Dataset
from audit_sdk.interfaces import DatasetLoader, GeneratorAdapter
from audit_sdk.progress_display import ProgressDisplay
from audit_sdk.sampling import filter_streams
from audit_sdk.splitting import holdout_split

__all__ = ["AuditData", "load_audit_data"]


@dataclass(frozen=True)
class AuditData:
    """The data every later stage reads: the (filtered) dataset, its train/test split, and
    the audited users (test restricted to them)."""

    dataset: Dataset
    train: Dataset
    test: Dataset
    users: tuple[str, ...]
    notes: tuple[str, ...] = ()


def _source(config: AuditConfig, loader: DatasetLoader, subject: GeneratorAdapter) -> Dataset:
    """The dataset the config names; when it names none and the subject replays a log that can
    say what data it came from, that data (never a silent synthetic world)."""
    if "dataset" not in config.model_fields_set and subject.supports("replay"):
        logged = subject.logged_dataset()
        if logged is not None:
            return logged
    return loader.load()


def load_audit_data(
    config: AuditConfig,
    loader: DatasetLoader,
    subject: GeneratorAdapter,
    progress: ProgressDisplay,
) -> AuditData:
    notes: list[str] = []
    with progress.step(f"Loading dataset ({config.dataset.loader})"):
        dataset = _source(config, loader, subject)
        dataset = filter_streams(dataset, min_play_seconds=config.sampling.min_play_seconds)
    notes.extend(str(n) for n in dataset.metadata.get("notes", []) if n)
    if len(dataset.interactions) == 0:
        # A log audited as it is: nothing to hold out; the audited users are the log's.
        users = [str(u) for u in dataset.users.frame.index]
        notes.append(
            f"the data has no interactions (a log audited as it is): no held-out split, no "
            f"reference baselines and no listening-derived groups; {len(users)} users"
        )
        return AuditData(dataset, dataset, dataset, tuple(users), tuple(notes))
    with progress.step("Splitting held-out items"):
        split = holdout_split(
            dataset,
            test_items=config.split.test_items,
            strategy=config.split.strategy,
            min_train_items=config.split.min_train_items,
            seed=config.seed,
        )
    users = list(split.users)
    max_users = config.sampling.max_users
    if max_users is not None and len(users) > max_users:
        rng = np.random.default_rng(config.seed)
        users = sorted(rng.choice(users, size=max_users, replace=False).tolist())
        notes.append(
            f"audited a seeded random subset of {len(users)} of {len(split.users)} users "
            "(sampling.max_users)"
        )
    test_frame = split.test.interactions.frame
    test_frame = test_frame[test_frame["user_id"].isin(users)]
    test = split.test.replace(interactions=split.test.interactions.with_frame(test_frame))
    return AuditData(dataset, split.train, test, tuple(users), tuple(notes))
