"""A subject model that hangs cannot hang the audit: fit, recommend and each generation batch
run within subject.timeout_s, and the error names the adapter, the phase and the setting."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

from audit_sdk import GenerationParams, GeneratorAdapter, testing
from audit_sdk.config import parse_config
from audit_sdk.errors import AdapterError
from audit_sdk.runner import AuditRunner


class _Hangs(GeneratorAdapter):
    name = "hangs"
    capabilities = frozenset({"recommend"})

    def recommend(self, user_ids: Sequence[str], *, k: int) -> pd.DataFrame:
        time.sleep(30)
        raise AssertionError("unreachable")  # pragma: no cover


class _SlowWriter(GeneratorAdapter):
    name = "slow_writer"
    capabilities = frozenset({"generate"})

    def generate(self, prompts: Sequence[str], *, params: GenerationParams) -> list[str]:
        time.sleep(30)
        return ["never"] * len(prompts)  # pragma: no cover


def _config(**extra: object) -> dict[str, object]:
    return {
        "dataset": {"params": {"n_users": 80, "n_artists": 40}},
        "baselines": [],
        "detectors": [],
        "outputs": {"formats": ["json"]},
        **extra,
    }


def test_a_hanging_recommend_stops_at_the_time_limit(tmp_path: Path) -> None:
    host = testing.make_host()
    cfg = parse_config(_config(subject={"adapter": "hangs", "timeout_s": 0.5}))
    started = time.monotonic()
    with testing.inline_plugin(host, _Hangs), pytest.raises(AdapterError) as err:
        AuditRunner(cfg, host=host, quiet=True, out_dir=tmp_path).run()
    assert time.monotonic() - started < 25  # not the 30 s the model would take
    assert "'hangs'" in str(err.value) and "recommend" in str(err.value)
    assert "subject.timeout_s" in str(err.value)


def test_a_hanging_generation_batch_becomes_error_rows(tmp_path: Path) -> None:
    host = testing.make_host()
    cfg = parse_config(
        _config(
            subject={"adapter": "item_knn", "timeout_s": 0.5},
            profiles={
                "enabled": True,
                "generators": [{"adapter": "slow_writer"}],
                "max_users": 4,
                "cache": None,
                "batch_size": 4,
            },
        )
    )
    with testing.inline_plugin(host, _SlowWriter):
        result = AuditRunner(cfg, host=host, quiet=True, out_dir=tmp_path).run()
    (finding,) = [f for f in result.report.findings if f.detector == "profile_generation"]
    assert finding.status == "error"
    assert "time limit of 0.5 s" in finding.explanation
