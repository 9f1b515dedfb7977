"""The CI gate: policies, exit codes, evidence of harm vs safety, baselines, bad inputs."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from audit_sdk import gate as gate_module
from audit_sdk.errors import PolicyError, ReportReadError
from audit_sdk.gate import (
    GatePolicy,
    GateResult,
    evaluate_gate,
    gate_report_files,
    load_policy,
    parse_policy,
    render_gate_table,
)
from audit_sdk.report_model import Report
from audit_sdk.thresholds import Threshold

from .report_factories import finding, group, make_report, sample_report


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def ratio_report(estimate: float = 0.85, ci: tuple[float, float] = (0.70, 1.00)) -> Report:
    """One fairness ratio (low is bad, limit 0.8) whose CI straddles the limit."""
    return make_report(
        [
            finding(
                "group_fairness",
                "ndcg@10:min_max_ratio",
                estimate=estimate,
                ci=ci,
                n=120,
                group_by="age_bucket",
                groups=[group("18-24", 0.21, 0.02), group("55+", 0.18, 0.06, n=17)],
                threshold=Threshold(fail_below=0.8),
            ),
            finding("exposure", "coverage@10", estimate=0.3, explanation="informational"),
        ]
    )


# -- default policy and statuses ----------------------------------------------------------------


def test_without_a_policy_fail_and_error_findings_violate() -> None:
    result = evaluate_gate(sample_report())
    assert result.exit_code == 1
    assert sorted(v.reason.split(":")[0] for v in result.violations) == [
        "status error",
        "status fail",
    ]
    assert {v.finding for v in result.violations} == {
        "group_fairness/ndcg@10:min_max_ratio/age_bucket",
        "counterfactual/gender_flip_rate",
    }


def test_a_report_with_only_pass_and_warn_passes_the_default_gate() -> None:
    report = ratio_report()  # 0.85 >= 0.8: pass; the other finding is informational
    assert {f.status for f in report.findings} == {"pass"}
    result = evaluate_gate(report)
    assert result.exit_code == 0
    assert result.checked == 2


def test_strict_and_loose_policies_disagree_on_the_same_report() -> None:
    report = sample_report()  # 1 fail, 1 error, 3 warn
    strict = parse_policy({"fail_on_status": ["fail", "error", "warn"]})
    loose = parse_policy(
        {
            "fail_on_status": [],
            "rules": [
                {"metric": "ndcg@10:min_max_ratio", "statistic": "ci_high", "fail_below": 0.5}
            ],
        }
    )
    strict_result = evaluate_gate(report, strict)
    loose_result = evaluate_gate(report, loose)
    assert strict_result.exit_code == 1
    assert len(strict_result.violations) == 5
    assert loose_result.exit_code == 0
    assert loose_result.violations == []


# -- rules: evidence of harm vs evidence of safety ----------------------------------------------


def test_evidence_of_harm_and_evidence_of_safety_give_different_verdicts() -> None:
    report = ratio_report(estimate=0.85, ci=(0.70, 1.00))
    harm = parse_policy(
        {"rules": [{"metric": "ndcg@10:min_max_ratio", "statistic": "ci_high", "fail_below": 0.8}]}
    )
    safety = parse_policy(
        {"rules": [{"metric": "ndcg@10:min_max_ratio", "statistic": "ci_low", "fail_below": 0.8}]}
    )
    assert evaluate_gate(report, harm).exit_code == 0  # the CI does not show harm
    result = evaluate_gate(report, safety)  # ... nor does it show safety
    assert result.exit_code == 1
    (violation,) = result.violations
    assert violation.statistic == "ci_low"
    assert violation.value == pytest.approx(0.70)
    assert violation.limit == 0.8
    assert violation.reason == "ci_low 0.7 < 0.8"
    # With a tight CI below the limit, both gates see harm.
    clear_harm = ratio_report(estimate=0.6, ci=(0.55, 0.65))
    assert evaluate_gate(clear_harm, harm).exit_code == 1
    assert evaluate_gate(clear_harm, safety).exit_code == 1


def test_fail_above_and_bands() -> None:
    report = ratio_report(estimate=1.3, ci=(1.26, 1.34))
    band = parse_policy(
        {
            "fail_on_status": [],
            "rules": [{"metric": "*_ratio", "fail_below": 0.8, "fail_above": 1.25}],
        }
    )
    result = evaluate_gate(report, band)
    assert [v.reason for v in result.violations] == ["estimate 1.3 > 1.25"]


def test_group_rules_check_rows_of_the_per_group_table() -> None:
    policy = parse_policy(
        {
            "rules": [
                {"metric": "ndcg@10:min_max_ratio", "group": "55*", "statistic": "ci_low",
                 "fail_below": 0.15},
                {"metric": "ndcg@10:min_max_ratio", "group": "18-*", "statistic": "estimate",
                 "fail_below": 0.15},
            ]
        }
    )  # fmt: skip
    result = evaluate_gate(ratio_report(), policy)
    (violation,) = result.violations
    assert violation.group == "55+"
    assert violation.value == pytest.approx(0.12)
    assert "[group 55+]" in violation.label


def test_patterns_match_group_by_and_none_matches_only_the_wildcard() -> None:
    report = ratio_report()
    by_country = parse_policy(
        {"rules": [{"metric": "ndcg@10:min_max_ratio", "group_by": "country", "fail_below": 0.9}]}
    )
    result = evaluate_gate(report, by_country)
    assert result.exit_code == 1
    assert result.violations[0].reason.startswith("no finding matches")
    # coverage@10 has no group_by: "*" matches it, any other pattern does not.
    star = parse_policy({"rules": [{"metric": "coverage@10", "fail_below": 0.5}]})
    assert evaluate_gate(report, star).violations[0].reason == "estimate 0.3 < 0.5"
    named = parse_policy(
        {"rules": [{"metric": "coverage@10", "group_by": "?*", "fail_below": 0.5,
                    "missing": "pass"}]}
    )  # fmt: skip
    named_result = evaluate_gate(report, named)
    assert named_result.exit_code == 0
    assert "no finding matches" in named_result.notes[0]


def test_a_rule_matches_each_generator_by_metric_or_only_one_by_its_label() -> None:
    report = make_report(
        [
            finding("causal_effects", "ate:rating", estimate=-0.3, generator=g, status="pass")
            for g in ("gpt-x", "llama-y")
        ]
    )
    assert [f.key for f in report.findings] == [
        "causal_effects/ate:rating[gpt-x]",
        "causal_effects/ate:rating[llama-y]",
    ]
    every = evaluate_gate(report, parse_policy({"rules": [{"metric": "ate:rating",
                                                           "fail_below": 0.0}]}))  # fmt: skip
    assert len(every.violations) == 2
    one = evaluate_gate(
        report, parse_policy({"rules": [{"metric": "ate:rating[llama-y]", "fail_below": 0.0}]})
    )
    assert [v.finding for v in one.violations] == ["causal_effects/ate:rating[llama-y]"]


def test_missing_statistic_fails_by_default_and_can_be_let_pass() -> None:
    report = make_report(
        [
            finding(
                "exposure",
                "catalog_coverage@10",
                estimate=0.04,
                threshold=Threshold(warn_below=0.05),
            )
        ]
    )
    rule = {"metric": "catalog_coverage@10", "statistic": "ci_low", "fail_below": 0.01}
    result = evaluate_gate(report, parse_policy({"rules": [rule]}))
    assert result.exit_code == 1
    assert result.violations[0].reason == "ci_low is missing"
    assert result.violations[0].value is None
    lenient = evaluate_gate(report, parse_policy({"rules": [{**rule, "missing": "pass"}]}))
    assert lenient.exit_code == 0
    assert "had no ci_low and passed" in lenient.notes[0]


def test_missing_statistic_of_an_errored_finding_says_so() -> None:
    result = evaluate_gate(
        sample_report(),
        parse_policy(
            {"fail_on_status": [], "rules": [{"metric": "gender_flip_rate", "fail_above": 0.1}]}
        ),
    )
    assert result.violations[0].reason == "estimate is missing (the finding's status is error)"


def test_warn_severity_prints_but_does_not_fail() -> None:
    policy = parse_policy(
        {
            "rules": [
                {
                    "metric": "ndcg@10:min_max_ratio",
                    "statistic": "ci_low",
                    "fail_below": 0.8,
                    "severity": "warn",
                }
            ]
        }
    )
    result = evaluate_gate(ratio_report(), policy)
    assert result.exit_code == 0
    assert len(result.warnings) == 1
    assert result.violations == []


# -- baseline -----------------------------------------------------------------------------------


def test_baseline_regression_beyond_tolerance_fails_and_within_passes() -> None:
    old = ratio_report(estimate=0.95, ci=(0.90, 1.00))
    slightly_worse = ratio_report(estimate=0.94, ci=(0.89, 0.99))
    much_worse = ratio_report(estimate=0.90, ci=(0.85, 0.95))
    better = ratio_report(estimate=1.10, ci=(1.0, 1.2))
    policy = parse_policy({"baseline": {"tolerance": 0.02}})
    assert evaluate_gate(slightly_worse, policy, baseline=old).exit_code == 0
    assert evaluate_gate(better, policy, baseline=old).exit_code == 0
    result = evaluate_gate(much_worse, policy, baseline=old)
    assert result.exit_code == 1
    (violation,) = result.violations
    assert violation.finding == "group_fairness/ndcg@10:min_max_ratio/age_bucket"
    assert violation.limit == 0.95
    assert violation.value == 0.90
    assert "fell from 0.95 to 0.9" in violation.reason
    # Without a policy the default tolerance is 0: any harmful move fails.
    assert evaluate_gate(slightly_worse, None, baseline=old).exit_code == 1
    # The coverage finding has no threshold and no rule: compared, not gated.
    assert any("compared but not gated" in note for note in result.notes)


def test_baseline_direction_follows_fail_above_thresholds_and_explicit_settings() -> None:
    def arp(value: float) -> Report:
        return make_report(
            [finding("popularity_bias", "arp", estimate=value, threshold=Threshold(fail_above=0.5))]
        )

    policy = parse_policy({"baseline": {"tolerance": 0.01}})
    assert evaluate_gate(arp(0.30), policy, baseline=arp(0.20)).exit_code == 1  # rose: worse
    assert evaluate_gate(arp(0.10), policy, baseline=arp(0.20)).exit_code == 0
    flipped = parse_policy({"baseline": {"tolerance": 0.01, "direction": "lower_is_worse"}})
    assert evaluate_gate(arp(0.10), flipped, baseline=arp(0.20)).exit_code == 1


def test_baseline_uses_a_rule_direction_for_findings_without_thresholds() -> None:
    def coverage(value: float) -> Report:
        return make_report([finding("exposure", "coverage@10", estimate=value)])

    policy = parse_policy(
        {
            "fail_on_status": [],
            "rules": [{"metric": "coverage@10", "fail_below": 0.1}],
            "baseline": {"tolerance": 0.05},
        }
    )
    result = evaluate_gate(coverage(0.2), policy, baseline=coverage(0.4))
    assert result.exit_code == 1
    assert "lower is worse" in result.violations[0].rule


def test_two_sided_threshold_moving_toward_a_limit_is_harmful() -> None:
    def ratio(value: float) -> Report:
        threshold = Threshold(fail_below=0.8, fail_above=1.25)
        return make_report([finding("g", "exposure:ratio", estimate=value, threshold=threshold)])

    policy = parse_policy({"baseline": {"tolerance": 0.02}})
    assert evaluate_gate(ratio(1.0), policy, baseline=ratio(1.15)).exit_code == 0  # to the middle
    assert evaluate_gate(ratio(1.2), policy, baseline=ratio(1.1)).exit_code == 1  # toward 1.25
    assert evaluate_gate(ratio(0.85), policy, baseline=ratio(0.95)).exit_code == 1  # toward 0.8


def test_disappeared_findings_are_reported_and_can_fail() -> None:
    old = ratio_report()
    new = make_report([old.findings[0]])
    warned = evaluate_gate(new, None, baseline=old)
    assert warned.exit_code == 0
    assert [w.finding for w in warned.warnings] == ["exposure/coverage@10"]
    assert "missing from this report" in warned.warnings[0].reason
    strict = parse_policy({"baseline": {"disappeared": "fail"}})
    assert evaluate_gate(new, strict, baseline=old).exit_code == 1
    grown = evaluate_gate(old, None, baseline=new)
    assert "1 finding(s) are new" in " ".join(grown.notes)


def test_findings_sharing_a_key_pair_by_subject() -> None:
    def two_subjects(subject_value: float, baseline_value: float, name: str) -> Report:
        return make_report(
            [
                finding("g", "ndcg", estimate=baseline_value, subject="popularity",
                        threshold=Threshold(fail_below=0.1)),
                finding("g", "ndcg", estimate=subject_value, subject=name,
                        threshold=Threshold(fail_below=0.1)),
            ]
        )  # fmt: skip

    old = two_subjects(0.30, 0.20, "tinyrec-v2")
    new = two_subjects(0.30, 0.10, "tinyrec-v3")  # the popularity baseline got worse
    result = evaluate_gate(new, None, baseline=old)
    (violation,) = result.violations
    assert violation.subject == "popularity"
    assert violation.label == "g/ndcg (popularity)"


# -- reading policies and reports: exit code 2 ---------------------------------------------------


def test_the_documented_example_policy_is_valid() -> None:
    doc = gate_module.__doc__ or ""
    block = doc.split("Every key is optional::", 1)[1].split("**Evidence", 1)[0]
    yaml_text = "\n".join(line[4:] for line in block.splitlines())
    policy = parse_policy(__import__("yaml").safe_load(yaml_text), source="module docstring")
    assert policy.rules[0].statistic == "ci_high"
    assert policy.baseline.tolerance == 0.02


def test_load_policy_reads_yaml(tmp_path: Path) -> None:
    path = write(
        tmp_path / "gate.yaml",
        "fail_on_status: [fail]\nrules:\n  - metric: 'ndcg@10:*'\n    fail_below: 0.8\n",
    )
    policy = load_policy(path)
    assert policy.fail_on_status == ["fail"]
    assert policy.rules[0].metric == "ndcg@10:*"
    assert load_policy(write(tmp_path / "empty.yaml", "")) == GatePolicy()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  - metric: x\n    fail_blow: 0.8\n", r"rules\.0\.fail_blow: unknown field\. Did you mean 'fail_below'\?"),
        ("rules:\n  - metric: x\n    statistic: median\n    fail_below: 1\n", r"rules\.0\.statistic = \"median\": Input should be 'estimate', 'ci_low' or 'ci_high'"),
        ("rules:\n  - metric: x\n", r"rules\.0.*a rule needs fail_below, fail_above or both"),
        ("rules:\n  - {fail_below: 2, fail_above: 1}\n", r"fail_below \(2\) is greater than fail_above \(1\)"),
        ("fail_on_status: [fail, broken]\n", r"fail_on_status\.1 = \"broken\""),
        ("baseline:\n  tolerance: -1\n", r"baseline\.tolerance = -1"),
        ("fail_on_staus: []\n", r"fail_on_staus: unknown field\. Did you mean 'fail_on_status'\?"),
        ("rules: [\n", r"not valid YAML \(line \d+, column \d+\)"),
        ("- just\n- a list\n", r"the top level must be a mapping"),
    ],
)  # fmt: skip
def test_invalid_policies_are_policy_errors_naming_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path / "policy.yaml", text)
    with pytest.raises(PolicyError, match=message) as caught:
        load_policy(path)
    assert str(path) in str(caught.value)
    assert caught.value.exit_code == 2


def test_unreadable_policy_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no such policy file"):
        load_policy(tmp_path / "missing.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("rules: []  # caf\xe9".encode("latin-1"))
    with pytest.raises(PolicyError, match=r"not UTF-8 text \(byte 16\)"):
        load_policy(bad)


@pytest.fixture
def report_file(tmp_path: Path) -> Path:
    return write(tmp_path / "report.json", sample_report().to_json())


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda text: text[: len(text) // 2], r"not valid JSON \(line \d+, column \d+"),
        (lambda text: text.replace('"seed": 7', '"seed": "\udcff"'), r"not UTF-8 text at byte \d+"),
        (lambda text: '{"findings": "many"}', r"not a valid audit-sdk report: field provenance"),
        (lambda text: "[1, 2, 3]", r"not a valid audit-sdk report"),
        (lambda text: text.replace('"status": "fail"', '"status": "meh"', 1), r"field findings\.0\.status"),
    ],
)  # fmt: skip
def test_corrupted_reports_are_read_errors(
    report_file: Path, corrupt: object, message: str
) -> None:
    text = report_file.read_text(encoding="utf-8")
    broken = corrupt(text)  # type: ignore[operator]
    report_file.write_bytes(broken.encode("utf-8", errors="surrogateescape"))
    with pytest.raises(ReportReadError, match=message) as caught:
        gate_report_files(report_file)
    assert str(report_file) in str(caught.value)
    assert caught.value.exit_code == 2


def test_gate_report_files_end_to_end(report_file: Path, tmp_path: Path) -> None:
    assert gate_report_files(report_file).exit_code == 1
    loose = write(tmp_path / "loose.yaml", "fail_on_status: []\n")
    assert gate_report_files(report_file, policy_path=loose).exit_code == 0
    with pytest.raises(ReportReadError, match=r"missing\.json"):
        gate_report_files(report_file, baseline_path=tmp_path / "missing.json")
    same = gate_report_files(report_file, policy_path=loose, baseline_path=report_file)
    assert same.exit_code == 0  # a report never regresses against itself


# -- output -------------------------------------------------------------------------------------


def _render(result: GateResult) -> str:
    buffer = io.StringIO()
    render_gate_table(result, Console(file=buffer, width=160, color_system=None))
    return buffer.getvalue()


def test_render_gate_table_lists_violations_and_a_verdict() -> None:
    policy = parse_policy(
        {"rules": [{"metric": "ndcg@10:min_max_ratio", "statistic": "ci_low", "fail_below": 0.8}]}
    )
    failed = _render(evaluate_gate(ratio_report(), policy))
    assert "group_fairness/ndcg@10:min_max_ratio/age_bucket" in failed
    assert "ci_low 0.7 < 0.8" in failed
    assert re.search(r"GATE FAILED: 1 violation\(s\), 0 warning\(s\), \d+ check\(s\)", failed)
    passed = _render(evaluate_gate(ratio_report()))
    assert passed.strip().startswith("GATE PASSED")


def test_render_gate_table_prints_user_text_literally() -> None:
    report = make_report(
        [finding("d", "[bold red]m[/]", estimate=None, status="error", explanation="[link]x")]
    )
    out = _render(evaluate_gate(report))
    assert "[bold red]m[/]" in out
    assert "[link]x" in out


def test_result_to_dict_is_plain_data() -> None:
    data = evaluate_gate(sample_report()).to_dict()
    assert data["exit_code"] == 1
    assert {v["finding"] for v in data["violations"]} == {
        "group_fairness/ndcg@10:min_max_ratio/age_bucket",
        "counterfactual/gender_flip_rate",
    }
