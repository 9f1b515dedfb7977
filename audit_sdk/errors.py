"""User-facing errors.

Every error a user can cause (a bad file, a bad config, a plugin that cannot load) is an
``AuditSDKError``: the CLI prints its message, without a traceback, and exits with a code
that says what kind of failure it was. The message names where the problem is (file, row,
column, field or plugin) and how to fix it.
"""

from __future__ import annotations

import errno
import re
from enum import IntEnum

__all__ = [
    "AdapterError",
    "AuditSDKError",
    "ConfigError",
    "DataValidationError",
    "DuplicatePluginError",
    "ExitCode",
    "MissingCapabilityError",
    "PluginLoadError",
    "PolicyError",
    "ReportReadError",
    "ReportWriteError",
    "UnknownPluginError",
    "environment_error_message",
    "terminal_safe",
]


class AuditSDKError(Exception):
    """Base class of every error the SDK reports to a user without a traceback."""

    exit_code: int = 2


class ConfigError(AuditSDKError):
    """An audit config file that cannot be read or does not validate."""


class DataValidationError(AuditSDKError):
    """Input data that is missing, malformed or inconsistent.

    ``source`` is the file (or table) name, ``row`` the 1-based data row (header excluded),
    ``column`` the offending column. All three are optional but the message always carries
    whichever are known.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        row: int | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.source = source
        self.row = row
        self.column = column
        self.hint = hint
        where = []
        if source is not None:
            where.append(str(source))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        text = f"{', '.join(where)}: {message}" if where else message
        if hint:
            text = f"{text}\n  hint: {hint}"
        super().__init__(text)


class PluginLoadError(AuditSDKError):
    """A plugin that failed to import or to register (fatal only in strict mode)."""


class DuplicatePluginError(AuditSDKError):
    """Two plugins registered the same name for the same kind."""


class UnknownPluginError(AuditSDKError):
    """A config names a plugin that is not registered."""


class MissingCapabilityError(AuditSDKError):
    """An adapter lacks a capability that a detector or mitigator needs."""


class AdapterError(AuditSDKError):
    """A generator adapter could not produce outputs (model missing, endpoint down, ...)."""


class PolicyError(AuditSDKError):
    """A gate policy file that cannot be read or does not validate."""


class ReportReadError(AuditSDKError):
    """A report file that cannot be read or does not validate against the report schema."""


class ExitCode(IntEnum):
    """The command line's exit codes (the README's "Exit codes" section)."""

    OK = 0
    VIOLATION = 1  # gate: a check did not hold
    USAGE = 2  # bad input: config, data, policy or report that cannot be used
    NO_REPORT = 3  # run: the reports could not all be produced and published
    NOTHING_CHECKED = 4  # gate: no finding was evaluated (none, or all skipped)
    INTERRUPTED = 130


class ReportWriteError(AuditSDKError):
    """The audit ran but its reports could not all be written and published."""

    exit_code = ExitCode.NO_REPORT


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: object) -> str:
    """``text`` with control characters (ESC and the other C0/C1 codes, bidi overrides)
    shown as ``\\x1b``-style escapes, so data can never drive the terminal. Newlines and tabs
    stay; lone surrogates become ``\\udcxx``."""
    value = str(text)
    value = _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return value


def environment_error_message(exc: BaseException, *, path: object = None) -> str:
    """One sentence for a failure of the environment (disk, permissions, locks, encodings):
    what happened, to which file, and what to do."""
    import sqlite3

    where = str(path) if path is not None else getattr(exc, "filename", None)
    prefix = f"{where}: " if where else ""
    if isinstance(exc, OSError):
        advice = {
            errno.ENOSPC: ("the disk is full", "free space or write somewhere else"),
            errno.EDQUOT: ("the disk quota is exceeded", "free space or write somewhere else"),
            errno.EROFS: ("the file system is read-only", "choose a writable folder"),
            errno.EACCES: ("permission denied", "fix the permissions or choose another path"),
            errno.EPERM: ("operation not permitted", "fix the permissions or choose another path"),
            errno.ENOTDIR: ("a part of the path is a file, not a folder", "choose another path"),
            errno.EISDIR: ("this is a folder, not a file", "give the path of a file"),
            errno.ENOENT: ("no such file or folder", "check the path"),
            errno.EEXIST: ("a file is in the way", "remove it or choose another path"),
            errno.EFBIG: ("the file is too large for this file system", "write elsewhere"),
            errno.EMFILE: ("too many open files", "raise the limit (ulimit -n)"),
        }.get(exc.errno or -1)
        if advice:
            return f"{prefix}{advice[0]}; {advice[1]}."
        return f"{prefix}{exc.strerror or exc}."
    text = str(exc).lower()
    if isinstance(exc, sqlite3.Error) and "full" in text:
        return f"{prefix}the disk is full ({exc}); free space or point the file elsewhere."
    if isinstance(exc, sqlite3.Error) and "readonly" in text.replace("-", "").replace(" ", ""):
        return f"{prefix}the file or its folder is read-only ({exc}); choose a writable path."
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return (
            f"{prefix}the SQLite cache is locked by another process ({exc}); wait for it, or "
            "point profiles.cache at another file."
        )
    if isinstance(exc, sqlite3.Error):
        return (
            f"{prefix}the SQLite cache cannot be used ({exc}); delete it (it is only a cache) "
            "or point profiles.cache at another file."
        )
    if isinstance(exc, UnicodeError):
        return f"{prefix}text that is not valid UTF-8 ({exc}); fix the encoding of the file."
    return f"{prefix}{type(exc).__name__}: {exc}"
