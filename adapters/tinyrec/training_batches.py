"""From a training split to TinyRec's training batches, epoch by epoch.

:func:`prepare_training_data` builds everything the loop needs before any weight exists: the
profile examples (minus a held-out tenth of users when measuring), the item vocabulary and
the tokenizer, and the token sequences of both tasks. :func:`epoch_batches` then yields each
epoch's batches in training order from one generator seeded from the training seed, so the
data order is the same on every machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from audit_sdk.data.tables import Dataset
from audit_sdk.errors import DataValidationError
from audit_sdk.recommendation_prompts import clean_title

from .objectives import TrainingBatch
from .settings import TinyRecSettings
from .training_data import (
    ProfileExample,
    RecommendationSequences,
    make_profile_examples,
    pad_batch,
    profile_sequences,
    recommendation_sequences,
)
from .training_loop import seed_from
from .vocabulary import build_tokenizer, choose_item_vocabulary

__all__ = ["TrainingData", "epoch_batches", "prepare_training_data"]


def _profile_eval_users(users: list[str], *, seed: int, share: float = 0.1) -> set[str]:
    rng = np.random.default_rng(seed_from(seed, "profile-eval-users"))
    n = max(1, round(share * len(users))) if len(users) >= 10 else 0
    return set(rng.choice(sorted(users), size=n, replace=False).tolist()) if n else set()


def _corpus(train: Dataset, examples: list[ProfileExample]) -> Iterator[str]:
    """Texts the BPE learns from: catalog titles, artists, genres and countries as running text
    shows them (after a space), and the training profile prompts and profiles."""
    catalog = train.catalog.frame
    for column in ("title", "artist", "country"):
        if column in catalog:
            for value in catalog[column].dropna().unique():
                yield " " + clean_title(value)
    if "genres" in catalog:
        for genres in catalog["genres"]:
            if len(genres):
                yield " " + ", ".join(map(str, genres))
    for example in examples:
        yield example.prompt
        yield " " + example.profile


@dataclass
class TrainingData:
    """Everything the loop needs, built from the training split before any weight exists."""

    tokenizer: Any
    item_map: dict[int, str]
    n_candidates: int
    n_excluded: int
    rec_data: RecommendationSequences
    rec_users: list[str]  # the user of each non-empty history, in rec_data's order
    profile_data: list[tuple[list[int], list[int]]]
    profile_users: list[str]
    n_profiles_too_long: int
    eval_examples: list[ProfileExample]


def prepare_training_data(
    train: Dataset,
    cfg: TinyRecSettings,
    *,
    users: list[str],
    histories: dict[str, list[str]],
    unit: Literal["artist", "track"],
    order: Literal["chronological", "plays"],
    seed: int,
    holdout: bool,
    profile_windows: tuple[int, ...] | None,
    source: str,
    say: Any,
) -> TrainingData:
    say("building training examples")
    examples = make_profile_examples(
        train,
        windows=profile_windows,
        subset_variants=2,
        subset_keep=0.6,
        seed=seed_from(seed, "profile-subsets"),
    )
    eval_users = _profile_eval_users(users, seed=seed) if holdout else set()
    train_examples = [e for e in examples if e.user_id not in eval_users]
    eval_examples = list(
        {e.user_id: e for e in reversed(examples) if e.user_id in eval_users}.values()
    )
    items = choose_item_vocabulary(train, min_item_users=cfg.min_item_users)
    if len(items) == 0:
        raise DataValidationError(
            f"no item was played by at least {cfg.min_item_users} training users, so TinyRec "
            "has nothing to recommend.",
            source=source,
            hint="use a larger dataset, or lower min_item_users in the settings",
        )
    tokenizer, item_map, n_collisions = build_tokenizer(
        _corpus(train, train_examples),
        items,
        bpe_vocab_size=cfg.bpe_vocab_size,
        model_max_length=cfg.n_positions,
    )
    token_of_item = {item: token for token, item in item_map.items()}
    rec_data = recommendation_sequences(
        [histories[u] for u in users],
        token_of_item,
        tokenizer,
        unit=unit,
        order=order,
        max_history=cfg.max_history,
    )
    profile_data, kept = profile_sequences(
        train_examples, tokenizer, eos_id=tokenizer.eos_token_id, max_length=cfg.n_positions
    )
    return TrainingData(
        tokenizer=tokenizer,
        item_map=item_map,
        n_candidates=items.n_candidates,
        n_excluded=items.n_excluded + n_collisions,
        rec_data=rec_data,
        rec_users=[u for u, h in zip(users, rec_data.histories, strict=True) if len(h)],
        profile_data=profile_data,
        profile_users=[train_examples[i].user_id for i in kept],
        n_profiles_too_long=len(train_examples) - len(kept),
        eval_examples=eval_examples,
    )


def epoch_batches(
    data: TrainingData, cfg: TinyRecSettings, *, n_profile_per_epoch: int, seed: int
) -> Iterator[list[TrainingBatch]]:
    """Each epoch's batches in training order, drawn from one generator seeded from ``seed``:
    the recommendation sequences shuffled into batches, a fresh sample of profile examples
    batched by length, then all batches shuffled together."""
    rng = np.random.default_rng(seed_from(seed, "batches"))
    pad_id = data.tokenizer.pad_token_id
    for _ in range(cfg.epochs):
        rec_seqs = data.rec_data.epoch_sequences(rng)
        order_rec = rng.permutation(len(rec_seqs))
        members: list[tuple[list[int], Literal["recommendation", "profile"]]] = []
        for start in range(0, len(order_rec), cfg.rec_batch_size):
            members.append(
                ([int(i) for i in order_rec[start : start + cfg.rec_batch_size]], "recommendation")
            )
        if n_profile_per_epoch:
            chosen = rng.choice(len(data.profile_data), size=n_profile_per_epoch, replace=False)
            chosen = chosen[
                np.argsort([len(data.profile_data[i][0]) for i in chosen], kind="stable")
            ]
            for start in range(0, len(chosen), cfg.profile_batch_size):
                members.append(
                    ([int(i) for i in chosen[start : start + cfg.profile_batch_size]], "profile")
                )
        batches = []
        for index in rng.permutation(len(members)):
            rows, task = members[index]
            if task == "recommendation":
                sequences = [rec_seqs[i] for i in rows]
                owners = tuple(data.rec_users[i] for i in rows)
            else:
                sequences = [data.profile_data[i] for i in rows]
                owners = tuple(data.profile_users[i] for i in rows)
            ids, mask, labels = pad_batch(sequences, pad_id=pad_id)
            batches.append(TrainingBatch(ids, mask, labels, owners, task))
        yield batches
