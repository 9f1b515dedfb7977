"""End to end through the command line: demo, run on real data, gate, escaping."""

from __future__ import annotations

import json
import socket
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from audit_sdk.cli import app

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo, run with every connection off this machine refused: it must need none."""
    out = tmp_path_factory.mktemp("demo")
    attempts: list[object] = []
    real_connect = socket.socket.connect

    def loopback_only(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else str(address)
        if isinstance(host, str) and not (host.startswith("127.") or host in {"::1", "localhost"}):
            attempts.append(address)
            raise OSError(f"network access attempted: {address}")
        real_connect(self, address)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", loopback_only)
        result = runner.invoke(app, ["demo", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert attempts == []
    return out


def _report_schema() -> dict[str, object]:
    result = runner.invoke(app, ["schema", "report"])
    assert result.exit_code == 0
    return json.loads(result.stdout)


def test_demo_writes_the_four_reports(demo_dir: Path) -> None:
    for name in ("report.json", "report.html", "junit.xml", "summary.md"):
        assert (demo_dir / name).stat().st_size > 0, name
    report = json.loads((demo_dir / "report.json").read_text())
    jsonschema.validate(report, _report_schema())
    detectors = {f["detector"] for f in report["findings"]}
    assert {"group_fairness", "popularity_bias", "baseline_comparison"} <= detectors
    # Every finding with an estimate carries its uncertainty and its n.
    for finding in report["findings"]:
        if finding["estimate"] is not None:
            assert finding["ci_low"] is not None and finding["ci_high"] is not None, finding
            assert finding["n"], finding
    # The demo world plants a penalty on users aged 55+; the audit must find it.
    ages = [
        f
        for f in report["findings"]
        if f["detector"] == "group_fairness"
        and f["group_by"] == "age_bucket"
        and f["generator"] is None  # recommendations, not the profiles' downstream utility
    ]
    assert {f["metric"] for f in ages} == {"ndcg@10:min_max_ratio", "recall@10:min_max_ratio"}
    for age in ages:
        assert age["status"] in {"warn", "fail"}, age["explanation"]
        assert age["details"]["lowest_group"] == "55+"
    # The subject is TinyRec, trained for the demo; it recommends and writes profiles.
    subject = report["provenance"]["subject"]
    assert subject["adapter"] == "tinyrec"
    assert subject["description"]["architecture"] == "GPT2LMHeadModel"
    models = {
        g["group"]
        for f in report["findings"]
        if f["detector"] == "profile_fidelity" and f["group_by"] == "model"
        for g in f["groups"]
    }
    assert models == {"tinyrec", "template_writer"}
    assert report["provenance"]["subject"]["fingerprint"]
    assert len(report["provenance"]["config_sha256"]) == 64
    # Feature-ablation attribution of TinyRec's prompts, with its interval and n.
    (share,) = [
        f
        for f in report["findings"]
        if f["metric"] == "attribution:auxiliary_share" and f["subject"] == "tinyrec"
    ]
    assert share["status"] != "error" and 0.0 <= share["ci_low"] <= share["ci_high"] <= 1.0
    # Sampling expansion re-audits the subject; the HTML report sets before beside after.
    mitigated = [f for f in report["findings"] if f["mitigation"] is not None]
    assert {f["mitigation"]["mitigator"] for f in mitigated} == {"sampling_expansion"}
    assert {f["subject"] for f in mitigated} == {"tinyrec+sampling_expansion"}
    # Downstream utility of the profiles per GS quintile (the generalist gap, issue 10).
    by_gs = [
        f
        for f in report["findings"]
        if f["detector"] == "group_fairness" and f["group_by"] == "gs_quintile"
    ]
    assert {f["generator"] for f in by_gs} == {"tinyrec", "template_writer"}
    assert all(f["ci_low"] is not None for f in by_gs)
    html = (demo_dir / "report.html").read_text()
    assert "Mitigation: sampling_expansion" in html and "Feature-ablation" in html


def _write_policy(tmp_path: Path, name: str, policy: dict[str, object]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(policy))
    return path


def test_gate_strict_fails_and_loose_passes(demo_dir: Path, tmp_path: Path) -> None:
    report = str(demo_dir / "report.json")
    strict = _write_policy(
        tmp_path,
        "strict.yaml",
        {
            "fail_on_status": ["fail", "error", "warn"],
            "rules": [
                {
                    "detector": "group_fairness",
                    "metric": "*:min_max_ratio",
                    "statistic": "ci_low",
                    "fail_below": 0.8,
                }
            ],
        },
    )
    loose = _write_policy(
        tmp_path,
        "loose.yaml",
        {
            "fail_on_status": ["error"],
            "rules": [
                {
                    "detector": "group_fairness",
                    "metric": "ndcg@10:min_max_ratio",
                    "group_by": "age_bucket",
                    "statistic": "ci_high",
                    "fail_below": 0.2,
                }
            ],
        },
    )
    failed = runner.invoke(app, ["gate", report, "--policy", str(strict)])
    assert failed.exit_code == 1, failed.output
    assert "age_bucket" in failed.output
    passed = runner.invoke(app, ["gate", report, "--policy", str(loose)])
    assert passed.exit_code == 0, passed.output
    default = runner.invoke(app, ["gate", report])
    assert default.exit_code == 1  # the demo report has fail findings


def test_gate_exits_2_on_a_corrupted_report(demo_dir: Path, tmp_path: Path) -> None:
    text = (demo_dir / "report.json").read_text()
    truncated = tmp_path / "truncated.json"
    truncated.write_text(text[: len(text) // 2])
    result = runner.invoke(app, ["gate", str(truncated)])
    assert result.exit_code == 2
    assert "not valid JSON" in result.output
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"schema_version": "1.0", "findings": []}))
    result = runner.invoke(app, ["gate", str(wrong)])
    assert result.exit_code == 2
    assert "provenance" in result.output
    missing = runner.invoke(app, ["gate", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2


def test_gate_fails_on_regression_against_a_baseline(demo_dir: Path, tmp_path: Path) -> None:
    report = json.loads((demo_dir / "report.json").read_text())
    better = json.loads(json.dumps(report))
    for finding in better["findings"]:
        if finding["metric"] == "ndcg@10:min_max_ratio" and finding["group_by"] == "age_bucket":
            finding["estimate"] = min(1.0, finding["estimate"] + 0.2)
            finding["status"] = "pass"
    old = tmp_path / "old.json"
    old.write_text(json.dumps(better))
    policy = _write_policy(
        tmp_path, "p.yaml", {"fail_on_status": [], "baseline": {"tolerance": 0.05}}
    )
    result = runner.invoke(
        app,
        ["gate", str(demo_dir / "report.json"), "--policy", str(policy), "--baseline", str(old)],
    )
    assert result.exit_code == 1, result.output
    same = runner.invoke(
        app,
        [
            "gate",
            str(demo_dir / "report.json"),
            "--policy",
            str(policy),
            "--baseline",
            str(demo_dir / "report.json"),
        ],
    )
    assert same.exit_code == 0, same.output


class _Sections(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in {"src", "href"} and value and value.startswith(("http:", "https:", "//")):
                raise AssertionError(f"the report fetches {value}")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.mark.real_data
def test_run_on_hetrec_writes_a_readable_report(
    hetrec_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_SDK_DATA", str(hetrec_dir.parent))
    out = tmp_path / "hetrec"
    result = runner.invoke(
        app, ["run", str(REPO / "examples" / "hetrec_lastfm.yaml"), "--out", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["provenance"]["dataset"] == "hetrec_lastfm_2k"
    # The tag-derived genre forest plot of the causal detector.
    (genre,) = [
        f
        for f in report["findings"]
        if f["detector"] == "causal_effects" and f["group_by"] == "genre"
    ]
    assert genre["chart"] == "forest"
    assert len([g for g in genre["groups"] if g["estimate"] is not None]) >= 10
    assert {"rock", "pop", "indie"} <= {g["group"] for g in genre["groups"]}
    # The template writer's profiles: downstream utility per GS quintile, with its CI.
    (by_gs,) = [
        f
        for f in report["findings"]
        if f["metric"] == "downstream_ndcg@10:min_max_ratio" and f["group_by"] == "gs_quintile"
    ]
    assert by_gs["status"] in {"pass", "warn", "fail"} and by_gs["ci_low"] is not None
    assert {g["group"] for g in by_gs["groups"]} >= {"Q1 (generalists)", "Q5 (specialists)"}
    html = (out / "report.html").read_text()
    parser = _Sections()
    parser.feed(html)
    text = " ".join(parser.text)
    assert "<script" not in html
    assert parser.tags.count("svg") >= 10
    for heading in (
        "Summary",
        "baseline_comparison",
        "group_fairness",
        "popularity_bias",
        "causal_effects",
        "Provenance",
    ):
        assert heading in text
    # The real data's user attribute (number of friends) is audited, in readable bins.
    assert "n_friends" in text
    assert "Q1: 1–3" in text


def test_artist_names_from_the_data_are_escaped_in_html(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    items = [f"t{i}" for i in range(40)]
    catalog = pd.DataFrame(
        {
            "item_id": items,
            "title": [evil if i == 0 else f"Track {i}" for i in range(40)],
            "artist": [evil if i < 2 else f"Artist {i}" for i in range(40)],
            "genres": ["rock|pop" if i % 2 else "jazz" for i in range(40)],
        }
    )
    rows = []
    for u in range(120):
        for j in range(12):
            # item t0 (by the evil artist) is the most popular but unseen by half the users.
            item = items[(u * 7 + j * 3) % 40] if not (j == 0 and u % 2) else "t0"
            rows.append({"user": f"u{u}", "item": item, "count": 1 + (u + j) % 3})
    interactions = pd.DataFrame(rows).drop_duplicates(["user", "item"])
    catalog.to_csv(tmp_path / "catalog.csv", index=False)
    interactions.to_csv(tmp_path / "plays.csv", index=False)
    config = tmp_path / "audit.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "dataset": {
                    "loader": "tabular",
                    "params": {
                        "interactions": "plays.csv",
                        "catalog": "catalog.csv",
                        "columns": {"user_id": "user", "item_id": "item", "plays": "count"},
                    },
                },
                "split": {"test_items": 2, "min_train_items": 3},
                "subject": {"adapter": "popularity"},
                "groups": {"derived": ["activity"], "min_group_size": 10},
                "stats": {"bootstrap_resamples": 100},
            }
        )
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(config), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    (gini,) = [f for f in report["findings"] if f["metric"] == "gini_exposure"]
    assert any(item["artist"] == evil for item in gini["details"]["most_exposed_items"])
    html = (out / "report.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert evil not in html
    assert evil not in (out / "summary.md").read_text()


def test_a_plugin_that_raises_becomes_an_error_finding(tmp_path: Path) -> None:
    from audit_sdk import hookimpl
    from audit_sdk.config import parse_config
    from audit_sdk.interfaces import Detector
    from audit_sdk.plugin_host import PluginHost, PluginSettings
    from audit_sdk.runner import AuditRunner

    class Exploding(Detector):
        name = "exploding"

        def detect(self, context: object) -> list[object]:
            raise ValueError("boom from a plugin")

    class Plugin:
        @hookimpl
        def audit_sdk_register_detectors(self, register: object) -> None:
            register(Exploding)  # type: ignore[operator]

    host = PluginHost(PluginSettings())
    host.load_entry_points()
    host.register_plugin(Plugin(), name="exploding-plugin")
    cfg = parse_config(
        {
            "dataset": {"params": {"n_users": 300, "n_artists": 60}},
            "detectors": [{"name": "exploding"}, {"name": "group_fairness"}],
            "baselines": ["popularity"],
            "stats": {"bootstrap_resamples": 100},
            "outputs": {"formats": ["json", "junit"]},
        }
    )
    result = AuditRunner(cfg, host=host, quiet=True, out_dir=tmp_path).run()
    by_detector: dict[str, list[str]] = {}
    for f in result.report.findings:
        by_detector.setdefault(f.detector, []).append(f.status)
    assert by_detector["exploding"] == ["error"]
    assert by_detector["group_fairness"] and "error" not in by_detector["group_fairness"]
    (error,) = [f for f in result.report.findings if f.detector == "exploding"]
    assert "ValueError: boom from a plugin" in error.explanation
    assert "Traceback" in error.details["traceback"]
    assert "<error" in (tmp_path / "junit.xml").read_text()


@pytest.mark.parametrize("marker", ["<!-- setup-and-demo-command -->", "<!-- test-command -->"])
def test_ci_script_runs_the_readme_commands(marker: str) -> None:
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert marker in readme
    block = readme.split(marker, 1)[1].split("```")[1]
    commands = [line.strip() for line in block.splitlines()[1:] if line.strip()]
    assert commands
    for command in commands:
        assert command in ci.splitlines(), command


def test_examples_are_valid_configs() -> None:
    from audit_sdk.config import load_config

    for path in sorted((REPO / "examples").glob("*.yaml")):
        load_config(path)


def test_atomic_writes_leave_no_temporary_files(demo_dir: Path) -> None:
    assert sorted(p.name for p in demo_dir.iterdir()) == sorted(
        ["report.json", "report.html", "junit.xml", "summary.md", "audit-manifest.json"]
    )
