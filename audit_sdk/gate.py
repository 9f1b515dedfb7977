"""The CI gate: turn a report (and optionally a policy and a baseline report) into an exit code.

``audit-sdk gate REPORT [--policy FILE] [--baseline OLD_REPORT]`` exits with

* ``0`` when nothing violates,
* ``1`` when something violates (a rule with ``severity: warn`` is printed but never sets 1),
* ``2`` when the report, the baseline or the policy cannot be read or is invalid
  (:class:`~audit_sdk.errors.ReportReadError`, :class:`~audit_sdk.errors.PolicyError`), or
  the report does not match the manifest of its report set,
* ``4`` when nothing was checked: the report has no finding, or only ``skipped`` ones
  (``--allow-empty``: 0).

Without a policy, a violation is any finding whose status is ``fail`` or ``error``.

A policy is a YAML file; unknown keys are errors. Every key is optional::

    # gate-policy.yaml
    fail_on_status: [fail, error]   # statuses that always violate (default [fail, error]);
                                    # [] to rely on the rules only; add warn to be strict
    rules:
      - name: ndcg ratio, evidence of harm   # optional label for the output
        detector: group_fairness    # fnmatch patterns (case-sensitive); default "*"
        metric: "ndcg@10:min_max_ratio"
        group_by: "*"               # matches Finding.group_by; a finding without one
        window: "*"                 #   (or without a window) matches "*" only
        group: null                 # optional pattern: check the matching rows of the
                                    #   finding's per-group table instead of the finding
        statistic: ci_high          # estimate | ci_low | ci_high
        fail_below: 0.8             # violate if the statistic < fail_below ...
        fail_above: null            # ... or > fail_above (give at least one)
        missing: fail               # no finding matches, or the statistic is missing
                                    #   (no CI, error, skipped): fail (default) | pass
        severity: fail              # fail (exit 1) | warn (printed only)
    baseline:                       # used only with --baseline OLD_REPORT
      tolerance: 0.02               # absolute change in the estimate allowed in the
                                    #   harmful direction (default 0)
      direction: auto               # auto | lower_is_worse | higher_is_worse
      disappeared: warn             # a finding in the baseline but not in the report:
                                    #   warn (default) | fail

**Evidence of harm or evidence of safety.** The statistic says what evidence the gate wants.
For a ratio where low is bad and 0.8 is the limit, ``statistic: ci_high, fail_below: 0.8``
fails only when even the favourable end of the confidence interval is below 0.8 (the data
show harm); ``statistic: ci_low, fail_below: 0.8`` fails unless the unfavourable end is above
0.8 (the data show safety). With a small sample, the first passes and the second fails.

**Baseline comparison.** Findings are matched by :attr:`Finding.key` (detector, metric,
group_by, window; findings that share a key are paired by subject, then in order). A matched
finding violates when its estimate moved in the harmful direction by more than
``tolerance``. With ``direction: auto`` the harmful direction comes from the finding's
declared ``direction`` (the detector's ``MetricSpec``: ``higher_is_better``, so lower is
worse; ``lower_is_better``; ``closer_to_zero``, so a larger magnitude is worse), else from its
threshold (``fail_below``/``warn_below``: lower is worse; ``fail_above``/``warn_above``:
higher is worse; both: moving toward the nearer limit is worse), or else from the first rule
that matches the finding; findings with none of these are compared but not gated. Findings that
disappeared are reported (``disappeared``); new findings are counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from audit_sdk.config import load_yaml_document, read_document_text, validate_document
from audit_sdk.errors import ExitCode, PolicyError, ReportReadError, terminal_safe
from audit_sdk.report_model import Finding, Report, read_report
from audit_sdk.thresholds import Statistic, Status, pick_statistic

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "BaselinePolicy",
    "GatePolicy",
    "GateResult",
    "GateRule",
    "Violation",
    "evaluate_gate",
    "gate_report_files",
    "load_policy",
    "parse_policy",
    "render_gate_table",
]

Severity = Literal["fail", "warn"]
_EPSILON = 1e-12


class _PolicyModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GateRule(_PolicyModel):
    """A limit on one statistic of the findings (or per-group rows) that match the patterns."""

    name: str | None = Field(default=None, description="label shown in the gate's output")
    detector: str = Field(default="*", description="fnmatch pattern on Finding.detector")
    metric: str = Field(default="*", description="fnmatch pattern on Finding.metric")
    group_by: str = Field(
        default="*", description="pattern on Finding.group_by (None matches '*' only)"
    )
    window: str = Field(
        default="*", description="pattern on Finding.window (None matches '*' only)"
    )
    group: str | None = Field(
        default=None,
        description="check the rows of finding.groups whose group matches this pattern",
    )
    statistic: Statistic = "estimate"
    fail_below: float | None = Field(default=None, allow_inf_nan=False)
    fail_above: float | None = Field(default=None, allow_inf_nan=False)
    missing: Literal["fail", "pass"] = Field(
        default="fail", description="when nothing matches or the statistic is missing"
    )
    severity: Severity = Field(default="fail", description="warn: print but do not fail the gate")

    @model_validator(mode="after")
    def _limits(self) -> GateRule:
        if self.fail_below is None and self.fail_above is None:
            raise ValueError("a rule needs fail_below, fail_above or both")
        if (
            self.fail_below is not None
            and self.fail_above is not None
            and self.fail_below > self.fail_above
        ):
            raise ValueError(
                f"fail_below ({self.fail_below:g}) is greater than fail_above "
                f"({self.fail_above:g}), so every value would violate"
            )
        return self

    def matches(self, finding: Finding) -> bool:
        return (
            fnmatchcase(finding.detector, self.detector)
            and fnmatchcase(finding.metric, self.metric)
            and _optional_match(finding.group_by, self.group_by)
            and _optional_match(finding.window, self.window)
        )

    def target(self) -> str:
        text = f"{self.detector}/{self.metric}"
        if self.group_by != "*":
            text += f" by {self.group_by}"
        if self.window != "*":
            text += f" window {self.window}"
        if self.group is not None:
            text += f" group {self.group}"
        return text

    def describe(self) -> str:
        conditions = []
        if self.fail_below is not None:
            conditions.append(f"{self.statistic} >= {self.fail_below:g}")
        if self.fail_above is not None:
            conditions.append(f"{self.statistic} <= {self.fail_above:g}")
        text = f"{self.target()}: {' and '.join(conditions)}"
        return f"{self.name}: {text}" if self.name else text


class BaselinePolicy(_PolicyModel):
    """How ``--baseline`` compares the report with an older one."""

    tolerance: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    direction: Literal["auto", "lower_is_worse", "higher_is_worse"] = "auto"
    disappeared: Severity = "warn"


def _default_statuses() -> list[Status]:
    return ["fail", "error"]


def _default_baseline() -> BaselinePolicy:
    return BaselinePolicy()


class GatePolicy(_PolicyModel):
    """A gate policy file. See the module documentation for an annotated example."""

    fail_on_status: list[Status] = Field(default_factory=_default_statuses)
    rules: list[GateRule] = Field(default_factory=list)
    baseline: BaselinePolicy = Field(default_factory=_default_baseline)


def _optional_match(value: str | None, pattern: str) -> bool:
    if value is None:
        return pattern == "*"
    return fnmatchcase(value, pattern)


# -- reading ------------------------------------------------------------------------------------


def parse_policy(data: Any, *, source: str = "<policy>") -> GatePolicy:
    """Validate already-parsed policy data (a mapping); errors are :class:`PolicyError`."""
    return validate_document(
        GatePolicy,
        data,
        source=source,
        error=PolicyError,
        expected="fail_on_status, rules and baseline",
    )


def load_policy(path: str | Path) -> GatePolicy:
    """Read and validate a YAML (or JSON) gate policy file (size and YAML aliases bounded)."""
    path = Path(path)
    text = read_document_text(path, error=PolicyError, what="policy")
    data = load_yaml_document(text, source=str(path), error=PolicyError)
    return parse_policy(data, source=str(path))


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """One check that did not hold."""

    finding: str
    rule: str
    statistic: str | None
    value: float | None
    limit: float | None
    reason: str
    severity: Severity = "fail"
    subject: str | None = None
    group: str | None = None

    @property
    def label(self) -> str:
        text = self.finding
        if self.group is not None:
            text += f" [group {self.group}]"
        if self.subject:
            text += f" ({self.subject})"
        return text


@dataclass
class GateResult:
    violations: list[Violation] = field(default_factory=list)
    warnings: list[Violation] = field(default_factory=list)
    checked: int = 0
    notes: list[str] = field(default_factory=list)
    evaluated: int | None = None  # findings whose status is not skipped (None: not counted)
    allow_empty: bool = False

    @property
    def nothing_checked(self) -> bool:
        """No finding was evaluated: the report has none, or only skipped ones."""
        return self.evaluated == 0

    @property
    def exit_code(self) -> int:
        """1 for a violation; 4 when nothing was checked (unless ``allow_empty``); else 0."""
        if self.violations:
            return int(ExitCode.VIOLATION)
        if self.nothing_checked and not self.allow_empty:
            return int(ExitCode.NOTHING_CHECKED)
        return int(ExitCode.OK)

    @property
    def passed(self) -> bool:
        return self.exit_code == ExitCode.OK

    def add(self, violation: Violation) -> None:
        (self.violations if violation.severity == "fail" else self.warnings).append(violation)

    def to_dict(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "checked": self.checked,
            "evaluated": self.evaluated,
            "violations": [asdict(v) for v in self.violations],
            "warnings": [asdict(v) for v in self.warnings],
            "notes": list(self.notes),
        }


# -- evaluation ---------------------------------------------------------------------------------


def _missing(value: float | None) -> bool:
    return value is None or not math.isfinite(value)


def _shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _check_statuses(report: Report, policy: GatePolicy, result: GateResult) -> None:
    statuses = list(dict.fromkeys(policy.fail_on_status))
    if not statuses:
        return
    rule = "status is one of " + ", ".join(statuses)
    for finding in report.findings:
        result.checked += 1
        if finding.status in statuses:
            result.add(
                Violation(
                    finding=finding.key,
                    rule=rule,
                    statistic="status",
                    value=None,
                    limit=None,
                    reason=f"status {finding.status}: {_shorten(finding.explanation)}",
                    subject=finding.subject,
                )
            )


def _check_rule(report: Report, rule: GateRule, result: GateResult) -> None:
    description = rule.describe()
    matched = [f for f in report.findings if rule.matches(f)]
    passed_missing = 0
    if not matched:
        result.checked += 1
        reason = (
            f"no finding matches detector={rule.detector!r}, metric={rule.metric!r}, "
            f"group_by={rule.group_by!r}, window={rule.window!r}"
        )
        if rule.missing == "fail":
            result.add(
                Violation(
                    finding=rule.target(),
                    rule=description,
                    statistic=rule.statistic,
                    value=None,
                    limit=None,
                    reason=reason,
                    severity=rule.severity,
                )
            )
        else:
            result.notes.append(f"rule {description!r}: {reason} (missing: pass).")
        return
    for finding in matched:
        targets: list[tuple[str | None, float | None]]
        if rule.group is None:
            value = pick_statistic(
                rule.statistic, finding.estimate, finding.ci_low, finding.ci_high
            )
            targets = [(None, value)]
        else:
            targets = [
                (row.group, pick_statistic(rule.statistic, row.estimate, row.ci_low, row.ci_high))
                for row in finding.groups
                if fnmatchcase(row.group, rule.group)
            ]
            if not targets:
                result.checked += 1
                reason = f"the finding has no group matching {rule.group!r}"
                if rule.missing == "fail":
                    result.add(
                        Violation(
                            finding=finding.key,
                            rule=description,
                            statistic=rule.statistic,
                            value=None,
                            limit=None,
                            reason=reason,
                            severity=rule.severity,
                            subject=finding.subject,
                        )
                    )
                else:
                    passed_missing += 1
                continue
        for group, value in targets:
            result.checked += 1
            violation = _rule_violation(rule, description, finding, group, value)
            if violation is None:
                continue
            if violation.value is None and rule.missing == "pass":
                passed_missing += 1
                continue
            result.add(violation)
    if passed_missing:
        result.notes.append(
            f"rule {description!r}: {passed_missing} check(s) had no {rule.statistic} and "
            f"passed (missing: pass)."
        )


def _rule_violation(
    rule: GateRule,
    description: str,
    finding: Finding,
    group: str | None,
    value: float | None,
) -> Violation | None:
    def make(limit: float | None, reason: str, shown: float | None) -> Violation:
        return Violation(
            finding=finding.key,
            rule=description,
            statistic=rule.statistic,
            value=shown,
            limit=limit,
            reason=reason,
            severity=rule.severity,
            subject=finding.subject,
            group=group,
        )

    if value is None or _missing(value):
        why = f"{rule.statistic} is missing"
        if finding.status in {"error", "skipped"}:
            why += f" (the finding's status is {finding.status})"
        return make(rule.fail_below if rule.fail_below is not None else rule.fail_above, why, None)
    if rule.fail_below is not None and value < rule.fail_below:
        return make(rule.fail_below, f"{rule.statistic} {_fmt(value)} < {rule.fail_below:g}", value)
    if rule.fail_above is not None and value > rule.fail_above:
        return make(rule.fail_above, f"{rule.statistic} {_fmt(value)} > {rule.fail_above:g}", value)
    return None


def _pair_findings(
    old: Sequence[Finding], new: Sequence[Finding]
) -> tuple[list[tuple[Finding, Finding]], list[Finding], list[Finding]]:
    """Pairs matched by key (then subject, then order), the old unmatched, the new unmatched."""
    old_by_key: dict[str, list[Finding]] = {}
    for finding in old:
        old_by_key.setdefault(finding.key, []).append(finding)
    new_by_key: dict[str, list[Finding]] = {}
    for finding in new:
        new_by_key.setdefault(finding.key, []).append(finding)
    pairs: list[tuple[Finding, Finding]] = []
    gone: list[Finding] = []
    for key, olds in old_by_key.items():
        news = list(new_by_key.pop(key, []))
        left: list[Finding] = []
        for o in olds:
            same = next((n for n in news if n.subject == o.subject), None)
            if same is not None:
                news.remove(same)
                pairs.append((o, same))
            else:
                left.append(o)
        for o in left:
            if news:
                pairs.append((o, news.pop(0)))
            else:
                gone.append(o)
        if news:
            new_by_key[key] = news
    added = [f for fs in new_by_key.values() for f in fs]
    return pairs, gone, added


def _limits(finding: Finding, rules: Sequence[GateRule]) -> tuple[float | None, float | None]:
    """(lower, upper) limits that say which direction is harmful, or (None, None)."""
    t = finding.threshold
    if t is not None:
        lower = t.fail_below if t.fail_below is not None else t.warn_below
        upper = t.fail_above if t.fail_above is not None else t.warn_above
        if lower is not None or upper is not None:
            return lower, upper
    for rule in rules:
        if rule.group is None and rule.matches(finding):
            return rule.fail_below, rule.fail_above
    return None, None


def _declared_direction(finding: Finding) -> str | None:
    """The harmful direction the detector declared for the finding's metric
    (:class:`~audit_sdk.interfaces.MetricSpec`), or None when it declared none."""
    return {
        "higher_is_better": "lower_is_worse",
        "lower_is_better": "higher_is_worse",
        "closer_to_zero": "farther_from_zero_is_worse",
    }.get(finding.direction or "")


def _harm(
    old: float, new: float, *, direction: str, lower: float | None, upper: float | None
) -> tuple[float, str] | None:
    """How far ``new`` moved in the harmful direction from ``old`` (positive: worse)."""
    if direction == "farther_from_zero_is_worse":
        return abs(new) - abs(old), "farther from 0 is worse"
    if direction == "lower_is_worse":
        return old - new, "lower is worse"
    if direction == "higher_is_worse":
        return new - old, "higher is worse"
    if lower is not None and upper is not None:

        def margin(x: float) -> float:
            return min(x - lower, upper - x)

        return margin(old) - margin(new), "closer to a limit is worse"
    if lower is not None:
        return old - new, "lower is worse"
    if upper is not None:
        return new - old, "higher is worse"
    return None


def _check_baseline(
    report: Report, baseline: Report, policy: GatePolicy, result: GateResult
) -> None:
    settings = policy.baseline
    pairs, gone, added = _pair_findings(baseline.findings, report.findings)
    ungated = 0
    for old, new in pairs:
        result.checked += 1
        if _missing(old.estimate) or _missing(new.estimate):
            if not _missing(old.estimate):
                result.add(
                    Violation(
                        finding=new.key,
                        rule="baseline comparison",
                        statistic="estimate",
                        value=None,
                        limit=old.estimate,
                        reason=(
                            f"the baseline had an estimate ({_fmt(old.estimate)}) but this "
                            f"report has none (status {new.status})"
                        ),
                        severity="warn",
                        subject=new.subject,
                    )
                )
            continue
        assert old.estimate is not None
        assert new.estimate is not None
        lower, upper = _limits(new, policy.rules)
        wanted: str = settings.direction
        if wanted == "auto":
            wanted = _declared_direction(new) or "auto"
        moved = _harm(old.estimate, new.estimate, direction=wanted, lower=lower, upper=upper)
        if moved is None:
            ungated += 1
            continue
        harm, direction = moved
        if harm > settings.tolerance + _EPSILON:
            verb = "rose" if new.estimate > old.estimate else "fell"
            result.add(
                Violation(
                    finding=new.key,
                    rule=f"baseline: harmful change <= {settings.tolerance:g} ({direction})",
                    statistic="estimate",
                    value=new.estimate,
                    limit=old.estimate,
                    reason=(
                        f"estimate {verb} from {_fmt(old.estimate)} to {_fmt(new.estimate)}: "
                        f"{_fmt(harm)} in the harmful direction > tolerance "
                        f"{settings.tolerance:g}"
                    ),
                    subject=new.subject,
                )
            )
    for old in gone:
        result.checked += 1
        result.add(
            Violation(
                finding=old.key,
                rule="baseline: every baseline finding is still reported",
                statistic=None,
                value=None,
                limit=old.estimate,
                reason="in the baseline report but missing from this report",
                severity=settings.disappeared,
                subject=old.subject,
            )
        )
    if ungated:
        result.notes.append(
            f"baseline: {ungated} finding(s) compared but not gated (no threshold or rule "
            f"says which direction is harmful)."
        )
    if added:
        result.notes.append(f"baseline: {len(added)} finding(s) are new in this report.")
    base, this = baseline.provenance, report.provenance
    if base.data_fingerprint != this.data_fingerprint:
        result.notes.append(
            "baseline: the baseline was computed on different data "
            f"({base.data_fingerprint[:12]} vs {this.data_fingerprint[:12]})."
        )


def evaluate_gate(
    report: Report,
    policy: GatePolicy | None = None,
    baseline: Report | None = None,
    *,
    allow_empty: bool = False,
) -> GateResult:
    """Check ``report`` against ``policy`` (default: fail on status fail or error) and,
    given a ``baseline`` report, against regressions beyond the policy's tolerance.

    A report with no finding, or only ``skipped`` ones, checked nothing: its exit code is 4
    ("nothing was checked"), not 0, unless ``allow_empty``."""
    policy = policy or GatePolicy()
    evaluated = sum(1 for f in report.findings if f.status != "skipped")
    result = GateResult(evaluated=evaluated, allow_empty=allow_empty)
    if evaluated == 0:
        result.notes.append(
            f"nothing was checked: the report has {len(report.findings)} finding(s) and none "
            "was evaluated (all skipped, or none at all)."
        )
    _check_statuses(report, policy, result)
    for rule in policy.rules:
        _check_rule(report, rule, result)
    if baseline is not None:
        _check_baseline(report, baseline, policy, result)
    return result


MAX_REPORT_BYTES = 512 * 1024 * 1024


def _check_report_size(path: str | Path | None) -> None:
    """Refuse a report too large to be one, before reading it into memory."""
    if path is None:
        return
    try:
        size = Path(path).stat().st_size
    except OSError:
        return  # read_report names the problem
    if size > MAX_REPORT_BYTES:
        raise ReportReadError(
            f"{path}: {size:,} bytes, over the limit of {MAX_REPORT_BYTES:,} for a report."
        )


def gate_report_files(
    report_path: str | Path,
    *,
    policy_path: str | Path | None = None,
    baseline_path: str | Path | None = None,
    require_manifest: bool = False,
    allow_empty: bool = False,
) -> GateResult:
    """Read the files (errors: :class:`ReportReadError`, :class:`PolicyError`) and gate.

    The report must belong to a published report set: when its folder has a manifest
    (``audit-manifest.json``) the report must match it; without one, it is an error when
    ``require_manifest`` (the command line's default)."""
    from audit_sdk.report_manifest import verify_manifest

    policy = load_policy(policy_path) if policy_path is not None else None
    for path in (report_path, baseline_path):
        _check_report_size(path)
    report = read_report(report_path)
    problem = verify_manifest(report_path)
    if problem is not None and (require_manifest or problem.kind != "missing"):
        raise ReportReadError(problem.message)
    baseline = read_report(baseline_path) if baseline_path is not None else None
    return evaluate_gate(report, policy, baseline, allow_empty=allow_empty)


# -- output -------------------------------------------------------------------------------------


def render_gate_table(result: GateResult, console: Console) -> None:
    """Print what violated and why as a rich table, then a one-line verdict."""
    from rich.table import Table
    from rich.text import Text

    rows = [*result.violations, *result.warnings]
    if rows:
        table = Table(title="audit-sdk gate", show_lines=False, expand=False)
        table.add_column("Severity", no_wrap=True)
        table.add_column("Finding", overflow="fold")
        table.add_column("Check", overflow="fold")
        table.add_column("Value", justify="right", no_wrap=True)
        table.add_column("Limit", justify="right", no_wrap=True)
        table.add_column("Why", overflow="fold")
        for v in rows:
            severity = Text(
                v.severity.upper(), style="bold red" if v.severity == "fail" else "yellow"
            )
            table.add_row(
                severity,
                Text(terminal_safe(v.label)),
                Text(terminal_safe(v.rule)),
                Text("" if v.statistic == "status" else _fmt(v.value)),
                Text("" if v.statistic == "status" else _fmt(v.limit)),
                Text(terminal_safe(v.reason)),
            )
        console.print(table)
    for note in result.notes:
        console.print(Text(terminal_safe(f"note: {note}"), style="dim"))
    counts = (
        f"{len(result.violations)} violation(s), {len(result.warnings)} warning(s), "
        f"{result.checked} check(s)"
    )
    if result.violations:
        console.print(Text.assemble(("GATE FAILED", "bold red"), f": {counts}; exit code 1."))
    elif result.nothing_checked and not result.allow_empty:
        console.print(
            Text.assemble(
                ("NOTHING CHECKED", "bold yellow"),
                f": {counts}; no finding was evaluated, exit code {ExitCode.NOTHING_CHECKED} "
                "(--allow-empty accepts this).",
            )
        )
    else:
        console.print(Text.assemble(("GATE PASSED", "bold green"), f": {counts}."))
