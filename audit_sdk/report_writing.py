"""Write one audit's reports as one set: rendered, staged, published together with a manifest.

A reporter is a plugin and may be broken; a disk may be full, read-only or shared with another
audit. :func:`write_reports` therefore

1. makes the report safe to write: finding ``details`` become JSON data (a value that is not,
   such as an object, is stored as its text and the finding gets a warning), every string
   passes the redaction layer (:mod:`audit_sdk.redaction`), and lone surrogates become
   ``\\udcxx`` escapes;
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
import hashlib
import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path, PurePath
from typing import Any, Literal

from audit_sdk.atomic_io import TEMP_SUFFIX, write_new_file
from audit_sdk.interfaces import Reporter
from audit_sdk.redaction import redact_data, redact_text
from audit_sdk.report_model import Finding, Report
from audit_sdk.thresholds import unmatched_threshold_keys

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

MANIFEST_NAME = "audit-manifest.json"
MANIFEST_FORMAT = "audit-sdk-report-set"
STAGING_PREFIX = ".audit-sdk-staging-"
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


def _filename_problem(filename: object) -> str | None:
    if not isinstance(filename, str) or not filename:
        return f"its `filename` must be a non-empty string (got {filename!r})"
    separators = {os.sep, os.altsep, "/", "\\"} - {None}
    if filename in {".", ".."} or any(sep in filename for sep in separators):  # type: ignore[operator]
        return f"its `filename` must be a plain file name without folders (got {filename!r})"
    if filename == MANIFEST_NAME or filename.startswith(STAGING_PREFIX):
        return f"its `filename` {filename!r} is reserved for the report set's manifest"
    return None


# -- making the report safe to write -----------------------------------------------------------


def json_safe(value: Any, *, where: str = "details", problems: list[str] | None = None) -> Any:
    """``value`` as JSON data: mappings with string keys, lists, strings, finite numbers,
    booleans and None. NumPy and pandas scalars and arrays, dates, paths, enums and sets are
    converted; anything else becomes its text and is recorded in ``problems``."""
    seen: set[int] = set()
    problems = problems if problems is not None else []

    def convert(item: Any, path: str, depth: int) -> Any:
        if item is None or isinstance(item, bool | str):
            return item
        if isinstance(item, int):
            return item
        if isinstance(item, float):
            return item if math.isfinite(item) else None
        if depth > 64:
            problems.append(f"{path}: nested deeper than 64 levels; cut")
            return None
        if isinstance(item, Enum):
            return convert(item.value, path, depth + 1)
        if isinstance(item, datetime | date):
            return item.isoformat()
        if isinstance(item, PurePath):
            return str(item)
        if isinstance(item, bytes):
            return item.decode("utf-8", errors="replace")
        if hasattr(item, "dtype") and hasattr(item, "item") and getattr(item, "ndim", 1) == 0:
            return convert(item.item(), path, depth + 1)  # numpy scalar
        if id(item) in seen:
            problems.append(f"{path}: refers to itself; cut")
            return None
        if isinstance(item, Mapping):
            seen.add(id(item))
            out = {str(k): convert(v, f"{path}.{k}", depth + 1) for k, v in item.items()}
            seen.discard(id(item))
            return out
        if isinstance(item, list | tuple | set | frozenset):
            seen.add(id(item))
            items = list(item)
            if isinstance(item, set | frozenset):
                items.sort(key=repr)
            out_list = [convert(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(items)]
            seen.discard(id(item))
            return out_list
        if hasattr(item, "tolist"):  # numpy arrays, pandas Series/Index
            try:
                return convert(item.tolist(), path, depth + 1)
            except Exception:
                pass
        if hasattr(item, "isoformat"):
            with contextlib.suppress(Exception):
                return str(item.isoformat())
        problems.append(f"{path}: a {type(item).__name__} is not JSON data; stored as its text")
        try:
            return str(item)
        except Exception:
            return f"<{type(item).__name__}>"

    return convert(value, where, 0)


def _safe_finding(finding: Finding, notes: list[str]) -> Finding:
    problems: list[str] = []
    details = json_safe(finding.details, where="details", problems=problems)
    if not problems:
        try:
            json.dumps(details, allow_nan=False)
            return (
                finding
                if details == finding.details
                else finding.model_copy(update={"details": details})
            )
        except (TypeError, ValueError):
            pass
    warnings = [*finding.warnings, *(f"report writing: {p}" for p in problems)]
    notes.extend(f"{finding.key}: {p}" for p in problems)
    return finding.model_copy(update={"details": details, "warnings": warnings})


def threshold_notes(report: Report) -> list[str]:
    """A note for each configured threshold key that matched no metric of its detector."""
    detectors = report.provenance.config.get("detectors")
    if not isinstance(detectors, list):
        return []
    notes = []
    for i, entry in enumerate(detectors):
        if not isinstance(entry, dict) or not entry.get("thresholds"):
            continue
        name = entry.get("name")
        found = [f for f in report.findings if f.detector == name]
        if not found or all(
            f.status in ("error", "skipped") and f.metric == "(all)" for f in found
        ):
            continue  # the detector did not run: its metrics are unknown
        metrics = sorted({f.metric for f in found})
        for key in unmatched_threshold_keys(entry["thresholds"], metrics):
            shown = ", ".join(metrics[:8]) + (", ..." if len(metrics) > 8 else "")
            notes.append(
                f"detectors[{i}] ({name}): threshold key {key!r} matches no metric this "
                f"detector reported, so it was not applied; check its spelling (metrics: {shown})"
            )
    return notes


def prepare_report(report: Report) -> tuple[Report, list[str]]:
    """``report`` with JSON-safe finding details and every string redacted, notes for
    threshold keys that matched nothing, and the list of details converted to text."""
    notes: list[str] = []
    findings = [_safe_finding(f, notes) for f in report.findings]
    extra = [n for n in threshold_notes(report) if n not in report.notes]
    safe = report.model_copy(update={"findings": findings, "notes": [*report.notes, *extra]})
    data = _encodable(redact_data(safe.model_dump(mode="json")))
    return Report.model_validate(data), notes


def _encodable(value: Any) -> Any:
    """``value`` with lone surrogates (from bytes that were not UTF-8, or a JSONL ``\\udcff``)
    written as ``\\udcff`` escapes, so every format can encode it."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", errors="backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encodable(v) for v in value]
    return value


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


# -- manifest ----------------------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        return None
    return data


def _manifest_files(manifest: Mapping[str, Any] | None) -> list[str]:
    if not manifest:
        return []
    return [n for n in manifest["files"] if isinstance(n, str) and _filename_problem(n) is None]


@dataclass(frozen=True)
class ManifestProblem:
    """Why a report file does not belong to a complete, published report set."""

    kind: Literal["missing", "unreadable", "unlisted", "mismatch"]
    message: str


def verify_manifest(report_path: str | Path) -> ManifestProblem | None:
    """None when ``report_path`` is listed in its folder's manifest with the same size and
    SHA-256; otherwise what is wrong."""
    path = Path(report_path)
    manifest_path = path.parent / MANIFEST_NAME
    if not manifest_path.exists():
        return ManifestProblem(
            "missing",
            f"{path}: no {MANIFEST_NAME} beside it, so nothing shows it is the complete output "
            f"of one audit run (the run that wrote it may have failed, or it was copied or "
            f"written by an audit-sdk older than 0.2). Re-run the audit, or pass "
            f"--allow-missing-manifest to gate a bare report.json.",
        )
    manifest = _read_manifest(path.parent)
    if manifest is None:
        return ManifestProblem(
            "unreadable", f"{manifest_path}: not a valid report-set manifest. Re-run the audit."
        )
    entry = manifest["files"].get(path.name)
    if not isinstance(entry, dict):
        return ManifestProblem(
            "unlisted",
            f"{path}: not listed in {manifest_path} (run {manifest.get('run_id')}), so it is "
            f"not this run's report. Re-run the audit.",
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        return ManifestProblem("unreadable", f"{path}: cannot read ({_describe(exc)}).")
    if entry.get("sha256") != _sha256(data) or entry.get("bytes") != len(data):
        return ManifestProblem(
            "mismatch",
            f"{path}: its contents do not match {manifest_path} (run {manifest.get('run_id')}): "
            f"the file was changed, or it is from another run, or a run is publishing right "
            f"now. Re-run the audit (or wait for the running one).",
        )
    return None


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
    previous = _read_manifest(out_dir)
    names = set(_manifest_files(previous)) | set(filenames)
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
                files[filename] = {"sha256": _sha256(data), "bytes": len(data)}
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
    previous = _read_manifest(out_dir)
    try:
        manifest_path = out_dir / MANIFEST_NAME
        if manifest_path.exists():
            manifest_path.unlink()
        for _, filename, _ in rendered:
            os.replace(staging / filename, out_dir / filename)
        keep = set(files)
        stale = (set(_manifest_files(previous)) | render_failed) - keep
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
