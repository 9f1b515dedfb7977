"""Item embeddings computed once: in memory for the process, and in a SQLite file across audits.

A vector is keyed by the encoder's fingerprint (model file hash and backend, or an adapter's
:meth:`~audit_sdk.GeneratorAdapter.fingerprint`) and the sha256 of the text, so a changed
model or a changed item text is encoded anew. Only item texts (catalog metadata) go through
this cache; profiles are encoded per audit and never stored. The file stores the keys and
float32 vectors, no text.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from audit_sdk.cache_paths import cache_dir
from audit_sdk.errors import AuditSDKError

from ._downstream_encoders import TextEncoder

__all__ = [
    "CachedEncoder",
    "ItemEmbeddingCache",
    "default_embedding_cache_path",
    "encoder_fingerprint",
]

_CHUNK = 500  # keys per SQL query (well under SQLite's variable limit)
_PROCESS_MEMORY: dict[str, dict[str, np.ndarray]] = {}  # fingerprint -> text -> vector


def encoder_fingerprint(encoder: object) -> str | None:
    """What identifies an encoder's vectors: its ``fingerprint`` (attribute or method, as
    :class:`~audit_sdk.GeneratorAdapter` has), else None (nothing is reused across calls)."""
    value = getattr(encoder, "fingerprint", None)
    if callable(value):
        value = value()
    return str(value) if value else None


def default_embedding_cache_path() -> Path:
    return cache_dir() / "item_embeddings.sqlite"


def _text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class ItemEmbeddingCache:
    """A SQLite file of (encoder fingerprint, text sha256) -> float32 vector."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=30)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS vectors (encoder TEXT NOT NULL, text BLOB NOT NULL, "
                "vector BLOB NOT NULL, PRIMARY KEY (encoder, text))"
            )
        except (OSError, sqlite3.Error) as error:
            raise AuditSDKError(
                f"item-embedding cache {self.path}: {error}; set params.embedding_cache to a "
                "writable file, or null to keep embeddings in memory only"
            ) from error
        return connection

    def get_many(self, encoder: str, texts: Sequence[str]) -> dict[int, np.ndarray]:
        """Position in ``texts`` -> cached vector, for the texts that are cached."""
        keys = [_text_key(t) for t in texts]
        where = {k: i for i, k in enumerate(keys)}
        found: dict[int, np.ndarray] = {}
        with contextlib.closing(self._connect()) as connection:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = connection.execute(
                    f"SELECT text, vector FROM vectors WHERE encoder = ? AND text IN ({marks})",
                    [encoder, *chunk],
                )
                for key, blob in rows:
                    found[where[bytes(key)]] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, encoder: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        rows = [
            (encoder, _text_key(t), np.ascontiguousarray(v, dtype=np.float32).tobytes())
            for t, v in zip(texts, vectors, strict=True)
        ]
        try:
            with contextlib.closing(self._connect()) as connection, connection:
                connection.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?, ?)", rows)
        except sqlite3.Error as error:
            raise AuditSDKError(
                f"item-embedding cache {self.path}: {error}; set params.embedding_cache to a "
                "writable file, or null to keep embeddings in memory only"
            ) from error


class CachedEncoder:
    """An encoder whose distinct texts are each encoded once: looked up in memory, then in
    the optional :class:`ItemEmbeddingCache`, and only the rest encoded (in one call)."""

    def __init__(
        self, encoder: TextEncoder, fingerprint: str, store: ItemEmbeddingCache | None = None
    ) -> None:
        self.encoder = encoder
        self.fingerprint = fingerprint
        self.store = store
        self._memory = _PROCESS_MEMORY.setdefault(fingerprint, {})
        self.encoded = 0  # texts this instance sent to the encoder

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        distinct = list(dict.fromkeys(texts))
        missing = [t for t in distinct if t not in self._memory]
        if missing and self.store is not None:
            for i, vector in self.store.get_many(self.fingerprint, missing).items():
                self._memory[missing[i]] = vector
            missing = [t for t in missing if t not in self._memory]
        if missing:
            vectors = np.asarray(self.encoder.embed(missing), dtype=np.float32)
            self.encoded += len(missing)
            self._memory.update(zip(missing, vectors, strict=True))
            if self.store is not None:
                self.store.put_many(self.fingerprint, missing, vectors)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._memory[t] for t in texts])
