"""The profile_optimizer mitigator inside an audit: a tiny TinyRec's profile writer is
explored, scored, paired, DPO-tuned and re-audited; a margin no pair reaches, and a writer
that is not a trainable causal LM, each end in a skipped finding while the rest of the audit
stands. One audit runs all three (the small version of the demo-sized run in CI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit_sdk.config import parse_config
from audit_sdk.runner import run_audit

from .tinyrec_fixtures import train_tiny_tinyrec

pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # one small audit with three mitigations: ~15 s of CPU

WORLD = {"seed": 3, "n_users": 120, "n_artists": 30, "mean_tracks_per_artist": 4.0}
SMALL = {"max_users": 16, "n_profiles": 3, "negatives": 20, "epochs": 1, "batch_size": 4}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("profile_optimizer")
    model = train_tiny_tinyrec(root / "tinyrec", holdout=False).model_dir
    encoder = {
        "adapter": "callable",
        "params": {"target": "tests.preference_fixtures:embed", "capabilities": ["embed"]},
    }
    config = parse_config(
        {
            "seed": 0,
            "dataset": {"loader": "synthetic", "params": {**WORLD, "mean_events_per_user": 50.0}},
            "subject": {
                "name": "tinyrec",
                "adapter": "tinyrec",
                "params": {"model_dir": str(model)},
            },
            "sampling": {"windows": [365], "top_artists": 3, "tracks_per_artist": 2},
            "profiles": {
                "enabled": True,
                "max_users": 20,
                "max_new_tokens": 40,
                "reference_writer": None,
                "cache": str(root / "gen.sqlite"),
            },
            "models": {"encoder": encoder, "template": {"adapter": "template_writer"}},
            "baselines": [],
            "detectors": [{"name": "downstream_utility"}, {"name": "profile_fidelity"}],
            "mitigators": [
                {
                    "name": "profile_optimizer",
                    "params": {**SMALL, "min_margin": 0.05, "out_dir": str(root / "tuned")},
                },
                {"name": "profile_optimizer", "params": {**SMALL, "min_margin": 1.5}},
                {"name": "profile_optimizer", "params": {**SMALL, "writer_role": "template"}},
            ],
            "outputs": {"dir": str(root / "report"), "formats": ["json"]},
        },
        source="test_profile_optimizer",
    )
    run_audit(config)
    return dict(json.loads((root / "report" / "report.json").read_text()))


def _mitigated(report: dict) -> list[dict]:
    return [f for f in report["findings"] if (f.get("mitigation") or {}).get("mitigator")]


def test_the_tuned_writer_is_a_new_model_and_the_audit_reruns(report: dict) -> None:
    after = _mitigated(report)
    assert {f["detector"] for f in after} >= {"downstream_utility", "profile_fidelity"}
    assert all(f["subject"] == "tinyrec+profile_optimizer" for f in after)
    record = after[0]["mitigation"]
    assert record["changed"] == ["profile_writer"]
    details = record["details"]
    assert details["tuned_fingerprint"] != details["writer_fingerprint"]
    exploration = details["exploration"]
    assert exploration["profiles"] > 16 and exploration["pairs"] >= 1
    assert exploration["temperature"] == 0.8  # the audit's profile temperature by default
    assert (exploration["targets"], exploration["recent"]) == (5, 0)
    assert details["training"]["steps"] >= 1
    lines = Path(details["pairs_path"]).read_text().splitlines()
    assert len(lines) == exploration["pairs"]
    assert {"prompt", "chosen", "rejected"} <= set(json.loads(lines[0]))
    paired = details["before_after"]["metrics"]["downstream:ndcg@10"]
    assert paired["n"] > 0 and paired["low"] <= paired["difference"] <= paired["high"]
    attributes = {g["attribute"] for g in paired["groups"]}
    assert {"country", "activity"} <= attributes
    assert not attributes & {"age", "n_train_events"}  # raw columns are not groups
    (table,) = record["tables"]  # the report's mitigation section shows the paired table
    assert len(table["rows"]) == len(details["before_after"]["table"])
    assert {"metric", "difference", "low", "high"} <= set(table["columns"])
    before = [f for f in report["findings"] if not f.get("mitigation")]
    assert any(f["metric"] == "downstream:ndcg@10" and f["status"] != "error" for f in before)


def test_no_pair_above_the_margin_and_an_untrainable_writer_are_skipped(report: dict) -> None:
    skipped = [
        f
        for f in report["findings"]
        if f["detector"] == "profile_optimizer" and f["status"] == "skipped"
    ]
    reasons = " | ".join(f["explanation"] for f in skipped)
    assert len(skipped) == 2, reasons
    assert "differs by at least 1.5" in reasons
    assert "not a local Hugging Face causal LM" in reasons
    assert not [f for f in report["findings"] if f["status"] == "error"]
