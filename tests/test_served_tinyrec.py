"""TinyRec behind a real OpenAI-compatible server on 127.0.0.1, audited over HTTP.

The same model, the same seed: the HTTP adapter must get the text the local adapter writes,
and a whole audit (recommendations by generation, profiles) runs through the wire.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from audit_sdk.adapters.huggingface_adapter import HuggingFaceAdapter
from audit_sdk.adapters.openai_http_adapter import OpenAIHTTPAdapter
from audit_sdk.adapters.tinyrec import train_tinyrec

from audit_sdk.config import parse_config
from audit_sdk.interfaces import GenerationParams
from audit_sdk.runner import AuditRunner

from .test_openai_http_adapter import openai_server_process
from .tinyrec_fixtures import TINY_SETTINGS, tiny_world

WORLD = {"seed": 3, "n_users": 120, "n_artists": 30, "mean_tracks_per_artist": 4.0}
WORLD["mean_events_per_user"] = 50.0


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tinyrec") / "model"
    # Profile prompts need more context than the smallest test model has.
    settings = dataclasses.replace(TINY_SETTINGS, n_positions=1024)
    train_tinyrec(
        tiny_world(), out_dir=out, size="demo", holdout=False, threads=2, settings=settings
    )
    return out


@pytest.fixture(scope="module")
def served(model_dir: Path) -> Iterator[str]:
    params = json.dumps({"model_dir": str(model_dir)})
    with openai_server_process(
        "--params", params, "--model-name", "tinyrec", adapter="huggingface"
    ) as url:
        yield url


def test_http_and_local_adapters_write_the_same_text(model_dir: Path, served: str) -> None:
    local = HuggingFaceAdapter(HuggingFaceAdapter.Params(model_dir=str(model_dir)))
    remote = OpenAIHTTPAdapter(
        OpenAIHTTPAdapter.Params(base_url=served, model="tinyrec", mode="completions")
    )
    world = tiny_world()
    titles = world.catalog.frame["title"].head(6).tolist()
    prompts = [
        "Recommend the next track for this listener.\nListening history, oldest first:\n"
        + "".join(f"{t}\n" for t in titles[i : i + 3])
        for i in range(3)
    ]
    params = GenerationParams(temperature=0.8, top_p=0.95, max_new_tokens=24, seed=7)
    try:
        assert remote.generate(prompts, params=params) == local.generate(prompts, params=params)
    finally:
        remote.close()
        local.close()


def test_an_audit_runs_over_http(served: str, tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "dataset": {"params": WORLD},
            "split": {"test_items": 3, "min_train_items": 3},
            "subject": {
                "name": "tinyrec-over-http",
                "adapter": "openai_http",
                "params": {"base_url": served, "model": "tinyrec", "mode": "completions"},
                "max_new_tokens": 40,
            },
            "baselines": ["popularity"],
            "profiles": {
                "enabled": True,
                "cache": str(tmp_path / "cache.sqlite"),
                "max_new_tokens": 48,
            },
            "groups": {"min_group_size": 10},
            "detectors": [{"name": "baseline_comparison"}, {"name": "profile_fidelity"}],
            "stats": {"bootstrap_resamples": 100},
            "outputs": {"formats": ["json"]},
        }
    )
    result = AuditRunner(cfg, quiet=True, out_dir=tmp_path / "out").run()
    context = result.context
    assert context is not None and context.subject.recommendations is not None
    assert len(context.subject.recommendations) > 0  # answer lines matched catalog items
    assert context.user_table["hallucination_rate"].notna().any()
    profiles = context.subject.profiles
    assert profiles is not None
    assert set(profiles["model"]) == {"tinyrec-over-http", "template_writer"}
    assert profiles["error"].isna().all()
    statuses = {f.detector: f.status for f in result.report.findings}
    assert statuses["baseline_comparison"] != "error"
    assert statuses["profile_fidelity"] != "error"
    subject = result.report.provenance.subject
    assert subject is not None
    assert subject.adapter == "openai_http"
    # A remote model is identified by its endpoint and name (its weights are out of reach).
    assert subject.fingerprint.endswith(f"{served}:tinyrec")
