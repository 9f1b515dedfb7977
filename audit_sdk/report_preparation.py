"""Make a report safe to write: JSON data only, no secret, every string encodable.

:func:`prepare_report` is what :func:`audit_sdk.report_writing.write_reports` renders: finding
``details`` become JSON data (a value that is not, such as an object, is stored as its text
and the finding gets a warning), every string passes the redaction layer
(:mod:`audit_sdk.redaction`), lone surrogates become ``\\udcxx`` escapes, and a note names
each configured threshold key that matched no metric.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from pathlib import PurePath
from typing import Any

from audit_sdk.redaction import redact_data
from audit_sdk.report_model import Finding, Report
from audit_sdk.thresholds import unmatched_threshold_keys

__all__ = ["json_safe", "prepare_report", "threshold_notes"]


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
