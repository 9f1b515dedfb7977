"""Atomic file writes: a reader never sees a half-written file.

Files are created with mode ``0o666`` minus the process umask (like ``open()``), not the
``0o600`` of :func:`tempfile.mkstemp`: a report is meant to be read by the CI user too.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["TEMP_SUFFIX", "atomic_write_bytes", "atomic_write_text", "write_new_file"]

TEMP_SUFFIX = ".tmp"


def write_new_file(path: str | Path, data: bytes, *, fsync: bool = True) -> Path:
    """Create ``path`` (it must not exist), write ``data`` and fsync it. Mode follows umask.
    On any failure the partial file is removed."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
    write_new_file(tmp, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))
