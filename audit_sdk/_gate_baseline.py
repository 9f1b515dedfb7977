"""The gate's ``--baseline`` comparison: pair the findings of an older report with this
report's, decide which direction is harmful, and record the regressions beyond tolerance.
"""

from __future__ import annotations

from collections.abc import Sequence

from audit_sdk._gate_policy import GatePolicy, GateRule
from audit_sdk._gate_results import GateResult, Violation, _fmt, _missing
from audit_sdk.report_model import Finding, Report

_EPSILON = 1e-12


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
