"""A config with only a log (no interactions) audits end to end through the runner: no split,
no baselines, no listening-derived groups, and notes that say so."""

from __future__ import annotations

import shutil
from pathlib import Path

from audit_sdk.config import load_config
from audit_sdk.runner import AuditRunner

from .onboarding_worlds import write_profile_log

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_logged_profiles_example_runs_through_the_runner(tmp_path: Path) -> None:
    write_profile_log(tmp_path)
    config_path = tmp_path / "audit.yaml"
    shutil.copy(EXAMPLES / "logged_profiles.yaml", config_path)
    result = AuditRunner(
        load_config(config_path), config_path=config_path, quiet=True, out_dir=tmp_path / "out"
    ).run()
    report = result.report
    assert result.written.ok
    metrics = {f.label for f in report.findings if f.detector == "causal_effects"}
    assert metrics == {"ate:rating[gpt-x]", "ate:rating[llama-y]", "ate:rating:difference"}
    assert any(f.detector == "profile_fidelity" for f in report.findings)
    assert not any(f.status == "error" for f in report.findings)
    assert any("no held-out split" in n for n in report.notes)
    assert any("users table: 400 of 400" in n for n in report.notes)
    context = result.context
    assert context is not None and len(context.users) == 400
    assert context.baseline_runs == {}
