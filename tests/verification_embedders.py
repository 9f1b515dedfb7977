"""Two embedding adapters with known structure, for the verification tests (real adapters with
the ``embed`` capability, registered like any other):

* ``oracle_embedding`` reads the planted metadata out of the text: one axis per genre word,
  decade and country code it finds (a year counts for its decade, "1990s" for itself; words
  after "no" count negatively), plus a little text-seeded noise. It separates eras and genres
  by construction and encodes analogies additively.
* ``random_embedding`` gives every text a seeded random Gaussian vector: no structure at all.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from audit_sdk import GeneratorAdapter, PluginParams
from audit_sdk.data.synthetic_world import DEFAULT_GENRES
from audit_sdk.interfaces import Capability

COUNTRIES = ("US", "GB", "DE", "FR", "SE", "JP", "KR", "BR", "MX", "IN", "NG", "CA", "AU")
DECADES = tuple(f"{d}s" for d in range(1900, 2030, 10))
_TOKEN = re.compile(r"[^\s,;()]+")


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


class OracleParams(PluginParams):
    noise: float = 0.15


class OracleEmbedding(GeneratorAdapter):
    name = "oracle_embedding"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"embed"})
    Params = OracleParams

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        assert isinstance(self.params, OracleParams)
        axes = {name: i for i, name in enumerate((*DEFAULT_GENRES, *DECADES, *COUNTRIES))}
        out = np.zeros((len(texts), len(axes) + 8))
        for row, text in enumerate(texts):
            sign = 1.0
            for token in _TOKEN.findall(text):
                if token.lower() == "no":
                    sign = -1.0
                    continue
                key = token if token in COUNTRIES else token.lower()
                if re.fullmatch(r"\d{4}", key):
                    key = f"{int(key) // 10 * 10}s"
                if key in axes:
                    out[row, axes[key]] += sign
            noise = np.random.default_rng(_seed(text)).normal(size=out.shape[1])
            out[row] += self.params.noise * noise
        return out


class RandomEmbedding(GeneratorAdapter):
    name = "random_embedding"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"embed"})

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.vstack([np.random.default_rng(_seed(t)).normal(size=64) for t in texts]).reshape(
            len(texts), 64
        )


def oracle_embed(texts: Sequence[str]) -> np.ndarray:
    """The oracle as a plain function (for the callable adapter)."""
    return OracleEmbedding().embed(texts)


def random_embed(texts: Sequence[str]) -> np.ndarray:
    """The random embedding as a plain function (for the callable adapter)."""
    return RandomEmbedding().embed(texts)
