"""How much memory an audit may use (``execution.max_memory``), and chunk sizes that follow it.

Chunked stages (bootstrap draws, baseline recommending, per-user scoring) ask the active budget
how many rows of a given size fit in one chunk::

    budget = budget_from_config(config.execution.max_memory)   # "4GB", "512MiB", None
    budget.check_audit_fits(n_users=..., n_items=...)           # stops at once if too small
    with use_memory_budget(budget):
        ...                                                     # chunked code reads it

A chunk may use a quarter of the cap (the rest holds the data, the models and the results);
without a cap a chunk is held to :data:`DEFAULT_CHUNK_BYTES`, so an uncapped audit is bounded
too. Chunk sizes do not change results beyond float rounding (1e-7 relative): every chunked
computation in the SDK draws its random numbers in the same order whatever the chunk size.

The budget is process-wide (detectors run in worker threads, which context variables would
not reach); :func:`use_memory_budget` restores the previous one on exit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from audit_sdk.errors import ConfigError

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "MemoryBudget",
    "MemoryBudgetError",
    "budget_from_config",
    "current_memory_budget",
    "parse_memory_size",
    "use_memory_budget",
]

DEFAULT_CHUNK_BYTES = 256 * 2**20
CHUNK_SHARE = 0.25
_UNITS = {
    "": 1,
    "B": 1,
    "K": 2**10,
    "KB": 10**3,
    "KIB": 2**10,
    "M": 2**20,
    "MB": 10**6,
    "MIB": 2**20,
    "G": 2**30,
    "GB": 10**9,
    "GIB": 2**30,
    "T": 2**40,
    "TB": 10**12,
    "TIB": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*$")


class MemoryBudgetError(ConfigError):
    """The memory the audit may use is too small for a chunk it cannot split further."""


def parse_memory_size(text: str) -> int:
    """Bytes in a size such as ``"4GB"`` (10^9), ``"4GiB"`` or ``"4G"`` (2^30), ``"512MB"``,
    ``"1.5 GB"`` or a plain number of bytes."""
    match = _SIZE.match(str(text))
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in _UNITS:
        raise ConfigError(
            f"execution.max_memory: {text!r} is not a memory size; write a number with a unit, "
            "for example '4GB', '512MiB' or '2G' (units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)."
        )
    n_bytes = int(float(match.group(1)) * _UNITS[unit])
    if n_bytes <= 0:
        raise ConfigError(f"execution.max_memory: {text!r} must be more than zero bytes.")
    return n_bytes


def _format(n_bytes: float) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f} {unit}"
    return f"{int(n_bytes)} B"


@dataclass(frozen=True)
class MemoryBudget:
    """The memory an audit may use; ``limit_bytes=None`` means no cap."""

    limit_bytes: int | None = None

    @property
    def chunk_bytes(self) -> int:
        """Bytes one chunk of work may hold."""
        if self.limit_bytes is None:
            return DEFAULT_CHUNK_BYTES
        return int(self.limit_bytes * CHUNK_SHARE)

    def chunk_rows(
        self, bytes_per_row: float, *, total_rows: int, what: str, minimum_rows: int = 1
    ) -> int:
        """How many rows of ``bytes_per_row`` to process at once: as many as fit in
        :attr:`chunk_bytes`, at least ``minimum_rows``, at most ``total_rows``.

        :raises MemoryBudgetError: when ``minimum_rows`` rows do not fit; the message says how
            much memory the audit needs.
        """
        self.require(bytes_per_row * minimum_rows, what=what)
        fit = int(self.chunk_bytes // max(bytes_per_row, 1.0))
        return max(minimum_rows, min(max(total_rows, 1), fit))

    def require(self, n_bytes: float, *, what: str) -> None:
        """Stop when one indivisible chunk of ``n_bytes`` exceeds the budget."""
        if self.limit_bytes is None or n_bytes <= self.chunk_bytes:
            return
        needed = math.ceil(n_bytes / CHUNK_SHARE)
        raise MemoryBudgetError(
            f"execution.max_memory is {_format(self.limit_bytes)}, but {what} needs "
            f"{_format(n_bytes)} for its smallest chunk, and a chunk may use only a quarter of "
            f"the cap ({_format(self.chunk_bytes)}). Set execution.max_memory to at least "
            f"{_format(needed)}, or remove it to run without a cap."
        )

    def check_audit_fits(self, *, n_users: int, n_items: int) -> None:
        """Stop at once, before any work, if the smallest chunk of a built-in stage does not fit:
        one bootstrap draw over all users (7 bytes a user) or one user's scores over the
        catalog (25 bytes an item)."""
        self.require(7 * n_users, what=f"one bootstrap draw over {n_users:,} users")
        self.require(25 * n_items, what=f"scoring one user against {n_items:,} items")


def budget_from_config(value: str | None) -> MemoryBudget:
    """The budget for an ``execution.max_memory`` value (``None``: no cap)."""
    if value is None:
        return MemoryBudget()
    return MemoryBudget(parse_memory_size(value))


_active = MemoryBudget()


def current_memory_budget() -> MemoryBudget:
    """The budget chunked code follows (no cap unless :func:`use_memory_budget` set one)."""
    return _active


@contextmanager
def use_memory_budget(budget: MemoryBudget) -> Iterator[MemoryBudget]:
    """Make ``budget`` the active one for the duration of the block."""
    global _active
    previous, _active = _active, budget
    try:
        yield budget
    finally:
        _active = previous
