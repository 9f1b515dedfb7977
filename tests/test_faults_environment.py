"""Fault suite, environment: a cache that cannot be used, text that is not clean UTF-8 and
messages full of markup each end as one message that names the file and what to do."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from audit_sdk.reports.builtin_reporters import BUILTIN_REPORTERS
from typer.testing import CliRunner

from audit_sdk.cli import app
from audit_sdk.generation_cache import (
    CacheKey,
    CacheRecord,
    GenerationCache,
    GenerationCacheError,
)
from audit_sdk.progress_display import ProgressDisplay
from audit_sdk.report_writing import write_reports
from tests.fault_helpers import tmpfs
from tests.report_factories import finding, group, make_report

runner = CliRunner()


def _key(i: int = 0) -> CacheKey:
    return CacheKey("adapter", "fingerprint", f"{i:064x}", 0.0, 1.0, 16, 0)


def test_a_folder_where_the_cache_file_should_be(tmp_path: Path) -> None:
    folder = tmp_path / "cache.sqlite"
    folder.mkdir()
    with pytest.raises(GenerationCacheError, match=r"cache\.sqlite") as caught:
        GenerationCache(folder).get_many([_key()])
    assert "profiles.cache" in str(caught.value)
    assert caught.value.exit_code == 3


def test_a_cache_locked_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with GenerationCache(path) as cache:
        cache.put(_key(1), "text")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        cache = GenerationCache(path, timeout_s=0.2)
        with pytest.raises(GenerationCacheError, match="locked by another process"):
            cache.put(_key(2), "more")
        cache.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_cache_on_a_read_only_or_full_file_system(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", size="1m", read_only=True) as ro:
        if ro is None:
            pytest.skip("this machine cannot mount a tmpfs (needs root)")
        with pytest.raises(GenerationCacheError, match=r"read-only|cannot be used"):
            GenerationCache(ro / "cache.sqlite").get_many([_key()])
    with tmpfs(tmp_path / "full", size="256k") as full:
        assert full is not None
        cache = GenerationCache(full / "cache.sqlite")
        records = [CacheRecord(_key(i), "x" * 4096, {}) for i in range(200)]
        with pytest.raises(GenerationCacheError, match="disk is full"):
            cache.put_many(records)
        cache.close()


def test_a_run_whose_cache_is_unusable_is_one_message(tmp_path: Path) -> None:
    (tmp_path / "cache-dir").mkdir()
    config = tmp_path / "audit.yaml"
    config.write_text(
        "dataset: {loader: synthetic, params: {n_users: 60, n_artists: 40, seed: 1}}\n"
        "subject: {adapter: popularity}\nbaselines: [popularity]\n"
        "detectors: [{name: profile_fidelity}]\nstats: {bootstrap_resamples: 50}\n"
        f"profiles: {{enabled: true, max_users: 4, cache: {tmp_path / 'cache-dir'},"
        " generators: [{adapter: template_writer}]}\n"
        f"outputs: {{dir: {tmp_path / 'out'}}}\n"
    )
    result = runner.invoke(app, ["run", str(config), "--quiet"])
    assert result.exit_code == 3, result.output
    assert "cache-dir" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out" / "report.json").exists()


def test_lone_surrogates_in_data_do_not_lose_the_report(tmp_path: Path) -> None:
    """Text decoded with surrogateescape (or a JSONL "\\udcff") reaches every format escaped."""
    hostile = finding("d", "m\udcff", estimate=0.1, status="fail", groups=[group("g\udcff", 0.1)])
    result = write_reports(make_report([hostile], title="t\ud800"), tmp_path, BUILTIN_REPORTERS)
    assert result.ok, [f.describe() for f in result.failures]
    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert data["findings"][0]["metric"] == "m\\udcff"


def test_progress_notes_with_broken_markup_are_printed_as_text() -> None:
    from rich.console import Console

    console = Console(record=True, width=200)
    display = ProgressDisplay(quiet=False, console=console)
    display.note("[yellow]reporter failed for [/bold]out/x.json[/yellow]")
    assert "[/bold]out/x.json" in console.export_text()
