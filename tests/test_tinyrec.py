"""TinyRec: trained for real (a tiny world, seconds), loaded with plain transformers."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from audit_sdk.adapters.tinyrec import MANIFEST_NAME, SIZES, read_manifest, train_tinyrec
from audit_sdk.adapters.tinyrec.model_cache import cached_model_dir, ensure_tinyrec

from audit_sdk.errors import AdapterError, DataValidationError
from audit_sdk.recommendation_prompts import recommendation_prompt
from audit_sdk.user_histories import user_histories

from .tinyrec_fixtures import TINY_SETTINGS, tiny_world, train_tiny_tinyrec

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    return train_tiny_tinyrec(tmp_path_factory.mktemp("tinyrec") / "model")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_saves_a_standard_transformers_directory(trained) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = trained.model_dir
    for name in (
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        MANIFEST_NAME,
    ):
        assert (model_dir / name).is_file(), name
    assert not [p for p in model_dir.parent.iterdir() if p.name.startswith(".")]
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    assert model.config.model_type == "gpt2"
    assert model.config.vocab_size == len(tokenizer) == trained.vocab_size
    manifest = read_manifest(model_dir)
    assert manifest is not None
    catalog = tiny_world().catalog.frame
    assert set(manifest.item_tokens.values()) <= set(catalog.index)
    assert len(manifest.item_tokens) == trained.n_item_tokens > 0
    # Each item token's text is the item's title (and the history line's newline).
    for token_id, item_id in list(manifest.item_tokens.items())[:20]:
        assert tokenizer.convert_ids_to_tokens(token_id) == f"{catalog.at[item_id, 'title']}\n"
    assert manifest.dataset["fingerprint"] == tiny_world().fingerprint()
    assert manifest.training["steps"] == trained.steps > 0


def test_reports_heldout_metrics_next_to_the_baselines(trained) -> None:
    assert set(trained.metrics) == {"tinyrec", "popularity", "random"}
    for model in trained.metrics.values():
        for metric in ("ndcg@10", "recall@10", "hit@10"):
            value = model[metric]
            assert 0.0 <= value["low"] <= value["mean"] <= value["high"] <= 1.0
            assert value["n"] > 30
    # Even two tiny epochs learn more than chance.
    assert (
        trained.metrics["tinyrec"]["ndcg@10"]["mean"] > trained.metrics["random"]["ndcg@10"]["high"]
    )
    assert set(trained.paired) == {"ndcg@10", "recall@10", "hit@10"}
    assert trained.profile_metrics["profile_users"] > 0
    assert trained.summary_table().shape == (3, 3)


def test_prompt_text_tokenizes_to_one_token_per_item(trained) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(trained.model_dir, local_files_only=True)
    manifest = read_manifest(trained.model_dir)
    assert manifest is not None
    token_of_item = {item: token for token, item in manifest.item_tokens.items()}
    train = tiny_world()
    history = [i for i in user_histories(train.interactions)["u00001"] if i in token_of_item][:6]
    titles = [train.catalog.frame.at[i, "title"] for i in history]
    prompt = recommendation_prompt(titles, unit="track", order="chronological")
    ids = tokenizer(prompt)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    assert ids[-len(history) :] == [token_of_item[i] for i in history]
    assert tokenizer.decode(ids, skip_special_tokens=True) == prompt


def test_training_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    world = tiny_world()
    first = train_tiny_tinyrec(tmp_path / "a", seed=5, holdout=False, dataset=world)
    second = train_tiny_tinyrec(tmp_path / "b", seed=5, holdout=False, dataset=world)
    other = train_tiny_tinyrec(tmp_path / "c", seed=6, holdout=False, dataset=world)
    weights = [_sha256(r.model_dir / "model.safetensors") for r in (first, second, other)]
    assert weights[0] == weights[1]
    assert weights[0] != weights[2]
    assert _sha256(first.model_dir / "tokenizer.json") == _sha256(
        second.model_dir / "tokenizer.json"
    )
    assert not first.stopped_by_time_budget


def test_refuses_to_overwrite_and_rejects_data_without_items(tmp_path: Path, trained) -> None:
    with pytest.raises(AdapterError, match="already exists"):
        train_tinyrec(tiny_world(), out_dir=trained.model_dir, settings=TINY_SETTINGS)
    world = tiny_world()
    frame = world.interactions.frame
    one_user_per_item = frame.drop_duplicates("item_id")
    lonely = world.replace(interactions=world.interactions.with_frame(one_user_per_item))
    with pytest.raises(DataValidationError, match="no item was played by at least 2"):
        train_tinyrec(lonely, out_dir=tmp_path / "x", holdout=False, settings=TINY_SETTINGS)
    assert not (tmp_path / "x").exists()


def test_cache_trains_once_then_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_SDK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(SIZES, "demo", TINY_SETTINGS)
    world = tiny_world()
    target = cached_model_dir(world, size="demo", seed=0)
    assert target.is_relative_to(tmp_path / "cache")
    with pytest.raises(AdapterError, match="train_if_missing"):
        ensure_tinyrec(world, size="demo", seed=0, train_if_missing=False)
    messages: list[str] = []
    first = ensure_tinyrec(world, size="demo", seed=0, progress=messages.append)
    assert first == target and any("training TinyRec" in m for m in messages)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    messages.clear()
    again = ensure_tinyrec(world, size="demo", seed=0, progress=messages.append)
    assert again == first and messages == []
    assert (again / "model.safetensors").stat().st_mtime_ns == stamp
    other_data = tiny_world(seed=4)
    assert cached_model_dir(other_data, size="demo", seed=0) != target


_KILLED_TRAINING = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    from audit_sdk.adapters.tinyrec import SIZES
    from audit_sdk.adapters.tinyrec.model_cache import ensure_tinyrec
    from tests.tinyrec_fixtures import TINY_SETTINGS, tiny_world

    SIZES["demo"] = TINY_SETTINGS

    def progress(message):
        if message.startswith("epoch 2"):
            print("READY", flush=True)
            time.sleep(60)

    ensure_tinyrec(tiny_world(), size="demo", seed=0, progress=progress)
    """
)


def test_a_killed_training_leaves_no_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "AUDIT_SDK_CACHE_DIR": str(cache)}
    root = str(Path(__file__).resolve().parents[1])
    script = _KILLED_TRAINING.format(root=root)
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        line = ""
        while time.monotonic() < deadline and "READY" not in line:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
        assert "READY" in line, "the training subprocess never reached its second epoch"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
    monkeypatch.setenv("AUDIT_SDK_CACHE_DIR", str(cache))
    monkeypatch.setitem(SIZES, "demo", TINY_SETTINGS)
    target = cached_model_dir(tiny_world(), size="demo", seed=0)
    assert not target.exists()
    with pytest.raises(AdapterError, match="no cached demo TinyRec"):
        ensure_tinyrec(tiny_world(), size="demo", seed=0, train_if_missing=False)
    assert ensure_tinyrec(tiny_world(), size="demo", seed=0) == target
    assert read_manifest(target) is not None


def test_history_order_follows_the_data() -> None:
    world = tiny_world()
    histories = user_histories(world.interactions)
    frame = world.interactions.frame
    user = frame.loc[frame["user_id"] == "u00002"]
    first_listen = user.groupby("item_id")["timestamp"].min().sort_values(kind="mergesort")
    assert histories["u00002"] == first_listen.index.tolist()
    counts = pd.DataFrame(
        {"user_id": ["a", "a", "a", "b"], "item_id": ["x", "y", "z", "x"], "plays": [1, 5, 5, 2]}
    )
    untimed = world.interactions.with_frame(counts)
    assert user_histories(untimed) == {"a": ["y", "z", "x"], "b": ["x"]}


def test_tinyrec_adapter_trains_on_fit_and_serves_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audit_sdk.adapters import tinyrec_adapter as tinyrec_module
    from audit_sdk.adapters.tinyrec_adapter import TinyRecAdapter, TinyRecParams

    from audit_sdk.interfaces import GenerationParams
    from audit_sdk.plugin_host import PluginHost, PluginSettings
    from audit_sdk.splitting import holdout_split

    monkeypatch.setenv("AUDIT_SDK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(SIZES, "demo", TINY_SETTINGS)
    split = holdout_split(tiny_world(), seed=0)
    adapter = TinyRecAdapter(TinyRecParams())
    assert adapter.supports("recommend") and adapter.supports("generate")
    assert adapter.fingerprint() == "tinyrec:demo:seed0:not-trained-yet"
    with pytest.raises(AdapterError, match=r"Call fit\(train\) first"):
        adapter.generate(["x"], params=GenerationParams())
    adapter.fit(split.train)
    recs = adapter.recommend(split.users[:10], k=4)
    assert recs.groupby("user_id").size().eq(4).all()
    (text,) = adapter.generate(["Listening sample:"], params=GenerationParams(max_new_tokens=8))
    assert isinstance(text, str)
    info = adapter.describe()
    assert info["tinyrec"]["size"] == "demo" and info["location"].startswith(str(tmp_path))
    fingerprint = adapter.fingerprint()
    assert len(fingerprint) == 64
    # A second adapter for the same data loads the cached model: same fingerprint.
    again = TinyRecAdapter(TinyRecParams())
    again.fit(split.train)
    assert again.fingerprint() == fingerprint
    # With model_dir it serves that directory, like the huggingface adapter.
    pinned = TinyRecAdapter(TinyRecParams(model_dir=info["location"]))
    assert pinned.fingerprint() == fingerprint
    host = PluginHost(PluginSettings(autoload=False))
    host.register_plugin(tinyrec_module, name="tinyrec")
    assert host.get("adapter", "tinyrec").cls is TinyRecAdapter


def _beats_popularity(result) -> None:
    for metric in ("ndcg@10", "recall@10"):
        assert result.paired[metric]["low"] > 0, (metric, result.summary_table())
        assert (
            result.metrics["tinyrec"][metric]["mean"] > result.metrics["popularity"][metric]["mean"]
        )


@pytest.mark.slow
def test_beats_popularity_on_a_synthetic_world(tmp_path: Path) -> None:
    """Held-out next items (time split): TinyRec ranks them better than popularity, with the
    paired 95% CI of the difference above zero (a small world and model, ~20 s)."""
    from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world

    world = generate_world(SyntheticWorldParams(seed=1, n_users=600, n_artists=120))
    settings = dataclasses.replace(
        TINY_SETTINGS,
        n_embd=64,
        n_head=4,
        n_layer=2,
        epochs=14,
        profile_share=0.1,
        max_history=48,
        bpe_vocab_size=800,
        min_item_users=3,
    )
    result = train_tinyrec(world, out_dir=tmp_path / "m", settings=settings, threads=2)
    assert result.split_strategy == "time" and not result.time_paced
    _beats_popularity(result)


@pytest.mark.slow
@pytest.mark.real_data
def test_beats_popularity_on_hetrec(tmp_path: Path, hetrec_dir: Path) -> None:
    """HetRec Last.fm 2K (random split, histories by plays): a small recommendation-only
    TinyRec (~25 s) already beats popularity; the full model's figures are in
    benchmarks/bench_tinyrec_quality.py."""
    from audit_sdk.data.hetrec_loader import HetRecLastfmLoader

    dataset = HetRecLastfmLoader(HetRecLastfmLoader.Params(directory=str(hetrec_dir))).load()
    settings = dataclasses.replace(
        TINY_SETTINGS,
        n_embd=64,
        n_head=4,
        n_layer=2,
        epochs=6,
        profile_share=0.0,
        max_history=48,
        bpe_vocab_size=800,
        min_item_users=5,
    )
    result = train_tinyrec(dataset, out_dir=tmp_path / "m", settings=settings, threads=2)
    assert result.split_strategy == "random" and result.history_order == "plays"
    _beats_popularity(result)
