"""Downstream utility of a taste profile: how well a bi-encoder, reading only the profile,
ranks the user's held-out items among sampled negatives.

Sguerra et al., RecSys 2025, Sec. 4.3: the profile and each candidate item's text (title,
artist, genres, country, year) are encoded by a sentence encoder (default all-MiniLM-L6-v2,
Reimers & Gurevych, EMNLP 2019); candidates, the user's held-out items plus ``negatives``
items the user never played drawn at random, are ranked by cosine similarity to the profile;
recall@k = hits in the top k / held-out items (at most ``max_positives``), NDCG@k with binary
gains (Järvelin & Kekäläinen, TOIS 2002, Eqs. 1-2, ideal DCG from min(k, positives) hits).
Each value is averaged over ``draws`` seeded negative samples.

Candidates are drawn first; each distinct text (profile or item that is a candidate
somewhere) is then encoded once, in batches; item vectors are reused across calls in the
process, and across audits through an optional :class:`ItemEmbeddingCache`, both keyed by the
encoder's fingerprint and the text. Candidate lists are scored in blocks by one batched
matrix product, and recall/NDCG computed for every list at once (:func:`ranking_metrics_many`,
equal to the one-list :func:`ranking_metrics` in a test).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ._downstream_embedding_cache import CachedEncoder, ItemEmbeddingCache, encoder_fingerprint
from ._downstream_encoders import (
    EncoderBackend,
    SentenceEncoder,
    TextEncoder,
    default_encoder_path,
)

__all__ = [
    "SentenceEncoder",
    "TextEncoder",
    "default_encoder_path",
    "item_texts",
    "profile_utility",
    "ranking_metrics",
    "ranking_metrics_many",
    "shared_sentence_encoder",
]

_SCORE_BLOCK = 256  # candidate lists scored per block (block x candidates x dim floats)
_shared: dict[tuple[str, int, str], SentenceEncoder] = {}


def shared_sentence_encoder(
    path: str | Path, *, batch_size: int = 64, backend: EncoderBackend = "auto"
) -> SentenceEncoder:
    """One :class:`SentenceEncoder` per (path, batch size, backend) in this process, so the
    model loads (and the ONNX graph is exported) once however many audits and detectors
    use it."""
    key = (str(Path(path).resolve()), batch_size, backend)
    if key not in _shared:
        _shared[key] = SentenceEncoder(path, batch_size=batch_size, backend=backend)
    return _shared[key]


def _known(value: object) -> bool:
    """False for None, NaN, NaT and ``pd.NA`` (HetRec's nullable year and country columns)."""
    return value is not None and not (pd.api.types.is_scalar(value) and pd.isna(value))


def item_texts(catalog: pd.DataFrame) -> pd.Series:
    """One line per item: ``title by artist (genres; country; year)``, from what is known."""

    def line(row: pd.Series) -> str:
        title = str(row.get("title", row.name))
        artist = row.get("artist")
        genres = row.get("genres")
        parts = []
        if isinstance(genres, (list, tuple)) and genres:
            parts.append(", ".join(map(str, genres)))
        elif isinstance(genres, str) and genres:
            parts.append(genres)
        for key in ("country", "release_year"):
            value = row.get(key)
            if _known(value) and str(value):
                parts.append(str(value))
        text = f"{title} by {artist}" if _known(artist) else title
        return f"{text} ({'; '.join(parts)})" if parts else text

    return catalog.apply(line, axis=1).astype(str)


def ranking_metrics(scores: np.ndarray, relevant: np.ndarray, k: int) -> tuple[float, float]:
    """Recall@k and NDCG@k (binary gains) of one candidate list."""
    order = np.argsort(-scores, kind="stable")[:k]
    hits = relevant[order].astype(float)
    n_relevant = int(relevant.sum())
    if n_relevant == 0:
        return float("nan"), float("nan")
    discounts = 1.0 / np.log2(np.arange(2, len(order) + 2))
    ideal = discounts[: min(k, n_relevant)].sum()
    return float(hits.sum() / n_relevant), float((hits * discounts).sum() / ideal)


def ranking_metrics_many(
    scores: np.ndarray, relevant: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Recall@k and NDCG@k (binary gains) of many candidate lists at once: rows of
    ``scores`` (``-inf`` pads a shorter list) and ``relevant``; NaN for a row without a
    relevant item. Ties keep list order, as :func:`ranking_metrics` does."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hits = np.take_along_axis(relevant, order, axis=1).astype(float)
    n_relevant = relevant.sum(axis=1)
    discounts = 1.0 / np.log2(np.arange(2, order.shape[1] + 2))
    ideal = np.cumsum(discounts)[np.clip(np.minimum(n_relevant, k), 1, None) - 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(n_relevant > 0, hits.sum(axis=1) / n_relevant, np.nan)
        ndcg = np.where(n_relevant > 0, (hits * discounts).sum(axis=1) / ideal, np.nan)
    return recall, ndcg


def profile_utility(
    profiles: pd.DataFrame,
    *,
    train: pd.DataFrame,
    test: pd.DataFrame,
    catalog: pd.DataFrame,
    encoder: TextEncoder,
    rng: np.random.Generator,
    k: int = 10,
    negatives: int = 100,
    draws: int = 3,
    max_positives: int = 20,
    item_cache: ItemEmbeddingCache | None = None,
) -> pd.DataFrame:
    """Per profile (rows of ``profiles``, same index): ``recall@k``, ``ndcg@k``,
    ``n_positives``; NaN for a user without held-out items. ``item_cache``: a file that
    keeps item vectors across audits (keyed by the encoder's fingerprint and the text)."""
    items = catalog.index
    held_out = test.groupby("user_id")["item_id"].unique()
    seen = pd.concat([train[["user_id", "item_id"]], test[["user_id", "item_id"]]])
    seen_codes = seen.assign(code=items.get_indexer(seen["item_id"])).groupby("user_id")["code"]
    seen_by_user = {u: set(c[c >= 0]) for u, c in seen_codes}
    # draw every candidate list first, then encode only the items that appear in one
    lists: list[tuple[int, np.ndarray, int]] = []  # (row, candidates, positives)
    n_pos = np.zeros(len(profiles), dtype=np.int64)
    for row, user in enumerate(profiles["user_id"].astype(str).to_numpy()):
        if user not in held_out.index:
            continue
        positives = items.get_indexer(held_out[user])
        positives = positives[positives >= 0][:max_positives]
        if not len(positives):
            continue
        n_pos[row] = len(positives)
        excluded = seen_by_user.get(user, set())
        for _ in range(draws):
            pool = rng.integers(len(items), size=negatives * 2 + len(excluded))
            pool = np.array([c for c in dict.fromkeys(pool.tolist()) if c not in excluded])
            lists.append((row, np.concatenate([positives, pool[:negatives]]), len(positives)))
    recall = np.full(len(profiles), np.nan)
    ndcg = np.full(len(profiles), np.nan)
    if lists:
        needed = np.unique(np.concatenate([candidates for _, candidates, _ in lists]))
        position = np.full(len(items), -1)
        position[needed] = np.arange(len(needed))
        fingerprint = encoder_fingerprint(encoder)
        items_encoder: TextEncoder = (
            CachedEncoder(encoder, fingerprint, item_cache) if fingerprint else encoder
        )
        item_vectors = _embed_distinct(items_encoder, item_texts(catalog.iloc[needed]).tolist())
        texts = profiles["text"].fillna("").astype(str).to_numpy()
        rows_used = np.array(sorted({row for row, _, _ in lists}))
        profile_vectors = np.zeros((len(profiles), item_vectors.shape[1]), dtype=np.float32)
        profile_vectors[rows_used] = _embed_distinct(encoder, texts[rows_used].tolist())
        width = max(len(candidates) for _, candidates, _ in lists)
        list_rows = np.array([row for row, _, _ in lists])
        list_recall = np.empty(len(lists))
        list_ndcg = np.empty(len(lists))
        for start in range(0, len(lists), _SCORE_BLOCK):
            block = lists[start : start + _SCORE_BLOCK]
            index = np.zeros((len(block), width), dtype=np.int64)
            valid = np.zeros((len(block), width), dtype=bool)
            relevant = np.zeros((len(block), width), dtype=bool)
            for j, (_, candidates, n_positive) in enumerate(block):
                index[j, : len(candidates)] = position[candidates]
                valid[j, : len(candidates)] = True
                relevant[j, :n_positive] = True
            vectors = profile_vectors[list_rows[start : start + len(block)]]
            scores = np.einsum("lcd,ld->lc", item_vectors[index], vectors)
            scores = np.where(valid, scores, -np.inf)
            stop = start + len(block)
            list_recall[start:stop], list_ndcg[start:stop] = ranking_metrics_many(
                scores, relevant, k
            )
        by_row = pd.DataFrame({"row": list_rows, "recall": list_recall, "ndcg": list_ndcg})
        means = by_row.groupby("row").mean()
        recall[means.index] = means["recall"].to_numpy()
        ndcg[means.index] = means["ndcg"].to_numpy()
    return pd.DataFrame(
        {f"recall@{k}": recall, f"ndcg@{k}": ndcg, "n_positives": n_pos}, index=profiles.index
    )


def _embed_distinct(encoder: TextEncoder, texts: list[str]) -> np.ndarray:
    """Each distinct text encoded once (in the encoder's batches), in the order given."""
    distinct = list(dict.fromkeys(texts))
    vectors = np.asarray(encoder.embed(distinct), dtype=np.float32)
    where = {t: i for i, t in enumerate(distinct)}
    return vectors[[where[t] for t in texts]]
