"""The manifest of a published report set: which files one run wrote, with their hashes.

:func:`audit_sdk.report_writing.write_reports` publishes ``audit-manifest.json`` (run id, and
each file's size and SHA-256) last; :func:`verify_manifest` is how ``audit-sdk gate`` checks
that a ``report.json`` is the complete, unchanged output of one run.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from audit_sdk.errors import environment_error_message

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "STAGING_PREFIX",
    "ManifestProblem",
    "filename_problem",
    "manifest_files",
    "read_manifest",
    "sha256_hex",
    "verify_manifest",
]

MANIFEST_NAME = "audit-manifest.json"
MANIFEST_FORMAT = "audit-sdk-report-set"
STAGING_PREFIX = ".audit-sdk-staging-"


def filename_problem(filename: object) -> str | None:
    """Why ``filename`` cannot be a report file in a set (None when it can)."""
    if not isinstance(filename, str) or not filename:
        return f"its `filename` must be a non-empty string (got {filename!r})"
    separators = {os.sep, os.altsep, "/", "\\"} - {None}
    if filename in {".", ".."} or any(sep in filename for sep in separators):  # type: ignore[operator]
        return f"its `filename` must be a plain file name without folders (got {filename!r})"
    if filename == MANIFEST_NAME or filename.startswith(STAGING_PREFIX):
        return f"its `filename` {filename!r} is reserved for the report set's manifest"
    return None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        return None
    return data


def manifest_files(manifest: Mapping[str, Any] | None) -> list[str]:
    if not manifest:
        return []
    return [n for n in manifest["files"] if isinstance(n, str) and filename_problem(n) is None]


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
    manifest = read_manifest(path.parent)
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
        return ManifestProblem("unreadable", environment_error_message(exc, path=path))
    if entry.get("sha256") != sha256_hex(data) or entry.get("bytes") != len(data):
        return ManifestProblem(
            "mismatch",
            f"{path}: its contents do not match {manifest_path} (run {manifest.get('run_id')}): "
            f"the file was changed, or it is from another run, or a run is publishing right "
            f"now. Re-run the audit (or wait for the running one).",
        )
    return None
