"""Write one audit's reports as one set: rendered, staged, published together with a manifest.

A reporter is a plugin and may be broken; a disk may be full, read-only or shared with another
audit. :func:`write_reports` therefore

1. makes the report safe to write (:mod:`audit_sdk.report_preparation`): JSON data only,
   every string redacted (:mod:`audit_sdk.redaction`) and encodable;
2. renders every reporter into memory, recording the ones that raise. ``report.json`` is the
   source of truth: when the JSON reporter is requested and fails, *nothing* is written;
3. takes the output folder's lock (``flock`` on the folder itself, so no lock file is left
   behind): a second audit writing into the same folder waits for the first, up to
   ``lock_timeout_s``, then gives up with a message;
4. writes every file into a staging folder inside the output folder, with a manifest
   (:data:`MANIFEST_NAME`: run id, and each file's size and SHA-256), then publishes them: the
   old manifest is removed first, the files are renamed into place, files the previous
   manifest listed that this run did not write are removed, and the new manifest comes last.
   ``audit-sdk gate`` checks report.json against the manifest, so a reader that sees a
   half-published set, or a report.json from another run, refuses it instead of trusting it;
5. if anything fails before the publication, the previous run's set is invalidated (its
   manifest and files are removed) so it can never be mistaken for this run's result.

File modes follow the umask (``0o644`` under umask 022).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from audit_sdk.atomic_io import TEMP_SUFFIX, write_new_file
from audit_sdk.interfaces import Reporter
from audit_sdk.redaction import redact_text
from audit_sdk.report_manifest import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    STAGING_PREFIX,
    ManifestProblem,
    filename_problem,
    manifest_files,
    read_manifest,
    sha256_hex,
    verify_manifest,
)
from audit_sdk.report_model import Report
from audit_sdk.report_preparation import json_safe, prepare_report

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "MANIFEST_NAME",
    "ManifestProblem",
    "ReportWriteResult",
    "ReporterFailure",
    "json_safe",
    "prepare_report",
    "verify_manifest",
    "write_reports",
]

JSON_REPORT = "report.json"
DEFAULT_LOCK_TIMEOUT_S = 300.0

Phase = Literal["render", "write", "lock", "publish"]


@dataclass(frozen=True)
class ReporterFailure:
    """One reporter that produced no file, and why."""

    reporter: str
    filename: str | None
    phase: Phase
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
    """What :func:`write_reports` did. ``ok`` only when every requested file was published
    and the published set matches its manifest."""

    written: list[Path] = field(default_factory=list)
    failures: list[ReporterFailure] = field(default_factory=list)
    run_id: str = ""
    manifest: Path | None = None
    removed_stale: list[Path] = field(default_factory=list)
    sanitized: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and self.manifest is not None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        what = {
            errno.ENOSPC: "the disk is full",
            errno.EDQUOT: "the disk quota is exceeded",
            errno.EROFS: "the file system is read-only",
            errno.EACCES: "permission denied",
            errno.EPERM: "operation not permitted",
            errno.ENOTDIR: "a part of the path is a file, not a folder",
            errno.EEXIST: "a file is in the way",
            errno.EFBIG: "the file is too large for this file system or limit",
        }.get(exc.errno)
        where = f" ({exc.filename})" if exc.filename else ""
        if what:
            return redact_text(f"{what}{where}")
    return redact_text(f"{type(exc).__name__}: {exc}")


# -- the output folder's lock ------------------------------------------------------------------


class _LockTimeout(Exception):
    pass


@contextlib.contextmanager
def _folder_lock(folder: Path, timeout_s: float) -> Iterator[None]:
    """An exclusive ``flock`` on ``folder`` itself (no lock file to leave behind)."""
    if fcntl is None:  # pragma: no cover - Windows: no cross-process lock
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _LockTimeout from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# -- writing -----------------------------------------------------------------------------------


def _reporter_name(item: object) -> str:
    return str(getattr(item, "name", None) or getattr(item, "__name__", repr(item)))


def _render_all(
    report: Report,
    out_dir: Path,
    reporters: Iterable[Reporter | type[Reporter]],
    result: ReportWriteResult,
) -> tuple[list[tuple[str, str, bytes]], set[str]]:
    """(reporter, filename, bytes) for each reporter that rendered; the filenames that failed."""
    rendered: list[tuple[str, str, bytes]] = []
    failed: set[str] = set()
    taken: dict[str, str] = {}
    for item in reporters:
        name = _reporter_name(item)
        filename = getattr(item, "filename", None)
        problem = filename_problem(filename)
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
            data = redact_text(text).encode("utf-8")
            if filename == JSON_REPORT:
                json.loads(data)  # the source of truth must be JSON
        except Exception as exc:
            failed.add(filename)
            result.failures.append(ReporterFailure(name, filename, "render", _describe(exc)))
            continue
        rendered.append((name, filename, data))
    return rendered, failed


def _remove(path: Path, result: ReportWriteResult) -> bool:
    try:
        if path.is_file() or path.is_symlink():
            path.unlink()
            result.removed_stale.append(path)
            return True
    except OSError:
        pass
    return False


def _clean_orphans(out_dir: Path) -> None:
    """Staging folders and temporary files of runs that died (we hold the lock)."""
    with contextlib.suppress(OSError):
        for entry in out_dir.iterdir():
            if entry.name.startswith(STAGING_PREFIX) and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            elif entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(OSError):
                    entry.unlink()


def _invalidate_previous(
    out_dir: Path, filenames: Iterable[str], result: ReportWriteResult
) -> set[str]:
    """Remove the previous run's manifest and files, and stale files named like this run's:
    nothing of an earlier run may pass for this run's output."""
    previous = read_manifest(out_dir)
    names = set(manifest_files(previous)) | set(filenames)
    removed = {n for n in names if _remove(out_dir / n, result)}
    _remove(out_dir / MANIFEST_NAME, result)
    return removed


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_reports(
    report: Report,
    out_dir: str | Path,
    reporters: Iterable[Reporter | type[Reporter]],
    *,
    run_id: str | None = None,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
) -> ReportWriteResult:
    """Render ``report`` with every reporter and publish the files into ``out_dir`` as one set.

    ``reporters`` may hold instances or classes (a class is instantiated without arguments).
    Never raises for a broken reporter or an unusable folder: each problem is a
    :class:`ReporterFailure` in the result, and ``result.ok`` is False.
    """
    out_dir = Path(out_dir)
    reporters = list(reporters)
    result = ReportWriteResult(run_id=run_id or uuid.uuid4().hex)
    report, result.sanitized = prepare_report(report)
    rendered, render_failed = _render_all(report, out_dir, reporters, result)
    wanted = [(_reporter_name(r), getattr(r, "filename", None)) for r in reporters]
    json_failed = JSON_REPORT in render_failed

    def fail_all(phase: Phase, error: str) -> None:
        for name, filename, _ in rendered:
            result.failures.append(ReporterFailure(name, filename, phase, error))

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        lock = _folder_lock(out_dir, lock_timeout_s)
        lock.__enter__()
    except _LockTimeout:
        fail_all(
            "lock",
            f"another audit has been writing into {out_dir} for over {lock_timeout_s:g} s; "
            "wait for it to finish or give this run another output folder (--out)",
        )
        return result
    except OSError as exc:
        fail_all("write", f"cannot use the output folder {out_dir}: {_describe(exc)}")
        return result
    try:
        _clean_orphans(out_dir)
        if json_failed:
            removed = _invalidate_previous(
                out_dir, [f for _, f in wanted if isinstance(f, str)], result
            )
            fail_all("write", f"not written because {JSON_REPORT} (the source of truth) failed")
            _mark_removed(result, removed)
            return result
        staging = out_dir / f"{STAGING_PREFIX}{result.run_id}"
        files: dict[str, dict[str, Any]] = {}
        try:
            staging.mkdir()
            for _, filename, data in rendered:
                write_new_file(staging / filename, data)
                files[filename] = {"sha256": sha256_hex(data), "bytes": len(data)}
            manifest = {
                "format": MANIFEST_FORMAT,
                "version": 1,
                "run_id": result.run_id,
                "created_at": datetime.now(UTC).isoformat(),
                "title": report.title,
                "files": files,
                "failed": sorted(render_failed),
            }
            write_new_file(
                staging / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
            )
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            removed = _invalidate_previous(
                out_dir, [f for _, f in wanted if isinstance(f, str)], result
            )
            fail_all("write", f"{_describe(exc)}; nothing of this run was published")
            _mark_removed(result, removed)
            return result
        _publish(out_dir, staging, rendered, files, render_failed, result)
        shutil.rmtree(staging, ignore_errors=True)
    finally:
        lock.__exit__(None, None, None)
    return result


def _mark_removed(result: ReportWriteResult, removed: set[str]) -> None:
    result.failures = [
        ReporterFailure(f.reporter, f.filename, f.phase, f.error, True)
        if f.filename in removed and not f.removed_stale
        else f
        for f in result.failures
    ]


def _publish(
    out_dir: Path,
    staging: Path,
    rendered: list[tuple[str, str, bytes]],
    files: dict[str, dict[str, Any]],
    render_failed: set[str],
    result: ReportWriteResult,
) -> None:
    previous = read_manifest(out_dir)
    try:
        manifest_path = out_dir / MANIFEST_NAME
        if manifest_path.exists():
            manifest_path.unlink()
        for _, filename, _ in rendered:
            os.replace(staging / filename, out_dir / filename)
        keep = set(files)
        stale = (set(manifest_files(previous)) | render_failed) - keep
        removed = {n for n in stale if _remove(out_dir / n, result)}
        _mark_removed(result, removed)
        os.replace(staging / MANIFEST_NAME, manifest_path)
        _fsync_dir(out_dir)
    except OSError as exc:
        with contextlib.suppress(OSError):
            (out_dir / MANIFEST_NAME).unlink()
        for name, filename, _ in rendered:
            result.failures.append(
                ReporterFailure(
                    name, filename, "publish", f"{_describe(exc)}; the set is incomplete"
                )
            )
        return
    for name, filename, data in rendered:
        path = out_dir / filename
        try:
            same = path.read_bytes() == data
        except OSError:
            same = False
        if not same:
            result.failures.append(
                ReporterFailure(
                    name, filename, "publish", "the published file differs from the one written"
                )
            )
        else:
            result.written.append(path)
    if not any(f.phase == "publish" for f in result.failures):
        result.manifest = manifest_path
