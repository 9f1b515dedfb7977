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

from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING

from audit_sdk._gate_baseline import _check_baseline
from audit_sdk._gate_policy import (
    BaselinePolicy,
    GatePolicy,
    GateRule,
    load_policy,
    parse_policy,
)
from audit_sdk._gate_results import GateResult, Violation, _fmt, _missing, _shorten
from audit_sdk.errors import ExitCode, ReportReadError, terminal_safe
from audit_sdk.report_model import Finding, Report, read_report
from audit_sdk.thresholds import pick_statistic

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

# -- evaluation ---------------------------------------------------------------------------------


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
