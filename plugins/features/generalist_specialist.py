"""The generalist-specialist score (GS-score) of each user, a shared user feature.

Waller & Anderson, "Generalists and specialists: using community embeddings to quantify
activity diversity in online platforms" (WWW 2019, Sec. 3, Eq. 1) and Anderson et al.,
"Algorithmic effects on the diversity of consumption on Spotify" (WWW 2020, Sec. 3.1): with
unit item vectors ``v_i`` and a user's play weights ``w_ui``, the user's centre is
``mu_u = sum_i w_ui v_i / sum_i w_ui`` and

    GS(u) = sum_i w_ui cos(v_i, mu_u) / sum_i w_ui.

Since ``cos(v_i, mu_u) = v_i . mu_u / |mu_u|`` for unit ``v_i``, the weighted mean of the
cosines is ``mu_u . mu_u / |mu_u| = |mu_u|``: GS is the length of the weighted mean of unit
vectors, so it lies in [0, 1] by construction (the triangle inequality), 1 for a user whose
items all point the same way (a specialist) and near 0 for one spread evenly over the space (a
generalist). Single cosines can be negative; their weighted mean cannot, so nothing is clipped
(only float rounding above 1). Computed for every user at once: one sparse product
``(W / rowsum W) @ V`` (users x dimensions) and a row norm, linear in the interactions.

Item vectors (when no embedding model is given) come from co-occurrence: the positive PMI of
the users x items listening matrix (binary: did the user play the item), with context
distribution smoothing ``P_a(i) = n_i^a / sum_j n_j^a``, a = 0.75, factorised by truncated SVD
with eigenvalue weighting ``V Sigma^(1/2)`` (Levy, Goldberg & Dagan, TACL 2015, Secs. 3.1 and
3.3). Its right singular vectors are those of the PPMI-weighted item co-occurrence matrix
``M^T M``, so items that the same users play point the same way; the randomized SVD is seeded,
so the feature is identical across runs. The matrix is never densified.

GS is NaN for a user with fewer than ``min_items`` distinct played items that have a vector
(:func:`gs_undefined_reasons` counts why).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field
from scipy import sparse
from sklearn.decomposition import TruncatedSVD

from audit_sdk import PluginParams, UserFeature, hookimpl
from audit_sdk.features.listening import user_item_plays

if TYPE_CHECKING:
    from audit_sdk.features import UserFeatures

__all__ = [
    "GeneralistSpecialistParams",
    "GeneralistSpecialistScore",
    "gs_scores",
    "gs_undefined_reasons",
    "positive_pmi",
    "ppmi_item_vectors",
]

REFERENCE = (
    "GS-score: Waller & Anderson, WWW 2019, Eq. 1; Anderson et al., WWW 2020, Sec. 3.1 "
    "(weighted mean cosine to the play-weighted centre of unit item vectors); item vectors: "
    "SVD of smoothed PPMI, Levy, Goldberg & Dagan, TACL 2015, Secs. 3.1, 3.3"
)
NO_PLAYS = "no training plays"


class GeneralistSpecialistParams(PluginParams):
    dimensions: int = Field(default=64, ge=2, description="item vector dimensions (SVD rank)")
    min_items: int = Field(
        default=5, ge=1, description="fewest distinct embedded items for a defined GS"
    )
    smoothing: float = Field(default=0.75, gt=0.0, le=1.0, description="context smoothing a")
    seed: int = Field(default=0, description="seed of the randomized SVD")


def positive_pmi(matrix: sparse.spmatrix, *, smoothing: float = 0.75) -> sparse.csr_matrix:
    """PPMI of a users x items count matrix with smoothed item marginals (Levy et al. 2015,
    Eq. 3 and Sec. 3.1): ``max(0, log(n_ui N / (n_u N P_a(i))))``; zeros stay zeros."""
    m = sparse.csr_matrix(matrix, dtype=np.float64, copy=True)
    m.eliminate_zeros()
    total = m.sum()
    if total <= 0:
        return m
    user_mass = np.asarray(m.sum(axis=1)).ravel()
    item_mass = np.asarray(m.sum(axis=0)).ravel() ** smoothing
    item_p = item_mass / item_mass.sum()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    # log( (n_ui / N) / ((n_u / N) * P_a(i)) )
    m.data = np.log(m.data / (user_mass[rows] * item_p[m.indices]))
    np.maximum(m.data, 0.0, out=m.data)
    m.eliminate_zeros()
    return m


def ppmi_item_vectors(
    plays: sparse.spmatrix, *, dimensions: int = 64, smoothing: float = 0.75, seed: int = 0
) -> np.ndarray:
    """Items x dimensions vectors from the truncated SVD of the binary listening matrix's
    PPMI (rows of zeros for items no user played). ``dimensions`` is capped at the matrix's
    rank bound (``min(users, items) - 1``)."""
    binary = sparse.csr_matrix(plays, copy=True)
    binary.data = (binary.data > 0).astype(np.float64)
    binary.eliminate_zeros()
    weights = positive_pmi(binary, smoothing=smoothing)
    n_items = weights.shape[1]
    rank = min(dimensions, min(weights.shape) - 1)
    if rank < 1 or weights.nnz == 0:
        return np.zeros((n_items, 0))
    svd = TruncatedSVD(n_components=rank, algorithm="randomized", n_iter=5, random_state=seed)
    svd.fit(weights)
    vectors: np.ndarray = svd.components_.T * np.sqrt(svd.singular_values_)[None, :]
    return vectors


def gs_scores(
    plays: sparse.spmatrix, item_vectors: np.ndarray, *, min_items: int = 5
) -> np.ndarray:
    """GS-score of every row of a users x items ``plays`` matrix (see the module docstring;
    Waller & Anderson 2019, Eq. 1), NaN where a user has fewer than ``min_items`` distinct
    played items with a nonzero vector. ``item_vectors``: one row per column of ``plays``."""
    p = sparse.csr_matrix(plays, dtype=np.float64)
    if item_vectors.shape[0] != p.shape[1]:
        raise ValueError(
            f"item_vectors has {item_vectors.shape[0]} rows but plays has {p.shape[1]} items"
        )
    norms = np.linalg.norm(item_vectors, axis=1)
    embedded = norms > 0
    unit = np.divide(
        item_vectors,
        norms[:, None],
        out=np.zeros_like(item_vectors, dtype=float),
        where=embedded[:, None],
    )
    keep = p @ sparse.diags(embedded.astype(np.float64))  # plays on embedded items only
    keep = sparse.csr_matrix(keep)
    keep.data = np.where(keep.data > 0, keep.data, 0.0)
    keep.eliminate_zeros()
    mass = np.asarray(keep.sum(axis=1)).ravel()
    n_items = np.diff(keep.indptr)
    centre = np.asarray(keep @ unit)  # sum_i w_ui v_i
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.linalg.norm(centre, axis=1) / mass
    score = np.clip(score, 0.0, 1.0)  # float rounding only: |mean of unit vectors| <= 1
    score[(n_items < min_items) | (mass <= 0)] = np.nan
    return score


def gs_undefined_reasons(
    plays: sparse.spmatrix, scores: np.ndarray, *, min_items: int
) -> dict[str, int]:
    """Why GS is NaN, counted: no training plays at all, or too few distinct embedded items."""
    missing = ~np.isfinite(np.asarray(scores, dtype=float))
    played = np.diff(sparse.csr_matrix(plays).indptr) > 0
    reasons = {
        NO_PLAYS: int((missing & ~played).sum()),
        f"fewer than {min_items} distinct items with an embedding": int((missing & played).sum()),
    }
    return {reason: count for reason, count in reasons.items() if count}


class GeneralistSpecialistScore(UserFeature):
    """GS-score in [0, 1] (high: specialist) from PPMI-SVD item vectors of the training split."""

    name: ClassVar[str] = "gs_score"
    description: ClassVar[str] = (
        "generalist-specialist score in [0, 1]: weighted mean cosine of a user's items to their "
        "centre (high = specialist)"
    )
    reference: ClassVar[str] = REFERENCE
    Params: ClassVar[type[PluginParams]] = GeneralistSpecialistParams

    def compute(self, features: UserFeatures) -> pd.Series:
        params: GeneralistSpecialistParams = self.params  # type: ignore[assignment]
        interactions, items = features.interactions, features.catalog.index
        # item vectors from every training user's listening; scores for the audited users
        everyone = pd.Index(pd.unique(interactions["user_id"]), name="user_id")
        vectors = ppmi_item_vectors(
            user_item_plays(interactions, everyone, items),
            dimensions=params.dimensions,
            smoothing=params.smoothing,
            seed=params.seed,
        )
        scores = gs_scores(features.plays, vectors, min_items=params.min_items)
        series = pd.Series(scores, index=features.users, name=self.name)
        series.attrs["undefined"] = gs_undefined_reasons(
            features.plays, scores, min_items=params.min_items
        )
        return series


@hookimpl
def audit_sdk_register_features(register: Any) -> None:
    register(GeneralistSpecialistScore)
