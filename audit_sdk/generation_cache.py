"""A SQLite cache of generated texts, so an interrupted audit resumes where it stopped.

A generation is identified by :class:`CacheKey`: the adapter's name, the model's fingerprint,
the prompt's sha256 and the sampling parameters (temperature, top-p, max new tokens, seed).
Nothing else enters a key or a row: an adapter's fingerprint never includes credentials (the
HTTP adapter's is its base URL and model name), and the cache stores only the key's fields,
the output text and the caller's metadata.

The database runs in WAL mode and every :meth:`GenerationCache.put_many` call is one committed
transaction: a process killed with SIGKILL loses at most the batch it had not yet stored, and
a key is stored at most once (the first text wins).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit_sdk.errors import (
    AuditSDKError,
    DataValidationError,
    ExitCode,
    environment_error_message,
)
from audit_sdk.interfaces.adapter import GenerationParams
from audit_sdk.redaction import redact_text

__all__ = ["CacheKey", "CacheRecord", "CacheStats", "GenerationCache", "GenerationCacheError"]


def _environment_failure(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and any(
        word in text
        for word in (
            "full",
            "readonly",
            "read-only",
            "locked",
            "busy",
            "unable to open",
            "disk i/o",
        )
    )


class GenerationCacheError(AuditSDKError):
    """The cache file cannot be used: a full disk, a read-only folder, a directory in its
    place, a lock held by another process. The message names the file and what to do."""

    exit_code = ExitCode.NO_REPORT


SCHEMA_VERSION = 1
_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cache_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY,
    adapter TEXT NOT NULL,
    model_fingerprint TEXT NOT NULL,
    prompt_sha256 TEXT NOT NULL,
    temperature REAL NOT NULL,
    top_p REAL NOT NULL,
    max_new_tokens INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class CacheKey:
    """What identifies one generation."""

    adapter: str
    model_fingerprint: str
    prompt_sha256: str
    temperature: float
    top_p: float
    max_new_tokens: int
    seed: int

    @classmethod
    def for_prompt(
        cls,
        *,
        adapter: str,
        model_fingerprint: str,
        prompt_sha256: str,
        params: GenerationParams,
    ) -> CacheKey:
        return cls(
            adapter=adapter,
            model_fingerprint=model_fingerprint,
            prompt_sha256=prompt_sha256,
            temperature=float(params.temperature),
            top_p=float(params.top_p),
            max_new_tokens=int(params.max_new_tokens),
            seed=int(params.seed),
        )

    @property
    def digest(self) -> str:
        """sha256 of the key's canonical JSON: the row's primary key."""
        canonical = json.dumps(
            [
                self.adapter,
                self.model_fingerprint,
                self.prompt_sha256,
                repr(float(self.temperature)),
                repr(float(self.top_p)),
                int(self.max_new_tokens),
                int(self.seed),
            ],
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CacheRecord:
    """A stored generation: its key, the text and free-form metadata (JSON-serializable)."""

    key: CacheKey
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    created_at: float = 0.0


@dataclass(frozen=True)
class CacheStats:
    path: str
    rows: int
    rows_by_adapter: dict[str, int]
    size_bytes: int
    hits: int
    misses: int
    writes: int


class GenerationCache:
    """A generation cache in one SQLite file (created, with its folder, if missing).

    Usable from several threads; several processes may share the file (SQLite locks it).
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | Path, *, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._writes = 0

    @contextlib.contextmanager
    def _environment(self, action: str) -> Iterator[None]:
        """Turn a failure of the environment while ``action`` into one clear error."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise GenerationCacheError(
                f"generation cache, {action}: {environment_error_message(exc, path=self.path)}"
                " (profiles.cache: null turns the cache off)"
            ) from None

    # -- connection -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None:
            return self._connection
        with self._environment("opening"):
            return self._open()

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path, timeout=self.timeout_s, check_same_thread=False, isolation_level=None
        )
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against a killed process (not against power loss) in WAL mode.
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
            row = connection.execute(
                "SELECT value FROM cache_meta WHERE name = 'schema_version'"
            ).fetchone()
            if row is None:
                connection.execute(
                    "INSERT OR IGNORE INTO cache_meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif row[0] != str(SCHEMA_VERSION):
                connection.close()
                raise DataValidationError(
                    f"generation cache schema version {row[0]}, this audit-sdk writes "
                    f"version {SCHEMA_VERSION}.",
                    source=str(self.path),
                    hint="delete the file (it is only a cache) or point the audit at a new one.",
                )
        except sqlite3.DatabaseError as exc:
            connection.close()
            if _environment_failure(exc):
                raise  # a full disk or a lock is not a broken file: _environment says so
            raise DataValidationError(
                f"not a usable generation cache ({exc}).",
                source=str(self.path),
                hint="delete the file (it is only a cache) or point the audit at a new one.",
            ) from None
        self._connection = connection
        return connection

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> GenerationCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reads ------------------------------------------------------------------------------
    def get_many(self, keys: Iterable[CacheKey]) -> dict[CacheKey, CacheRecord]:
        """The stored records among ``keys`` (keys not stored are absent)."""
        by_digest = {key.digest: key for key in keys}
        found: dict[CacheKey, CacheRecord] = {}
        digests = list(by_digest)
        with self._lock, self._environment("reading"):
            connection = self._connect()
            for start in range(0, len(digests), _CHUNK):
                chunk = digests[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = connection.execute(
                    f"SELECT key, text, metadata, created_at FROM generations "
                    f"WHERE key IN ({marks})",
                    chunk,
                ).fetchall()
                for digest, text, metadata, created_at in rows:
                    key = by_digest[digest]
                    found[key] = CacheRecord(key, text, json.loads(metadata), created_at)
            self._hits += len(found)
            self._misses += len(by_digest) - len(found)
        return found

    def get(self, key: CacheKey) -> CacheRecord | None:
        return self.get_many([key]).get(key)

    def __len__(self) -> int:
        with self._lock, self._environment("reading"):
            row = self._connect().execute("SELECT COUNT(*) FROM generations").fetchone()
        return int(row[0])

    def __iter__(self) -> Iterator[CacheRecord]:
        with self._lock, self._environment("reading"):
            rows = (
                self._connect()
                .execute(
                    "SELECT adapter, model_fingerprint, prompt_sha256, temperature, top_p, "
                    "max_new_tokens, seed, text, metadata, created_at FROM generations "
                    "ORDER BY created_at, key"
                )
                .fetchall()
            )
        for row in rows:
            key = CacheKey(*row[:7])
            yield CacheRecord(key, row[7], json.loads(row[8]), row[9])

    # -- writes -----------------------------------------------------------------------------
    def put_many(self, records: Sequence[CacheRecord]) -> int:
        """Store ``records`` in one committed transaction; returns how many were new.

        A key that is already stored keeps its first text.
        """
        if not records:
            return 0
        now = time.time()
        rows = []
        for record in records:
            if not isinstance(record.text, str):
                raise TypeError(f"cache text must be str, not {type(record.text).__name__}")
            key = record.key
            rows.append(
                (
                    key.digest,
                    key.adapter,
                    key.model_fingerprint,
                    key.prompt_sha256,
                    float(key.temperature),
                    float(key.top_p),
                    int(key.max_new_tokens),
                    int(key.seed),
                    redact_text(record.text),
                    redact_text(json.dumps(dict(record.metadata), sort_keys=True, default=str)),
                    record.created_at or now,
                )
            )
        with self._lock, self._environment("writing"):
            connection = self._connect()
            before = connection.total_changes
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(
                    "INSERT OR IGNORE INTO generations VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows
                )
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            added = connection.total_changes - before
            self._writes += added
        return added

    def put(self, key: CacheKey, text: str, metadata: Mapping[str, Any] | None = None) -> bool:
        return self.put_many([CacheRecord(key, text, metadata or {})]) == 1

    # -- inspection -------------------------------------------------------------------------
    def stats(self) -> CacheStats:
        """Row counts (total and per adapter), file size, and this object's hits and misses."""
        with self._lock, self._environment("reading"):
            connection = self._connect()
            by_adapter = dict(
                connection.execute(
                    "SELECT adapter, COUNT(*) FROM generations GROUP BY adapter ORDER BY adapter"
                ).fetchall()
            )
        size = sum(
            p.stat().st_size
            for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
            if p.exists()
        )
        return CacheStats(
            path=str(self.path),
            rows=sum(by_adapter.values()),
            rows_by_adapter=by_adapter,
            size_bytes=size,
            hits=self._hits,
            misses=self._misses,
            writes=self._writes,
        )
