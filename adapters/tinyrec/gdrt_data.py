"""GDRT's training data: answer-only examples, relevance scores without the history, groups.

An example is the recommendation prompt of :mod:`audit_sdk.recommendation_prompts` cut into
named spans, as token ids: ``prefix`` (``<|bos|>`` and the task text), ``history`` (one item
token per history item, or the title tokens of a model without an item map) and ``answer``
(the next ``answer_items`` items). Only the answer's tokens are targets.

Relevance (GDRT, arXiv 2510.10978, Sec. 3): every answer token ``y_t`` is scored by the model
before tuning with the history span removed,

    r_t = log P(y_t | x_aux, y_<t),    x_aux = the prompt without its history span,

so ``r_t`` is high for targets the auxiliary context (task text, the answer's own prefix)
predicts alone. ``granularity="sample"`` gives every token of an example its example's mean
``r`` (the paper's text supports both readings). :func:`assign_groups` splits the scores into
``K`` groups by quantile bins or by 1-D K-means (scikit-learn's ``KMeans``); group 0 holds
the least auxiliary-predictable targets.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .objectives import TrainingBatch
from .training_data import IGNORE_INDEX, pad_batch
from .training_loop import seed_from

__all__ = [
    "GroupAssignment",
    "SpanExample",
    "assign_groups",
    "build_examples",
    "example_batches",
    "item_token_histories",
    "relevance_scores",
    "span_log_probs",
]

Granularity = Literal["token", "sample"]
GroupMethod = Literal["quantile", "kmeans"]


@dataclass(frozen=True)
class SpanExample:
    """One example's spans, as token ids: the prompt is ``prefix + history``."""

    user_id: str
    prefix: tuple[int, ...]
    history: tuple[int, ...]
    answer: tuple[int, ...]

    def sequence(
        self, *, drop_history: bool = False, drop_task: bool = False
    ) -> tuple[list[int], list[int]]:
        """(input ids, labels) with labels on the answer tokens only; ``drop_history`` removes
        the history span, ``drop_task`` the task text (``<|bos|>`` stays)."""
        prefix = list(self.prefix[:1]) if drop_task else list(self.prefix)
        history = [] if drop_history else list(self.history)
        context = prefix + history
        ids = context + list(self.answer)
        labels = [IGNORE_INDEX] * (len(context) - 1) + list(self.answer) + [IGNORE_INDEX]
        return ids, labels


def build_examples(
    histories: Mapping[str, Sequence[int]],
    prefix: Sequence[int],
    *,
    answer_items: int = 1,
    per_user: int = 8,
    min_history: int = 3,
    max_history: int = 48,
    seed: int = 0,
) -> list[SpanExample]:
    """Up to ``per_user`` examples per user: a seeded cut ``j`` of the user's item-token
    history gives ``history = h[max(0, j - max_history):j]``, ``answer = h[j:j+answer_items]``.
    Users are taken in sorted order, so the examples are the same for a seed."""
    if answer_items < 1 or per_user < 1:
        raise ValueError("answer_items and per_user must be at least 1")
    out: list[SpanExample] = []
    for user in sorted(histories):
        h = list(histories[user])
        cuts = np.arange(min_history, len(h) - answer_items + 1)
        if len(cuts) == 0:
            continue
        rng = np.random.default_rng(seed_from(seed, "gdrt-cuts", user))
        chosen = np.sort(rng.choice(cuts, size=min(per_user, len(cuts)), replace=False))
        for j in chosen.tolist():
            out.append(
                SpanExample(
                    user,
                    tuple(prefix),
                    tuple(h[max(0, j - max_history) : j]),
                    tuple(h[j : j + answer_items]),
                )
            )
    return out


def span_log_probs(
    model: Any,
    examples: Sequence[SpanExample],
    *,
    drop_history: bool = False,
    drop_task: bool = False,
    pad_id: int = 0,
    batch_size: int = 64,
) -> list[np.ndarray]:
    """``log P(y_t | context, y_<t)`` of every answer token of each example, with the named
    spans removed from the context (one forward pass per batch, no gradients)."""
    import torch

    from .objectives import target_logits
    from .settings import DEFAULT_TRAINING_THREADS
    from .training_loop import deterministic_training

    sequences = [e.sequence(drop_history=drop_history, drop_task=drop_task) for e in examples]
    out: list[np.ndarray] = []
    # the output layer runs at the answer positions only, on TinyRec's fixed thread count
    with torch.no_grad(), deterministic_training(seed=0, threads=DEFAULT_TRAINING_THREADS):
        for start in range(0, len(sequences), batch_size):
            chunk = sequences[start : start + batch_size]
            ids, mask, labels = pad_batch(chunk, pad_id=pad_id)
            batch = TrainingBatch(ids, mask, labels, ("",) * len(chunk), "recommendation")
            logits, targets, rows = target_logits(model, batch)
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            picked = log_probs.gather(1, targets[:, None])[:, 0].numpy()
            counts = np.bincount(rows.numpy(), minlength=len(chunk))
            offsets = np.concatenate([[0], np.cumsum(counts)])
            out.extend(picked[offsets[i] : offsets[i + 1]] for i in range(len(chunk)))
    return out


def relevance_scores(
    model: Any,
    examples: Sequence[SpanExample],
    *,
    granularity: Granularity = "token",
    pad_id: int = 0,
    batch_size: int = 64,
) -> list[np.ndarray]:
    """GDRT's ``r_t = log P(y_t | x_aux, y_<t)`` per answer token (history span removed);
    with ``granularity="sample"`` each token carries its example's mean ``r``."""
    scores = span_log_probs(
        model, examples, drop_history=True, pad_id=pad_id, batch_size=batch_size
    )
    if granularity == "sample":
        return [np.full(len(s), float(s.mean())) for s in scores]
    if granularity != "token":
        raise ValueError(f"granularity {granularity!r}: use token or sample")
    return scores


@dataclass(frozen=True)
class GroupAssignment:
    """The group of every answer token and what each group is like.

    Groups are numbered by increasing mean ``r``: group 0 is the hardest to predict from the
    auxiliary context alone."""

    groups: list[np.ndarray]
    sizes: tuple[int, ...]
    mean_relevance: tuple[float, ...]
    edges: tuple[float, ...]
    method: str

    @property
    def n_groups(self) -> int:
        return len(self.sizes)

    def summary(self) -> list[dict[str, float]]:
        return [
            {"group": g, "size": n, "mean_r": m}
            for g, (n, m) in enumerate(zip(self.sizes, self.mean_relevance, strict=True))
        ]


def assign_groups(
    scores: Sequence[np.ndarray], *, k: int = 4, method: GroupMethod = "quantile", seed: int = 0
) -> GroupAssignment:
    """``k`` groups from the relevance scores (every token of every example).

    ``quantile``: bins at the ``1/k, ..., (k-1)/k`` quantiles of ``r`` (ties stay together);
    ``kmeans``: 1-D K-means (Lloyd, scikit-learn ``KMeans``, seeded, 10 initialisations),
    clusters ordered by their centre. Raises ``ValueError`` when fewer than two groups end up
    non-empty, or when any group is empty, naming the cause."""
    if k < 2:
        raise ValueError(f"K = {k}: Group DRO needs at least two groups")
    flat = np.concatenate([np.asarray(s, dtype=float) for s in scores]) if scores else np.empty(0)
    if len(flat) == 0:
        raise ValueError("there are no training targets to group")
    if method == "quantile":
        cut = np.quantile(flat, np.arange(1, k) / k)
        labels = np.searchsorted(cut, flat, side="right")
        edges = tuple(float(c) for c in cut)
    elif method == "kmeans":
        from sklearn.cluster import KMeans

        n_distinct = len(np.unique(flat))
        if n_distinct < k:
            raise ValueError(
                f"K-means with K = {k}: the relevance scores take only {n_distinct} distinct "
                "value(s)"
            )
        fit = KMeans(n_clusters=k, n_init=10, random_state=seed_from(seed, "kmeans") % 2**31)
        raw = fit.fit_predict(flat[:, None])
        order = np.argsort(fit.cluster_centers_[:, 0])
        rank = np.empty(k, dtype=np.int64)
        rank[order] = np.arange(k)
        labels = rank[raw]
        centres = np.sort(fit.cluster_centers_[:, 0])
        edges = tuple(float(v) for v in (centres[1:] + centres[:-1]) / 2)
    else:
        raise ValueError(f"group method {method!r}: use quantile or kmeans")
    sizes = np.bincount(labels, minlength=k)
    empty = [g for g in range(k) if sizes[g] == 0]
    if empty:
        raise ValueError(
            f"group(s) {empty} of K = {k} have no examples (the relevance scores are too "
            f"concentrated: {len(np.unique(flat))} distinct value(s)); lower K or use "
            "method: kmeans"
        )
    means = tuple(float(flat[labels == g].mean()) for g in range(k))
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in scores])])
    groups = [labels[offsets[i] : offsets[i + 1]] for i in range(len(scores))]
    return GroupAssignment(groups, tuple(int(v) for v in sizes), means, edges, method)


def example_batches(
    examples: Sequence[SpanExample],
    token_groups: Sequence[np.ndarray] | None,
    *,
    batch_size: int,
    epochs: int,
    seed: int,
    pad_id: int,
) -> Iterator[list[TrainingBatch]]:
    """Each epoch's batches (answer tokens as the only targets; each target's group in
    ``TrainingBatch.groups``), shuffled by a generator seeded from ``seed``: every objective
    trained with the same seed sees the same batches in the same order."""
    rng = np.random.default_rng(seed_from(seed, "gdrt-batches"))
    sequences = [e.sequence() for e in examples]
    for _ in range(epochs):
        order = rng.permutation(len(examples))
        batches = []
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size].tolist()
            ids, mask, labels = pad_batch([sequences[i] for i in rows], pad_id=pad_id)
            groups = None
            if token_groups is not None:
                groups = np.full(labels.shape, -1, dtype=np.int64)
                for r, i in enumerate(rows):
                    positions = np.flatnonzero(labels[r] != IGNORE_INDEX)
                    groups[r, positions] = token_groups[i]
            batches.append(
                TrainingBatch(
                    ids,
                    mask,
                    labels,
                    tuple(examples[i].user_id for i in rows),
                    "recommendation",
                    groups,
                )
            )
        yield batches


def steps_for(n_examples: int, *, batch_size: int, epochs: int) -> int:
    """Optimizer steps of :func:`example_batches`."""
    return max(1, math.ceil(n_examples / batch_size) * epochs)


def item_token_histories(
    interactions: Any, manifest: Any, tokenizer: Any
) -> tuple[list[int], dict[str, list[int]]]:
    """The prompt prefix (``<|bos|>`` + task text) and every user's history as item tokens,
    for a model with a TinyRec item map, in the manifest's history order."""
    from audit_sdk.recommendation_prompts import recommendation_header
    from audit_sdk.user_histories import user_histories

    token_of_item = {item: token for token, item in manifest.item_tokens.items()}
    header = recommendation_header(unit=manifest.unit, order=manifest.history_order)
    prefix = list(tokenizer(header)["input_ids"])
    histories = user_histories(interactions, order=manifest.history_order)
    return prefix, {
        user: [token_of_item[i] for i in items if i in token_of_item]
        for user, items in histories.items()
    }
