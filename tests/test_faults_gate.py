"""Fault suite, gate and config reading: exit 1 only for a violation; unreadable, unverified
or empty input never passes; data never drives the terminal; YAML is bounded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import IO

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from audit_sdk.cli import app
from audit_sdk.config import MAX_DOCUMENT_NODES, load_config, load_yaml_document
from audit_sdk.errors import ConfigError, PolicyError, terminal_safe
from audit_sdk.gate import load_policy
from audit_sdk.report_model import Finding, Report
from audit_sdk.report_writing import MANIFEST_NAME, write_reports
from reports.json_reporter import JsonReporter
from reports.markdown_reporter import escape_markdown
from tests.fault_helpers import write_config
from tests.report_factories import finding, group, make_report

runner = CliRunner()


def _published(folder: Path, findings: list[Finding], **kwargs: object) -> Path:
    report = make_report(findings, **kwargs)  # type: ignore[arg-type]
    assert write_reports(report, folder, [JsonReporter]).ok
    return folder / "report.json"


def _passing() -> list[Finding]:
    return [finding("group_fairness", "ndcg@10:min_max_ratio", estimate=0.9, status="pass")]


def _gate(*args: str) -> Result:
    return runner.invoke(app, ["gate", *args])


# -- nothing checked -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "findings",
    [
        [],
        [finding("group_fairness", "(all)", estimate=None, status="skipped")],
        [finding("a", "m1", estimate=None, status="skipped") for _ in range(3)],
    ],
    ids=["no findings", "one skipped", "all skipped"],
)
def test_a_report_that_checked_nothing_exits_4(tmp_path: Path, findings: list[Finding]) -> None:
    report = _published(tmp_path, findings)
    result = _gate(str(report))
    assert result.exit_code == 4, result.output
    assert "NOTHING CHECKED" in result.output
    allowed = _gate(str(report), "--allow-empty")
    assert allowed.exit_code == 0, allowed.output


def test_a_violation_is_1_even_when_empty_is_allowed(tmp_path: Path) -> None:
    report = _published(
        tmp_path,
        [
            finding("a", "m", estimate=None, status="skipped"),
            finding("b", "m", estimate=0.1, status="fail"),
        ],
    )
    assert _gate(str(report), "--allow-empty").exit_code == 1


# -- the manifest --------------------------------------------------------------------------------


def test_a_report_changed_after_publication_is_refused(tmp_path: Path) -> None:
    report = _published(tmp_path, [finding("b", "m", estimate=0.1, status="fail")])
    data = json.loads(report.read_text())
    data["findings"][0]["status"] = "pass"
    report.write_text(json.dumps(data))
    result = _gate(str(report))
    assert result.exit_code == 2, result.output
    assert "do not match" in result.output
    # A manifest that is present is checked even with --allow-missing-manifest.
    assert _gate(str(report), "--allow-missing-manifest").exit_code == 2


def test_a_bare_report_needs_the_flag(tmp_path: Path) -> None:
    report = _published(tmp_path, _passing())
    (tmp_path / MANIFEST_NAME).unlink()
    refused = _gate(str(report))
    assert refused.exit_code == 2
    assert "--allow-missing-manifest" in refused.output
    assert _gate(str(report), "--allow-missing-manifest").exit_code == 0


def test_a_report_copied_next_to_another_runs_manifest_is_refused(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    _published(first, _passing(), seed=1)
    _published(second, _passing(), seed=2)
    (second / "report.json").write_bytes((first / "report.json").read_bytes())
    assert _gate(str(second / "report.json")).exit_code == 2


# -- printing never changes the verdict ----------------------------------------------------------


def _gate_process(report: Path, stdout: int | str) -> int:
    handle = open(stdout, "w") if isinstance(stdout, str) else None  # noqa: SIM115
    target: int | IO[str] = handle if handle is not None else int(stdout)
    proc = subprocess.Popen(
        [sys.executable, "-m", "audit_sdk.cli", "gate", str(report)],
        stdout=target,
        stderr=subprocess.PIPE,
    )
    if proc.stdout is not None:
        proc.stdout.close()  # like `| head -0`: the reader is gone
    proc.communicate(timeout=60)
    if handle:
        handle.close()
    return proc.returncode


@pytest.mark.parametrize("where", ["closed pipe", "/dev/full"])
def test_a_closed_or_full_stdout_keeps_the_exit_code(tmp_path: Path, where: str) -> None:
    passing = _published(tmp_path / "pass", _passing())
    failing = _published(tmp_path / "fail", [finding("b", "m", estimate=0.1, status="fail")])
    target: int | str = subprocess.PIPE if where == "closed pipe" else "/dev/full"
    if where == "/dev/full" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    assert _gate_process(passing, target) == 0
    assert _gate_process(failing, target) == 1


def test_markup_in_a_path_is_printed_not_interpreted(tmp_path: Path) -> None:
    result = _gate(f"{tmp_path}/[/bold]/report.json")
    assert result.exit_code == 2
    assert "[/bold]" in result.output
    assert "MarkupError" not in result.output


def test_markup_and_escape_bytes_in_data_reach_stdout_inert(tmp_path: Path) -> None:
    hostile = finding(
        "[/bold]det",
        "m[red]",
        estimate=0.1,
        status="fail",
        explanation="boom \x1b[2J\x1b]0;owned\x07 [/]",
        groups=[group("\x1b[31mred", 0.1)],
    )
    result = _gate(str(_published(tmp_path, [hostile])))
    assert result.exit_code == 1, result.output
    assert "[/bold]det" in result.output
    assert "\x1b" not in result.output
    assert "\\x1b[2J" in result.output


def test_a_failed_run_error_with_markup_is_one_message(tmp_path: Path) -> None:
    config = tmp_path / "[bold]audit.yaml"
    config.write_text("dataset: {loader: '[/red]nope'}\n")
    result = runner.invoke(app, ["run", str(config), "--quiet"])
    assert result.exit_code == 2, result.output
    assert "[/red]nope" in result.output
    assert "Traceback" not in result.output


# -- thresholds and config reading ---------------------------------------------------------------


def test_nan_limits_are_rejected_in_configs_and_policies(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        tmp_path / "out",
        "detectors: [{name: group_fairness, thresholds: {'*:ratio': {fail_below: .nan}}}]\n",
    )
    with pytest.raises(ConfigError, match="fail_below"):
        load_config(config)
    policy = tmp_path / "p.yaml"
    policy.write_text("rules: [{metric: '*', fail_below: .nan}]\n")
    with pytest.raises(PolicyError, match="fail_below"):
        load_policy(policy)


def test_a_threshold_key_that_matches_no_metric_is_reported(tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = write_config(
        tmp_path,
        out,
        "detectors: [{name: group_fairness, thresholds: {'ndgc@10:ratio': {fail_below: 0.8}}}]\n",
    )
    result = runner.invoke(app, ["run", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    notes = json.loads((out / "report.json").read_text())["notes"]
    assert any("'ndgc@10:ratio' matches no metric" in n for n in notes), notes


def test_variables_in_outputs_dir_are_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_FAULT_OUT", str(tmp_path / "expanded"))
    config = write_config(tmp_path, "${AUDIT_FAULT_OUT}/reports")
    assert load_config(config).outputs.dir == tmp_path / "expanded" / "reports"
    monkeypatch.delenv("AUDIT_FAULT_OUT")
    with pytest.raises(ConfigError, match="AUDIT_FAULT_OUT"):
        load_config(config)


def _bomb(width: int, depth: int, *, where: str = "title") -> str:
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    for level in range(1, depth + 1):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    lines.append(f"{where}: *a{depth}")
    return "\n".join(lines) + "\n"


@settings(max_examples=25, deadline=None)
@given(width=st.integers(2, 12), depth=st.integers(1, 12))
def test_yaml_alias_expansion_is_bounded(width: int, depth: int) -> None:
    text = _bomb(width, depth)
    expanded = sum(width**level for level in range(depth + 2))
    if expanded > 2 * MAX_DOCUMENT_NODES:
        with pytest.raises(ConfigError, match="expands to over"):
            load_yaml_document(text, source="bomb.yaml", error=ConfigError)
    elif expanded < MAX_DOCUMENT_NODES // 4:
        assert load_yaml_document(text, source="ok.yaml", error=ConfigError) == yaml.safe_load(text)


@settings(max_examples=40, deadline=None)
@given(
    data=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=6), children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_bounded_yaml_reads_what_yaml_reads(data: object) -> None:
    text = yaml.safe_dump({"value": data, "again": data})  # shared objects: anchors, aliases
    assert load_yaml_document(text, source="x", error=ConfigError) == yaml.safe_load(text)


def test_bombs_in_config_and_policy_fail_fast_from_the_cli(tmp_path: Path) -> None:
    config = tmp_path / "bomb.yaml"
    config.write_text(_bomb(9, 9, where="title"))
    result = runner.invoke(app, ["run", str(config), "--quiet"])
    assert result.exit_code == 2 and "expands to over" in result.output
    report = _published(tmp_path / "r", _passing())
    policy = tmp_path / "policy.yaml"
    policy.write_text(_bomb(9, 9, where="fail_on_status"))
    result = _gate(str(report), "--policy", str(policy))
    assert result.exit_code == 2 and "expands to over" in result.output


def test_recursive_aliases_and_huge_documents_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="refers to itself"):
        load_yaml_document("a: &a [*a]\n", source="r.yaml", error=ConfigError)
    huge = tmp_path / "huge.yaml"
    huge.write_text("title: " + "x" * (11 * 1024 * 1024) + "\n")
    with pytest.raises(ConfigError, match="over the limit"):
        load_config(huge)


# -- injection into summary.md and terminals -----------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_markdown_cells_cannot_mention_link_or_drive_a_terminal(text: str) -> None:
    cell = escape_markdown(text)
    assert "\x1b" not in cell and "\r" not in cell and "\n" not in cell
    assert "://" not in cell
    assert all(cell[i + 1 : i + 8] == "&#8203;" for i, c in enumerate(cell) if c == "@")
    assert "<" not in cell.replace("<br>", "")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_terminal_text_has_no_control_characters(text: str) -> None:
    safe = terminal_safe(text)
    assert not any(ord(c) < 32 and c not in "\n\t" for c in safe)
    assert not any(0x7F <= ord(c) <= 0x9F for c in safe)
    safe.encode("utf-8")  # lone surrogates escaped


def test_group_names_with_mentions_and_urls_are_inert_in_summary_md(tmp_path: Path) -> None:
    from reports.markdown_reporter import render_markdown

    hostile = finding(
        "group_fairness",
        "m",
        estimate=0.1,
        status="fail",
        group_by="@octocat https://evil.example/x www.evil.example",
        explanation="ping @team/security \x1b[31m",
    )
    text = render_markdown(make_report([hostile], title="audit for @everyone"))
    assert "@octocat" not in text and "@team" not in text and "@everyone" not in text
    assert "https://evil" not in text and "www.evil" not in text
    assert "\x1b" not in text


def test_report_roundtrip_sanity() -> None:
    assert Report.model_validate(make_report(_passing()).model_dump(mode="json"))


# -- fuzz: the gate's verdict ------------------------------------------------------------------

_statuses = st.sampled_from(["pass", "warn", "fail", "error", "skipped"])
_estimates = st.none() | st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(_statuses, _estimates), max_size=8),
    fail_below=st.none() | st.floats(-2, 2),
    missing=st.sampled_from(["fail", "pass"]),
    fail_on_status=st.lists(_statuses, max_size=3, unique=True),
    allow_empty=st.booleans(),
)
def test_the_gate_exits_1_exactly_when_something_violates(
    rows: list[tuple[str, float | None]],
    fail_below: float | None,
    missing: str,
    fail_on_status: list[str],
    allow_empty: bool,
) -> None:
    from audit_sdk.gate import evaluate_gate, parse_policy

    findings = [
        finding("d", f"m{i}", estimate=e, status=s)  # type: ignore[arg-type]
        for i, (s, e) in enumerate(rows)
    ]
    data: dict[str, object] = {"fail_on_status": fail_on_status}
    if fail_below is not None:
        data["rules"] = [{"metric": "m*", "fail_below": fail_below, "missing": missing}]
    result = evaluate_gate(make_report(findings), parse_policy(data), allow_empty=allow_empty)
    evaluated = sum(1 for s, _ in rows if s != "skipped")
    if result.violations:
        assert result.exit_code == 1
    elif evaluated == 0 and not allow_empty:
        assert result.exit_code == 4
    else:
        assert result.exit_code == 0
    if any(s in fail_on_status for s, _ in rows):
        assert result.exit_code == 1


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_any_policy_text_is_a_policy_or_one_policy_error(text: str) -> None:
    from audit_sdk.gate import parse_policy

    problem = None
    try:
        parse_policy(load_yaml_document(text, source="p.yaml", error=PolicyError), source="p.yaml")
    except PolicyError as exc:
        problem = str(exc)
    assert problem is None or problem.startswith("p.yaml")
