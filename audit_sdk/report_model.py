"""The report: typed, versioned, plain serializable data.

``report.json`` is the source of truth; every other output (HTML, JUnit, Markdown) is a
rendering of a :class:`Report`. ``audit-sdk schema --report`` prints its JSON Schema.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from audit_sdk.errors import ReportReadError
from audit_sdk.thresholds import Status, Threshold

__all__ = [
    "REPORT_SCHEMA_VERSION",
    "Direction",
    "Finding",
    "GroupEstimate",
    "MitigationRecord",
    "PluginRecord",
    "Provenance",
    "Report",
    "ResultCurves",
    "ResultTable",
    "SubjectInfo",
    "read_report",
]

REPORT_SCHEMA_VERSION: Literal["1.0"] = "1.0"

ChartKind = Literal["bars", "forest", "histogram"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GroupEstimate(_Model):
    """One row of a per-group table: a group (or a treatment, or a model) and its estimate."""

    group: str
    n: int = Field(ge=0, description="units (users, profiles) behind the estimate")
    estimate: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    warning: str | None = None
    significant: bool | None = None
    extra: dict[str, float | int | str | bool | None] = Field(default_factory=dict)


Direction = Literal["higher_is_better", "lower_is_better", "closer_to_zero", "none"]


class ResultTable(_Model):
    """A table a plugin reports beside its findings (a mitigator's arms compared, say)."""

    title: str
    columns: list[str]
    rows: list[list[str | float | int | bool | None]]
    note: str | None = None


class ResultCurves(_Model):
    """Curves over a common x (a training curve: a group's weight per step), one per series."""

    title: str
    x_label: str
    y_label: str
    x: list[float]
    series: dict[str, list[float | None]]


class MitigationRecord(_Model):
    """On a finding measured after a mitigation: which mitigator, on which subject."""

    mitigator: str
    summary: str
    before: str = Field(description="the unmitigated subject's name")
    before_fingerprint: str
    changed: list[str] = Field(
        default_factory=list, description="outputs, adapter, profile_writer, sampler, settings"
    )
    details: dict[str, Any] = Field(default_factory=dict)
    tables: list[ResultTable] = Field(
        default_factory=list, description="the mitigator's own tables (arms compared...)"
    )
    curves: list[ResultCurves] = Field(
        default_factory=list, description="the mitigator's curves (training curves...)"
    )


class Finding(_Model):
    """One measured quantity, its uncertainty and its verdict."""

    detector: str
    metric: str
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float = 0.95
    ci_method: str | None = Field(
        default=None, description="how the CI was computed, e.g. 'bootstrap-percentile'"
    )
    n: int | None = Field(default=None, ge=0)
    groups: list[GroupEstimate] = Field(default_factory=list)
    group_by: str | None = Field(default=None, description="the attribute that defines groups")
    subject: str | None = Field(default=None, description="the audited model's name")
    generator: str | None = Field(
        default=None,
        description="the generator (profile writer, logged model) the finding is about, where "
        "a detector reports each one separately",
    )
    window: str | None = None
    threshold: Threshold | None = None
    status: Status
    explanation: str
    warnings: list[str] = Field(default_factory=list)
    chart: ChartKind | None = None
    reference: str | None = Field(default=None, description="paper and equation")
    direction: Direction | None = Field(
        default=None, description="which way is better, from the detector's declared metrics"
    )
    value_range: tuple[float | None, float | None] | None = Field(
        default=None, description="the values the metric can take (None: unbounded)"
    )
    duration_s: float | None = Field(
        default=None, ge=0, description="wall time of the detector call that produced it"
    )
    mitigation: MitigationRecord | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        """The metric as shown and matched: ``<metric>[<generator>]`` for one generator's copy."""
        return self.metric if self.generator is None else f"{self.metric}[{self.generator}]"

    @property
    def key(self) -> str:
        parts = [self.detector, self.label]
        if self.group_by:
            parts.append(self.group_by)
        if self.window:
            parts.append(self.window)
        return "/".join(parts)


class PluginRecord(_Model):
    entry_point: str
    distribution: str | None
    version: str | None
    components: dict[str, list[str]] = Field(default_factory=dict)
    status: Literal["loaded", "failed", "blocked"] = "loaded"
    error: str | None = None


class SubjectInfo(_Model):
    name: str
    adapter: str
    fingerprint: str
    description: dict[str, Any] = Field(default_factory=dict)


class Provenance(_Model):
    config: dict[str, Any]
    config_sha256: str
    config_path: str | None = None
    data_fingerprint: str
    dataset: str
    package_version: str
    python_version: str
    platform: str
    plugins: list[PluginRecord]
    seed: int
    started_at: datetime
    finished_at: datetime
    subject: SubjectInfo | None = None
    baselines: list[SubjectInfo] = Field(default_factory=list)
    mitigated: list[SubjectInfo] = Field(
        default_factory=list, description="each mitigated subject, with its own fingerprint"
    )


class Report(_Model):
    schema_version: Literal["1.0"] = REPORT_SCHEMA_VERSION
    title: str = "audit-sdk report"
    provenance: Provenance
    findings: list[Finding]
    summary: dict[str, int] = Field(
        default_factory=dict, description="number of findings per status"
    )
    notes: list[str] = Field(default_factory=list)

    @classmethod
    def build(
        cls, *, provenance: Provenance, findings: list[Finding], notes: list[str] | None = None
    ) -> Report:
        summary = dict.fromkeys(("pass", "warn", "fail", "error", "skipped"), 0)
        for f in findings:
            summary[f.status] += 1
        return cls(provenance=provenance, findings=findings, summary=summary, notes=notes or [])

    @property
    def worst_status(self) -> Status:
        order: list[Status] = ["error", "fail", "warn", "pass", "skipped"]
        for s in order:
            if self.summary.get(s):
                return s
        return "pass"

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


def report_json_schema() -> dict[str, Any]:
    return Report.model_json_schema()


def read_report(path: str | Path) -> Report:
    """Read and validate ``report.json``; any problem is a :class:`ReportReadError`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ReportReadError(f"{path}: cannot read the report ({exc.strerror or exc}).") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ReportReadError(f"{path}: not UTF-8 text at byte {exc.start}.") from exc
    except json.JSONDecodeError as exc:
        raise ReportReadError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from exc
    try:
        return Report.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ReportReadError(
            f"{path}: not a valid audit-sdk report: field {where}: {first['msg']} "
            f"({exc.error_count()} problem(s) in all). Regenerate it with `audit-sdk run`."
        ) from exc
