"""Fault suite, outputs: the run exits 0 only when one complete, verified report set was
published; every other outcome is exit 3 and leaves nothing a gate would accept."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from audit_sdk.cli import app
from audit_sdk.gate import gate_report_files
from audit_sdk.interfaces import Detector, Reporter
from audit_sdk.plugin_host import PluginSettings, get_plugin_host
from audit_sdk.report_model import Finding, Report
from audit_sdk.report_writing import MANIFEST_NAME, verify_manifest, write_reports
from audit_sdk.testing import inline_plugin
from reports.json_reporter import JsonReporter
from reports.markdown_reporter import MarkdownReporter
from tests.fault_helpers import REPORT_FILES, cli, remount, tmpfs, write_config
from tests.report_factories import sample_report

runner = CliRunner()


def _run(config: Path, *extra: str) -> Any:
    return runner.invoke(app, ["run", str(config), "--quiet", *extra])


def _manifest_consistent(folder: Path) -> bool:
    """True when every file the manifest lists is on disk with the listed hash."""
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    return all(verify_manifest(folder / name) is None for name in manifest["files"])


@pytest.fixture
def default_host() -> Any:
    """The plugin host a default config's run uses (so inline plugins reach the CLI)."""
    return get_plugin_host(
        PluginSettings.resolve(allow=None, block=[], autoload=True, strict=False)
    )


# -- green only with a report ------------------------------------------------------------------


def test_a_run_writes_one_verified_set_with_normal_permissions(tmp_path: Path) -> None:
    out = tmp_path / "out"
    old_umask = os.umask(0o022)
    try:
        result = _run(write_config(tmp_path, out))
    finally:
        os.umask(old_umask)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted([*REPORT_FILES, MANIFEST_NAME])
    assert _manifest_consistent(out)
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path  # not 600: umask respected


def test_an_output_folder_under_a_file_exits_3(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = _run(write_config(tmp_path, blocker / "reports"))
    assert result.exit_code == 3, result.output
    assert "not a folder" in result.output or "is a file" in result.output
    assert "Traceback" not in result.output


def test_a_read_only_file_system_exits_3(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", size="1m", read_only=True) as mounted:
        if mounted is None:
            pytest.skip("this machine cannot mount a read-only tmpfs (needs root)")
        result = _run(write_config(tmp_path, mounted / "reports"))
        assert result.exit_code == 3, result.output
        assert "read-only" in result.output


def test_an_older_set_on_a_now_read_only_folder_fails_the_run(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "fs", size="2m") as mounted:
        if mounted is None:
            pytest.skip("this machine cannot mount a tmpfs (needs root)")
        config = write_config(tmp_path, mounted)
        assert _run(config).exit_code == 0
        with remount(mounted, "ro") as ok:
            if not ok:
                pytest.skip("cannot remount read-only")
            result = _run(config)
        assert result.exit_code == 3, result.output


def _set_size(tmp_path: Path) -> int:
    probe = tmp_path / "probe"
    assert _run(write_config(tmp_path, probe, name="probe.yaml")).exit_code == 0
    return sum(p.stat().st_size for p in probe.iterdir())


def test_a_full_disk_fails_the_run_and_invalidates_the_older_passing_set(tmp_path: Path) -> None:
    size = _set_size(tmp_path)
    # Room for one set but not for staging a second one beside it.
    with tmpfs(tmp_path / "small", size=f"{int(size * 1.5 / 1024) + 16}k") as mounted:
        if mounted is None:
            pytest.skip("this machine cannot mount a small tmpfs (needs root)")
        config = write_config(tmp_path, mounted)
        first = _run(config)
        assert first.exit_code == 0, first.output
        assert gate_report_files(mounted / "report.json", require_manifest=True, allow_empty=True)
        second = _run(config)
        assert second.exit_code == 3, second.output
        assert "disk is full" in second.output
        # The first run's passing report must not pass for the second run's.
        gated = runner.invoke(app, ["gate", str(mounted / "report.json"), "--allow-empty"])
        assert gated.exit_code == 2, gated.output


def _limit_file_size() -> None:  # runs in the child, before exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))


def test_a_file_size_limit_fails_the_run_without_root(tmp_path: Path) -> None:
    """The same fault as a full disk, on any machine: writes past 16 KiB fail (EFBIG)."""
    out = tmp_path / "out"
    config = write_config(tmp_path, out)
    proc = subprocess.run(
        [sys.executable, "-m", "audit_sdk.cli", "run", str(config), "--quiet"],
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stderr
    assert not (out / MANIFEST_NAME).exists()
    assert not (out / "report.json").exists()
    assert [p.name for p in out.iterdir()] == []  # no orphan staging folder or temp file


# -- plugins that end the process, details that are not data ----------------------------------


class ExitingDetector(Detector):
    name = "exits_in_detect"
    description = "calls sys.exit(0) from detect"

    def detect(self, context: Any) -> list[Finding]:
        sys.exit(0)


class OddDetailsDetector(Detector):
    name = "odd_details"
    description = "a finding whose details are not JSON data"

    def detect(self, context: Any) -> list[Finding]:
        details = {
            "obj": object(),
            "array": np.arange(3),
            "scalar": np.float32(0.5),
            "set": {3, 1, 2},
            "nan": float("nan"),
            "path": Path("/x"),
        }
        return [
            Finding(
                detector=self.name,
                metric="odd",
                estimate=1.0,
                status="pass",
                explanation="details hold an object",
                details=details,
            )
        ]


def test_a_detector_calling_sys_exit_fails_the_run(tmp_path: Path, default_host: Any) -> None:
    out = tmp_path / "out"
    config = write_config(tmp_path, out, "detectors: [{name: exits_in_detect}]\n", name="x.yaml")
    with inline_plugin(default_host, ExitingDetector):
        result = _run(config)
    assert result.exit_code == 3, result.output
    assert "sys.exit(0)" in result.output
    assert "test_faults_outputs.py" in result.output  # names where it was called
    assert not (out / "report.json").exists()


def test_a_plugin_calling_sys_exit_at_import_is_skipped_and_recorded(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist = site / "exiting_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: exiting-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[audit_sdk]\nexiting = exiting_plugin\n")
    (site / "exiting_plugin.py").write_text("import sys\nsys.exit(0)\n")
    out = tmp_path / "out"
    env = {"PYTHONPATH": str(site), "AUDIT_SDK_DISABLE_PLUGIN_AUTOLOAD": ""}
    proc = cli("run", str(write_config(tmp_path, out)), "--quiet", env=env)
    # like any plugin that fails to import: skipped with a warning naming it, and on record;
    # the audit of everything else is complete, so the run succeeds with its report
    assert proc.returncode == 0, proc.stderr
    assert "'exiting'" in proc.stderr and "SystemExit" in proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads((out / "report.json").read_text())
    (record,) = [p for p in report["provenance"]["plugins"] if p["entry_point"] == "exiting"]
    assert record["status"] == "failed" and "SystemExit" in record["error"]


def test_details_that_are_not_json_are_kept_as_text(tmp_path: Path, default_host: Any) -> None:
    out = tmp_path / "out"
    config = write_config(tmp_path, out, "detectors: [{name: odd_details}]\n", name="x.yaml")
    with inline_plugin(default_host, OddDetailsDetector):
        result = _run(config)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted([*REPORT_FILES, MANIFEST_NAME])
    report = json.loads((out / "report.json").read_text())
    (odd,) = [f for f in report["findings"] if f["detector"] == "odd_details"]
    assert odd["details"]["array"] == [0, 1, 2]
    assert odd["details"]["set"] == [1, 2, 3]
    assert odd["details"]["nan"] is None
    assert odd["details"]["path"] == "/x"
    assert odd["details"]["obj"].startswith("<object object")
    assert any("details.obj" in w for w in odd["warnings"])


class BrokenJson(JsonReporter):
    def render(self, report: Report) -> str:
        raise ValueError("cannot serialise")


def test_no_format_is_written_without_report_json(tmp_path: Path) -> None:
    """report.json is the source of truth: if it fails, nothing is published, and the older
    set is removed so it cannot pass for this run's."""
    first = write_reports(sample_report(), tmp_path, [JsonReporter, MarkdownReporter])
    assert first.ok
    result = write_reports(sample_report(), tmp_path, [BrokenJson, MarkdownReporter])
    assert not result.ok and result.manifest is None
    assert list(tmp_path.iterdir()) == []
    assert {f.reporter for f in result.failures} == {"json", "markdown"}


class ExplodingHtml(Reporter):
    name = "exploding_html"
    filename = "report.html"

    def render(self, report: Report) -> str:
        raise RuntimeError("template exploded")


def test_stale_files_of_an_earlier_set_are_removed(tmp_path: Path) -> None:
    from reports.html_reporter import HtmlReporter

    assert write_reports(sample_report(), tmp_path, [JsonReporter, HtmlReporter]).ok
    (tmp_path / ".audit-sdk-staging-dead").mkdir()  # a run killed while staging
    (tmp_path / ".report.json.0123.tmp").write_text("half")
    result = write_reports(sample_report(), tmp_path, [JsonReporter, ExplodingHtml])
    assert not result.ok  # a requested report is missing
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST_NAME, "report.json"]
    assert any(f.removed_stale for f in result.failures)
    assert verify_manifest(tmp_path / "report.json") is None


# -- concurrency and kill -9 -------------------------------------------------------------------


@contextlib.contextmanager
def _hold_lock(folder: Path) -> Iterator[None]:
    fd = os.open(folder, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def test_a_folder_locked_by_another_run_is_refused_with_a_message(tmp_path: Path) -> None:
    with _hold_lock(tmp_path):
        result = write_reports(sample_report(), tmp_path, [JsonReporter], lock_timeout_s=0.2)
    assert not result.ok
    assert result.failures[0].phase == "lock"
    assert "another audit" in result.failures[0].error
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_concurrent_runs_into_one_folder_publish_one_whole_set(tmp_path: Path) -> None:
    out = tmp_path / "shared"
    configs = [
        write_config(tmp_path, out, f"seed: {i}\ntitle: run {i}\n", name=f"c{i}.yaml")
        for i in range(2)
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "audit_sdk.cli", "run", str(c), "--quiet"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in configs
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([*REPORT_FILES, MANIFEST_NAME])
    assert _manifest_consistent(out)
    title = json.loads((out / "report.json").read_text())["title"]
    assert title in (f"run {i}" for i in range(2))
    assert f"## {title}" in (out / "summary.md").read_text()  # the same run's summary


@pytest.mark.slow
def test_kill_9_at_any_moment_never_leaves_a_set_the_gate_accepts_wrongly(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _run(write_config(tmp_path, out, "title: first\n", name="first.yaml")).exit_code == 0
    config = write_config(tmp_path, out, "title: second\n", name="second.yaml")
    for delay in (0.2, 0.6, 1.0, 1.4, 1.8, 2.2):
        proc = subprocess.Popen(
            [sys.executable, "-m", "audit_sdk.cli", "run", str(config), "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if (out / MANIFEST_NAME).exists():
            # Whatever the manifest lists is whole and of one run.
            assert _manifest_consistent(out), delay
            manifest = json.loads((out / MANIFEST_NAME).read_text())
            title = json.loads((out / "report.json").read_text())["title"]
            assert manifest["title"] == title
        else:
            gated = runner.invoke(app, ["gate", str(out / "report.json"), "--allow-empty"])
            assert gated.exit_code == 2, delay
    # The next run cleans up whatever a killed run left behind.
    assert _run(config).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*REPORT_FILES, MANIFEST_NAME])


def test_a_run_with_a_closed_stdout_still_reports_its_outcome(tmp_path: Path) -> None:
    """`audit-sdk run ... | head -0`: the reports were published, so the code is 0, not the
    1 of rich's broken-pipe exit (which the old CLI also blamed on a plugin)."""
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "audit_sdk.cli", "run", str(write_config(tmp_path, out)), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert verify_manifest(out / "report.json") is None
