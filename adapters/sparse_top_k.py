"""Top-k selection over padded candidate rows, and the 64-bit hashing the random baseline uses.

A recommender that can name, for each user, a small set of candidates that surely contains the
user's k best unseen items (the items reachable through its neighbours, the most popular ones,
a few random draws) ranks ``users x candidates`` instead of ``users x catalog``: the work per
user no longer grows with the catalog. Candidates come as a padded ``(users, L)`` matrix of
item codes (-1: padding) and scores (-inf: padding or excluded).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

__all__ = [
    "hash_uniform",
    "mix64",
    "pad_rows",
    "rows_to_csr",
    "select_top_k",
    "select_top_k_sparse",
    "user_hashes",
]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def mix64(x: np.ndarray | np.uint64) -> np.ndarray:
    """SplitMix64's finaliser (Steele, Lea & Flood, OOPSLA 2014): a bijection of uint64 whose
    outputs pass as independent uniform bits for consecutive inputs."""
    z = np.asarray(x, dtype=np.uint64).copy()
    with np.errstate(over="ignore"):
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z


def user_hashes(user_ids: np.ndarray | list[str], seed: int) -> np.ndarray:
    """A stable 64-bit key per user id and seed (pandas' SipHash of the id, mixed with the
    seed): the same user gets the same random draws whichever batch it is in."""
    ids = pd.util.hash_array(np.asarray(user_ids, dtype=object))
    with np.errstate(over="ignore"):
        return mix64(ids ^ mix64(np.uint64(seed) * _GOLDEN + _GOLDEN))


def hash_uniform(keys: np.ndarray, counters: np.ndarray) -> np.ndarray:
    """Uniform 64-bit draws for each (key, counter) pair, broadcast."""
    with np.errstate(over="ignore"):
        return mix64(keys + (counters.astype(np.uint64) + np.uint64(1)) * _GOLDEN)


def pad_rows(matrix: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """A CSR matrix as padded ``(rows, max row length)`` item codes and scores."""
    lengths = np.diff(matrix.indptr)
    width = int(lengths.max()) if len(lengths) else 0
    items = np.full((matrix.shape[0], width), -1, dtype=np.int64)
    scores = np.full((matrix.shape[0], width), -np.inf)
    rows = np.repeat(np.arange(matrix.shape[0]), lengths)
    position = np.arange(matrix.nnz) - np.repeat(matrix.indptr[:-1], lengths)
    items[rows, position] = matrix.indices
    scores[rows, position] = matrix.data
    return items, scores


def select_top_k(items: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best candidates of each row, best first (ties by item code); -inf scores are
    never selected (they come back as -inf)."""
    k = min(k, items.shape[1])
    if k == 0:
        return items[:, :0], scores[:, :0]
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top_items = np.take_along_axis(items, top, axis=1)
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.lexsort((top_items, -top_scores), axis=1)
    return np.take_along_axis(top_items, order, axis=1), np.take_along_axis(
        top_scores, order, axis=1
    )


def rows_to_csr(
    rows: np.ndarray, cols: np.ndarray, data: np.ndarray, *, shape: tuple[int, int]
) -> sparse.csr_matrix:
    """A CSR matrix of distinct (row, col) entries, grouped by row with a linear-time stable
    sort and without sorting columns within a row (nothing here needs them sorted)."""
    order = np.argsort(rows, kind="stable")
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    return sparse.csr_matrix((data[order], cols[order], indptr), shape=shape)


def select_top_k_sparse(
    matrix: sparse.csr_matrix, k: int, *, group: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`select_top_k` over the stored entries of each row of ``matrix``, as ``(rows, k)``
    item codes (-1: fewer than k entries) and scores. Rows are padded in groups of similar
    length, so a few long rows do not pad every row to their length."""
    n_rows = matrix.shape[0]
    out_items = np.full((n_rows, k), -1, dtype=np.int64)
    out_scores = np.full((n_rows, k), -np.inf)
    order = np.argsort(np.diff(matrix.indptr), kind="stable")
    for start in range(0, n_rows, group):
        rows = order[start : start + group]
        items, scores = select_top_k(*pad_rows(matrix[rows]), k)
        out_items[rows, : items.shape[1]] = items
        out_scores[rows, : scores.shape[1]] = scores
    return out_items, out_scores
