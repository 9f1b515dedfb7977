"""Execution settings: bad ones fail before any work with one clear message; the process
backend gives the local report; Ray is never imported unless the backend is ray."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from audit_sdk.config import parse_config
from audit_sdk.errors import ConfigError
from audit_sdk.runner import AuditRunner, run_audit

from .execution_helpers import findings_of, small_audit


@pytest.mark.parametrize(
    ("execution", "message"),
    [
        (
            {"backend": "spark"},
            "execution.backend = \"spark\": Input should be 'local', 'process' or 'ray'",
        ),
        (
            {"backend": "ray", "workers": 0},
            "execution.workers = 0: Input should be greater than or equal to 1",
        ),
        ({"backend": "process", "workers": -2}, "execution.workers = -2"),
        ({"backend": "local", "address": "10.0.0.1:6379"}, "it needs backend: ray"),
        ({"backend": "ray", "address": " "}, "address is empty"),
    ],
)
def test_bad_execution_settings_name_the_field(execution: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match="1 problem") as caught:
        parse_config({"execution": execution})
    assert message in str(caught.value)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_an_unreachable_ray_address_fails_before_any_work(tmp_path: Path, scheme: str) -> None:
    pytest.importorskip("ray")
    address = f"{scheme}127.0.0.1:{closed_port()}"
    config = small_audit(tmp_path, "unreachable", {"backend": "ray", "address": address})
    with pytest.raises(ConfigError, match=f"no Ray cluster answers at {address}"):
        AuditRunner(config, quiet=True)
    assert not (tmp_path / "unreachable").exists()  # nothing was loaded or written
    with pytest.raises(ConfigError, match="is not 'host:port'"):
        AuditRunner(small_audit(tmp_path, "x", {"backend": "ray", "address": "nowhere"}))


def test_ray_is_not_imported_unless_the_backend_is_ray(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from audit_sdk.config import parse_config
        from audit_sdk.runner import run_audit
        config = parse_config({{
            "dataset": {{"loader": "synthetic", "params": {{"n_users": 40, "seed": 1}}}},
            "subject": {{"adapter": "popularity"}},
            "detectors": [{{"name": "group_fairness"}}],
            "stats": {{"bootstrap_resamples": 50}},
            "execution": {{"backend": "process", "workers": 1}},
            "outputs": {{"dir": {str(tmp_path / "out")!r}, "formats": ["json"]}},
        }})
        run_audit(config)
        assert "ray" not in sys.modules, "ray was imported"
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


@pytest.mark.slow
def test_two_worker_processes_give_the_local_report(tmp_path: Path) -> None:
    local = run_audit(small_audit(tmp_path, "local", {"backend": "local"}))
    runner = AuditRunner(
        small_audit(tmp_path, "process", {"backend": "process", "workers": 2}), quiet=True
    )
    result = runner.run()
    assert findings_of(result.report) == findings_of(local.report)
    workers = {pid for (phase, pid) in runner.executor.shards_run if phase == "generate"}
    assert len(workers) == 2


def test_a_dead_worker_process_costs_a_retry_not_the_prompts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Generation alone (no audit): the first worker to write a batch dies mid-shard; the
    pool is replaced, the in-flight shards retried, and every text equals the writer's."""
    from audit_sdk.adapters.template_profile_writer import TemplateProfileWriter

    from audit_sdk.execution_process import ProcessExecutor
    from audit_sdk.interfaces import GenerationParams
    from audit_sdk.profile_prompts import render_profile_prompts
    from audit_sdk.services import GenerationService

    from .execution_helpers import FragileWriter
    from .profile_fixtures import synthetic_samples

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))  # spawned workers
    monkeypatch.setenv("AUDIT_SDK_DRIVER_PID", str(os.getpid()))
    world, samples = synthetic_samples()
    prompts = list(render_profile_prompts(samples["365d"], world.catalog).values())
    marker = tmp_path / "a-worker-died"
    writer = FragileWriter(FragileWriter.Params(marker=str(marker)))
    executor = ProcessExecutor(workers=2, max_retries=2)
    service = GenerationService(batch_size=6, executor=executor, cache_path=tmp_path / "c.db")
    try:
        out = service.generate(writer, prompts, params=GenerationParams())
    finally:
        executor.close()
        service.close()
    assert marker.exists() and executor.workers_lost == 1
    assert [o.error for o in out] == [None] * len(prompts)
    expected = TemplateProfileWriter().generate(prompts, params=GenerationParams())
    assert [o.text for o in out] == expected
