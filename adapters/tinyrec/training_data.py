"""TinyRec's two training tasks as token sequences.

* **Recommendation.** ``<|bos|>`` + the recommendation header + one item token (title and
  newline) per history item (:mod:`audit_sdk.recommendation_prompts`). Every item is a target, so
  one sequence teaches "history so far -> next item" at every step.
  Chronological histories longer than the context keep a random contiguous window each
  epoch; histories ordered by plays are freshly shuffled (and, when too long, subsampled)
  each epoch with a seeded generator.
* **Profile writing.** The SDK's default profile prompt of a two-step sample (15 artist-track
  pairs with their metadata) -> the deterministic template writer's profile of the same
  pairs, then ``<|eos|>``. Only the profile's tokens are targets. Samples come from each time
  window the profile pipeline uses (where timestamps exist), from the whole history, and from
  seeded random subsets of the history, so the model sees several samples per user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from audit_sdk.data.tables import Dataset
from audit_sdk.recommendation_prompts import recommendation_header

__all__ = [
    "IGNORE_INDEX",
    "ProfileExample",
    "RecommendationSequences",
    "make_profile_examples",
    "pad_batch",
]

IGNORE_INDEX = -100


@dataclass
class RecommendationSequences:
    """Per user, the item-token ids of the history (in history order) and the header ids."""

    header_ids: list[int]
    histories: list[np.ndarray]
    order: str
    max_history: int

    def epoch_sequences(self, rng: np.random.Generator) -> list[tuple[list[int], list[int]]]:
        """(input ids, labels) for every user with at least one item, for one epoch."""
        out: list[tuple[list[int], list[int]]] = []
        n_header = len(self.header_ids)
        for history in self.histories:
            if len(history) == 0:
                continue
            if self.order == "chronological":
                if len(history) > self.max_history:
                    start = int(rng.integers(0, len(history) - self.max_history + 1))
                    shown = history[start : start + self.max_history]
                else:
                    shown = history
            else:
                take = min(len(history), self.max_history)
                shown = rng.permutation(history)[:take]
            body = np.asarray(shown, dtype=np.int64).tolist()
            # labels[t] is the token after position t (targets are pre-shifted).
            labels = [IGNORE_INDEX] * (n_header - 1) + body + [IGNORE_INDEX]
            out.append((self.header_ids + body, labels))
        return out


@dataclass(frozen=True)
class ProfileExample:
    user_id: str
    variant: str
    prompt: str
    profile: str


def make_profile_examples(
    train: Dataset,
    *,
    windows: Sequence[int] | None,
    subset_variants: int,
    subset_keep: float,
    seed: int,
) -> list[ProfileExample]:
    """Profile prompts (default template) and template-writer profiles for every user."""
    from audit_sdk.adapters.template_profile_writer import write_profile_from_pairs

    from audit_sdk.profile_pipeline import profile_prompt_table, sample_profile_windows
    from audit_sdk.profile_prompts import parse_profile_pairs
    from audit_sdk.sampling import filter_streams

    streams = filter_streams(train)
    samples: dict[str, pd.DataFrame] = {}
    if windows and streams.interactions.has_timestamps:
        samples.update(sample_profile_windows(streams, windows=windows))
    samples.update(sample_profile_windows(streams, windows=None))  # the whole history: "all"
    rng = np.random.default_rng(seed)
    frame = streams.interactions.frame
    pairs = frame[["user_id", "item_id"]].drop_duplicates()
    for variant in range(subset_variants):
        keep = pairs.loc[rng.random(len(pairs)) < subset_keep]
        subset = frame.merge(keep, on=["user_id", "item_id"], how="inner")
        sub_dataset = streams.replace(interactions=streams.interactions.with_frame(subset))
        samples[f"subset{variant + 1}"] = sample_profile_windows(sub_dataset, windows=None)["all"]
    table = profile_prompt_table(samples, train.catalog)
    seen: set[str] = set()
    examples: list[ProfileExample] = []
    for user_id, variant, prompt in zip(
        table["user_id"], table["window"], table["prompt"], strict=True
    ):
        if prompt in seen:
            continue
        seen.add(prompt)
        profile = write_profile_from_pairs(parse_profile_pairs(prompt))
        examples.append(ProfileExample(str(user_id), str(variant), prompt, profile))
    return examples


def recommendation_sequences(
    histories: Sequence[Sequence[str]],
    token_of_item: dict[str, int],
    tokenizer: Any,
    *,
    unit: str,
    order: str,
    max_history: int,
) -> RecommendationSequences:
    header = recommendation_header(unit=unit, order=order)  # type: ignore[arg-type]
    header_ids = list(tokenizer(header)["input_ids"])
    encoded = [
        np.array([token_of_item[i] for i in history if i in token_of_item], dtype=np.int64)
        for history in histories
    ]
    return RecommendationSequences(header_ids, encoded, order, max_history)


def profile_sequences(
    examples: Sequence[ProfileExample], tokenizer: Any, *, eos_id: int, max_length: int
) -> tuple[list[tuple[list[int], list[int]]], list[int]]:
    """(input ids, labels) per example; examples longer than ``max_length`` are dropped.

    :returns: the sequences and, for each, the index of its example in ``examples``."""
    prompts = tokenizer([e.prompt for e in examples], verbose=False)["input_ids"]
    targets = tokenizer(
        [" " + e.profile for e in examples], add_special_tokens=False, verbose=False
    )["input_ids"]
    out: list[tuple[list[int], list[int]]] = []
    kept: list[int] = []
    for index, (prompt_ids, target_ids) in enumerate(zip(prompts, targets, strict=True)):
        ids = list(prompt_ids) + list(target_ids) + [eos_id]
        if len(ids) > max_length:
            continue
        labels = [IGNORE_INDEX] * (len(prompt_ids) - 1) + [*target_ids, eos_id, IGNORE_INDEX]
        out.append((ids, labels))
        kept.append(index)
    return out, kept


def pad_batch(
    sequences: Sequence[tuple[list[int], list[int]]], *, pad_id: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Right-padded (input ids, attention mask, labels) arrays for a training batch."""
    width = max(len(ids) for ids, _ in sequences)
    n = len(sequences)
    input_ids = np.full((n, width), pad_id, dtype=np.int64)
    mask = np.zeros((n, width), dtype=np.int64)
    labels = np.full((n, width), IGNORE_INDEX, dtype=np.int64)
    for row, (ids, labs) in enumerate(sequences):
        input_ids[row, : len(ids)] = ids
        mask[row, : len(ids)] = 1
        labels[row, : len(labs)] = labs
    return input_ids, mask, labels
