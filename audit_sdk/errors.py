"""User-facing errors.

Every error a user can cause (a bad file, a bad config, a plugin that cannot load) is an
``AuditSDKError``: the CLI prints its message, without a traceback, and exits with a code
that says what kind of failure it was. The message names where the problem is (file, row,
column, field or plugin) and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "AdapterError",
    "AuditSDKError",
    "ConfigError",
    "DataValidationError",
    "DuplicatePluginError",
    "MissingCapabilityError",
    "PluginLoadError",
    "PolicyError",
    "ReportReadError",
    "UnknownPluginError",
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
