"""execution.max_memory: chunked stages follow it, and an audit asked to run with less than its
smallest chunk needs stops at once, saying how much it needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit_sdk.config import parse_config
from audit_sdk.errors import ConfigError
from audit_sdk.runner import AuditRunner


def _config(max_memory: str) -> dict[str, object]:
    return {
        "dataset": {"params": {"n_users": 300, "n_artists": 60}},
        "baselines": ["popularity"],
        "detectors": [{"name": "group_fairness"}],
        "outputs": {"formats": ["json"]},
        "execution": {"max_memory": max_memory},
    }


def test_too_little_memory_stops_before_any_model_runs(tmp_path: Path) -> None:
    runner = AuditRunner(parse_config(_config("1KB")), quiet=True, out_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"execution\.max_memory to at least"):
        runner.run()
    assert not (tmp_path / "report.json").exists()


def test_a_bad_size_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="max_memory"):
        AuditRunner(parse_config(_config("lots")), quiet=True)


def test_an_audit_within_its_memory_runs(tmp_path: Path) -> None:
    result = AuditRunner(parse_config(_config("512MB")), quiet=True, out_dir=tmp_path).run()
    assert result.written.ok
    assert any(f.detector == "group_fairness" for f in result.report.findings)
