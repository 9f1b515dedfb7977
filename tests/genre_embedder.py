"""An item embedder for tests (through the callable adapter): one-hot of the genre named in
the item's text, so a user's GS-score is the length of their mean genre vector."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from audit_sdk.data.synthetic_world import DEFAULT_GENRES


def embed(texts: Sequence[str]) -> np.ndarray:
    vectors = np.zeros((len(texts), len(DEFAULT_GENRES)))
    for i, text in enumerate(texts):
        details = text.rsplit("(", 1)[-1]
        for j, genre in enumerate(DEFAULT_GENRES):
            if genre in details.split(";")[0].split(", "):
                vectors[i, j] = 1.0
    return vectors
