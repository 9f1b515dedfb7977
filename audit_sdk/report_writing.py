"""Write a report in every requested format: render everything first, then write atomically.

A reporter is a plugin and may be broken. :func:`write_reports` isolates each one: it renders
every reporter into memory first, records the ones that raise, and only then writes the
rendered files, each atomically (temporary file, fsync, rename). So a reader never sees a
half-written file, a failing renderer never stops the others, and the output folder never
mixes this run's files with a stale file from an earlier run: the failed reporter's old file,
if any, is removed (and the removal recorded), because it would describe a different audit.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from audit_sdk.atomic_io import atomic_write_bytes
from audit_sdk.interfaces import Reporter
from audit_sdk.report_model import Report

__all__ = ["ReportWriteResult", "ReporterFailure", "write_reports"]


@dataclass(frozen=True)
class ReporterFailure:
    """One reporter that produced no file, and why."""

    reporter: str
    filename: str | None
    phase: Literal["render", "write"]
    error: str
    removed_stale: bool = False

    def describe(self) -> str:
        text = f"reporter {self.reporter!r}"
        if self.filename:
            text += f" ({self.filename})"
        text += f" failed to {self.phase}: {self.error}"
        if self.removed_stale:
            text += " (the older file of that name was removed)"
        return text

    def __str__(self) -> str:
        return self.describe()


@dataclass
class ReportWriteResult:
    written: list[Path] = field(default_factory=list)
    failures: list[ReporterFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _filename_problem(filename: object) -> str | None:
    if not isinstance(filename, str) or not filename:
        return f"its `filename` must be a non-empty string (got {filename!r})"
    separators = {os.sep, os.altsep, "/", "\\"} - {None}
    if filename in {".", ".."} or any(sep in filename for sep in separators):  # type: ignore[operator]
        return f"its `filename` must be a plain file name without folders (got {filename!r})"
    return None


def _remove_stale(path: Path) -> bool:
    try:
        if path.is_file():
            path.unlink()
            return True
    except OSError:
        pass
    return False


def write_reports(
    report: Report,
    out_dir: str | Path,
    reporters: Iterable[Reporter | type[Reporter]],
) -> ReportWriteResult:
    """Render ``report`` with every reporter, then write each file into ``out_dir``.

    ``reporters`` may hold instances or classes (a class is instantiated without arguments).
    Returns the paths written, in the given order, and a :class:`ReporterFailure` for each
    reporter that raised, returned something other than text, had an unusable or duplicate
    ``filename``, or could not be written.
    """
    out_dir = Path(out_dir)
    result = ReportWriteResult()
    rendered: list[tuple[Path, bytes]] = []
    taken: dict[str, str] = {}
    for item in reporters:
        name = str(getattr(item, "name", None) or getattr(item, "__name__", repr(item)))
        filename = getattr(item, "filename", None)
        problem = _filename_problem(filename)
        if problem is not None:
            result.failures.append(ReporterFailure(name, None, "render", problem))
            continue
        assert isinstance(filename, str)
        if filename in taken:
            result.failures.append(
                ReporterFailure(
                    name,
                    filename,
                    "render",
                    f"reporter {taken[filename]!r} already writes {filename!r}",
                )
            )
            continue
        taken[filename] = name
        try:
            reporter = item() if isinstance(item, type) else item
            text = reporter.render(report)
            if not isinstance(text, str):
                raise TypeError(f"render() returned {type(text).__name__}, not str")
            data = text.encode("utf-8")
        except Exception as exc:
            removed = _remove_stale(out_dir / filename)
            result.failures.append(
                ReporterFailure(name, filename, "render", _describe(exc), removed)
            )
            continue
        rendered.append((out_dir / filename, data))

    for path, data in rendered:
        try:
            result.written.append(atomic_write_bytes(path, data))
        except OSError as exc:
            result.failures.append(
                ReporterFailure(taken[path.name], path.name, "write", _describe(exc))
            )
    return result
