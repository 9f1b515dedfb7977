"""Vector helpers shared by every detector that compares embeddings."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["unit_rows"]


def unit_rows(x: ArrayLike) -> np.ndarray:
    """``x`` (one vector, or one per row) as float64 scaled to unit length along its last
    axis; a zero vector stays zero. Dot products of the results are cosine similarities."""
    array = np.asarray(x, dtype=float)
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    return array / np.where(norms > 0, norms, 1.0)
