"""The SQLite generation cache, including resuming after SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from audit_sdk.errors import DataValidationError
from audit_sdk.generation_cache import CacheKey, CacheRecord, GenerationCache
from audit_sdk.interfaces import GenerationParams


def _key(prompt: str = "p", **changes: object) -> CacheKey:
    key = CacheKey.for_prompt(
        adapter="template_writer",
        model_fingerprint="template_writer:v1",
        prompt_sha256=prompt * 8,
        params=GenerationParams(),
    )
    return replace(key, **changes)  # type: ignore[arg-type]


def test_put_then_get_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "cache.sqlite"
    with GenerationCache(path) as cache:
        added = cache.put_many(
            [CacheRecord(_key("a"), "text a", {"model": "m"}), CacheRecord(_key("b"), "text b")]
        )
        assert added == 2
    with GenerationCache(path) as cache:
        found = cache.get_many([_key("a"), _key("b"), _key("c")])
        assert {k.prompt_sha256[0]: r.text for k, r in found.items()} == {
            "a": "text a",
            "b": "text b",
        }
        assert found[_key("a")].metadata == {"model": "m"}
        stats = cache.stats()
        assert (stats.rows, stats.hits, stats.misses) == (2, 2, 1)
        assert stats.rows_by_adapter == {"template_writer": 2}
        assert stats.size_bytes > 0
        journal = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
        assert journal == "wal"


def test_every_key_field_separates_entries(tmp_path: Path) -> None:
    base = _key("a")
    variants = [
        replace(base, adapter="openai_http"),
        replace(base, model_fingerprint="other"),
        replace(base, prompt_sha256="b" * 8),
        replace(base, temperature=0.7),
        replace(base, top_p=0.9),
        replace(base, max_new_tokens=95),
        replace(base, seed=1),
    ]
    assert len({k.digest for k in [base, *variants]}) == 1 + len(variants)
    with GenerationCache(tmp_path / "c.sqlite") as cache:
        cache.put(base, "base")
        assert cache.get_many(variants) == {}
        assert cache.get(base) is not None


def test_a_key_is_stored_once_and_the_first_text_wins(tmp_path: Path) -> None:
    with GenerationCache(tmp_path / "c.sqlite") as cache:
        assert cache.put(_key("a"), "first") is True
        assert cache.put(_key("a"), "second") is False
        assert cache.put_many([CacheRecord(_key("a"), "third"), CacheRecord(_key("b"), "b")]) == 1
        assert len(cache) == 2
        assert cache.get(_key("a")).text == "first"  # type: ignore[union-attr]
        assert sorted(r.text for r in cache) == ["b", "first"]


def test_threads_share_one_cache(tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path / "c.sqlite")

    def work(worker: int) -> None:
        for i in range(25):
            cache.put(_key(f"{worker}-{i}-"), f"{worker}/{i}")
            cache.get(_key(f"{worker}-{i}-"))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 100
    cache.close()


def test_a_file_that_is_not_a_cache_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DataValidationError, match=r"cache\.sqlite.*not a usable generation cache"):
        GenerationCache(path).get(_key())


def test_a_cache_from_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with GenerationCache(path) as cache:
        cache.stats()
    connection = sqlite3.connect(path)
    connection.execute("UPDATE cache_meta SET value = '99' WHERE name = 'schema_version'")
    connection.commit()
    connection.close()
    with pytest.raises(DataValidationError, match=r"(?s)schema version 99.*delete the file"):
        GenerationCache(path).stats()


# -- SIGKILL and resume ------------------------------------------------------------------------
SLOW_GENERATOR = """
import hashlib, os, time

def generate(prompts, params):
    outputs = []
    for prompt in prompts:
        time.sleep(float(os.environ["SLOW_SLEEP_S"]))
        outputs.append("profile " + hashlib.sha256(prompt.encode()).hexdigest()[:16])
    # every prompt this call generated, recorded before it returns
    with open(os.environ["SLOW_CALLS_FILE"], "a", encoding="utf-8") as log:
        for prompt in prompts:
            log.write(hashlib.sha256(prompt.encode("utf-8")).hexdigest() + "\\n")
        log.flush()
        os.fsync(log.fileno())
    return outputs
"""

DRIVER = """
import sys
from audit_sdk.adapters.callable_adapter import CallableAdapter
from audit_sdk.atomic_io import atomic_write_text
from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world
from audit_sdk.generation_cache import GenerationCache
from audit_sdk.interfaces import GenerationParams
from audit_sdk.profile_pipeline import generate_profiles, sample_profile_windows

world = generate_world(SyntheticWorldParams(seed=5, n_users=int(sys.argv[2]), n_artists=60))
samples = sample_profile_windows(world, windows=[30, 365])
adapter = CallableAdapter(CallableAdapter.Params(target="slow_generator:generate"))

def progress(label, done, total):
    print(f"progress {done} {total}", flush=True)

with GenerationCache(sys.argv[1]) as cache:
    profiles = generate_profiles(
        samples, world.catalog, {"slow": adapter}, params=GenerationParams(seed=3),
        cache=cache, batch_size=4, progress=progress,
    )
atomic_write_text(sys.argv[3], profiles.to_json(orient="records"))
print("finished", flush=True)
"""


def _read_calls(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def test_a_run_killed_midway_resumes_without_regenerating(tmp_path: Path) -> None:
    (tmp_path / "slow_generator.py").write_text(SLOW_GENERATOR, encoding="utf-8")
    (tmp_path / "driver.py").write_text(textwrap.dedent(DRIVER), encoding="utf-8")
    cache_path = tmp_path / "cache.sqlite"
    calls = tmp_path / "calls.txt"
    result = tmp_path / "profiles.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "SLOW_CALLS_FILE": str(calls),
        "SLOW_SLEEP_S": "0.02",
    }
    command = [sys.executable, str(tmp_path / "driver.py"), str(cache_path), "50", str(result)]

    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None
    total = 0
    try:
        deadline = time.monotonic() + 120
        for line in first.stdout:
            parts = line.split()
            if parts[0] == "progress":
                done, total = int(parts[1]), int(parts[2])
                if done >= total // 3 and done > 0:
                    break
            assert time.monotonic() < deadline, "the driver made no progress"
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.wait(timeout=30)
        first.stdout.close()
    assert first.returncode == -signal.SIGKILL
    assert not result.exists()
    assert total > 40

    connection = sqlite3.connect(cache_path)
    stored_before = {row[0] for row in connection.execute("SELECT prompt_sha256 FROM generations")}
    connection.close()
    calls_before = _read_calls(calls)
    assert 0 < len(stored_before) < total
    # every stored text was generated by the killed run, and what it generated but had not
    # stored yet is at most the batch in flight
    assert stored_before <= set(calls_before)
    assert len(set(calls_before) - stored_before) <= 4

    second = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert second.returncode == 0, second.stderr
    assert "finished" in second.stdout
    calls_after = _read_calls(calls)[len(calls_before) :]

    assert not set(calls_after) & stored_before, "finished items were generated again"
    assert len(calls_after) == len(set(calls_after)), "an item was generated twice in the rerun"
    profiles = pd.read_json(result, orient="records")
    prompts = set(profiles["prompt_sha256"])
    assert len(prompts) == total
    assert set(calls_after) | stored_before == prompts
    assert profiles["error"].isna().all()
    assert profiles["text"].str.startswith("profile ").all()
    cached = profiles["prompt_sha256"].isin(stored_before)
    assert (profiles["cached"] == cached).all()

    connection = sqlite3.connect(cache_path)
    rows, distinct = connection.execute(
        "SELECT COUNT(*), COUNT(DISTINCT prompt_sha256) FROM generations"
    ).fetchone()
    connection.close()
    assert rows == distinct == total
