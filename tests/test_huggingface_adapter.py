"""The huggingface adapter against a real transformers model (a TinyRec trained here)."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
from audit_sdk.adapters.tinyrec import MANIFEST_NAME

from audit_sdk.errors import AdapterError, MissingCapabilityError
from audit_sdk.interfaces import GenerationParams
from audit_sdk.plugin_host import PluginHost, PluginSettings
from audit_sdk.splitting import holdout_split

from .tinyrec_fixtures import tiny_world, train_tiny_tinyrec

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from audit_sdk.adapters import huggingface_adapter as hf_module  # noqa: E402
from audit_sdk.adapters.huggingface_adapter import (  # noqa: E402
    HuggingFaceAdapter,
    HuggingFaceParams,
)
from audit_sdk.adapters.token_sampling import (  # noqa: E402
    prompt_generators,
    sample_next_tokens,
    top_p_keep_mask,
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_tinyrec(tmp_path_factory.mktemp("hf") / "tinyrec").model_dir


@pytest.fixture(scope="module")
def split():
    return holdout_split(tiny_world(), seed=0)


@pytest.fixture(scope="module")
def prompts(split) -> list[str]:
    from audit_sdk.profile_pipeline import profile_prompt_table, sample_profile_windows

    samples = sample_profile_windows(split.train, windows=None)
    table = profile_prompt_table(samples, split.train.catalog)
    return table["prompt"].tolist()[:6]


def make(model_dir: Path, **params: object) -> HuggingFaceAdapter:
    return HuggingFaceAdapter(HuggingFaceParams(model_dir=str(model_dir), **params))  # type: ignore[arg-type]


def reference_model(model_dir: Path):
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    return model.eval(), tokenizer


def test_describe_and_fingerprint(model_dir: Path) -> None:
    adapter = make(model_dir, device="cpu")
    info = adapter.describe()
    assert info["model_type"] == "gpt2"
    assert info["architecture"] == "GPT2LMHeadModel"
    assert info["location"] == str(model_dir)
    assert info["parameters"] == sum(p.numel() for p in reference_model(model_dir)[0].parameters())
    assert info["vocab_size"] == adapter.tokenizer_.__len__()
    assert info["device"] == "cpu" and info["dtype"] == "float32"
    assert info["tinyrec"]["item_tokens"] > 0
    assert make(model_dir).fingerprint() == adapter.fingerprint() == info["fingerprint"]
    assert len(adapter.fingerprint()) == 64


def test_generate_is_deterministic_per_seed_and_batch_invariant(
    model_dir: Path, prompts: list[str]
) -> None:
    params = GenerationParams(temperature=0.8, top_p=0.95, max_new_tokens=24, seed=7)
    batched = make(model_dir, batch_size=4).generate(prompts, params=params)
    alone = make(model_dir, batch_size=1).generate(prompts[::-1], params=params)[::-1]
    assert batched == alone
    assert all(isinstance(text, str) and text for text in batched)
    other = make(model_dir, batch_size=4).generate(
        prompts, params=GenerationParams(temperature=0.8, top_p=0.95, max_new_tokens=24, seed=8)
    )
    assert other != batched


def test_greedy_generation_matches_transformers(model_dir: Path, prompts: list[str]) -> None:
    greedy = GenerationParams(temperature=0.0, max_new_tokens=20, seed=0)
    ours = make(model_dir, batch_size=3).generate(prompts[:3], params=greedy)
    model, tokenizer = reference_model(model_dir)
    config = transformers.GenerationConfig(
        max_new_tokens=20,
        do_sample=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    for prompt, text in zip(prompts[:3], ours, strict=True):
        enc = tokenizer(prompt, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**enc, generation_config=config)
        expected = tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        assert text == expected.strip()


def test_top_p_mask_matches_transformers_warper() -> None:
    from transformers.generation.logits_process import TopPLogitsWarper

    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(8, 50)).astype(np.float32)
    for top_p in (0.1, 0.5, 0.9, 0.99):
        warped = TopPLogitsWarper(top_p=top_p)(None, torch.from_numpy(logits.copy())).numpy()
        assert (top_p_keep_mask(logits.astype(np.float64), top_p) == np.isfinite(warped)).all()


def test_sampler_draws_from_the_softmax() -> None:
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    generators = prompt_generators(["p"], seed=1)
    draws = [
        int(sample_next_tokens(logits, generators, temperature=1.0, top_p=1.0)[0])
        for _ in range(20000)
    ]
    frequencies = np.bincount(draws, minlength=4) / len(draws)
    assert np.allclose(frequencies, [0.5, 0.3, 0.15, 0.05], atol=0.015)
    nucleus = [
        int(sample_next_tokens(logits, generators, temperature=1.0, top_p=0.7)[0])
        for _ in range(2000)
    ]
    assert set(nucleus) == {0, 1}


def test_score_equals_manual_log_softmax(model_dir: Path, prompts: list[str]) -> None:
    continuations = [" This listener mostly plays pop.", " Favourite artists", " x"]
    scores = make(model_dir, batch_size=3).score(prompts[:3], continuations)
    model, tokenizer = reference_model(model_dir)
    for prompt, continuation, got in zip(prompts[:3], continuations, scores, strict=True):
        prompt_ids = tokenizer(prompt)["input_ids"]
        cont_ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt_ids + cont_ids])
        with torch.no_grad():
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
        expected = [
            float(logprobs[len(prompt_ids) + j - 1, token]) for j, token in enumerate(cont_ids)
        ]
        assert got.token_ids == cont_ids
        assert np.allclose(got.logprobs, expected, atol=1e-4)
        assert got.total == pytest.approx(sum(expected), abs=1e-3)
    assert make(model_dir).score(["a"], [""])[0].token_ids == []
    with pytest.raises(AdapterError, match="one continuation per prompt"):
        make(model_dir).score(["a", "b"], ["c"])


def test_tokenize_offsets_map_back_to_the_text(model_dir: Path, split) -> None:
    adapter = make(model_dir)
    title = split.train.catalog.frame["title"].iloc[0]
    text = f"Listening history:\n{title}\nThey love pop music, 2010s."
    (tokens,) = adapter.tokenize([text])
    tokenizer = adapter.tokenizer_
    assert tokens.token_ids[0] == tokenizer.bos_token_id and tokens.offsets[0] == (0, 0)
    spans = tokens.offsets[1:]
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    for token_id, (start, end) in zip(tokens.token_ids[1:], spans, strict=True):
        assert text[start:end] == tokenizer.decode([token_id])


def test_recommend_excludes_history_and_returns_k_items(model_dir: Path, split) -> None:
    adapter = make(model_dir, batch_size=8)
    assert adapter.supports("recommend")
    with pytest.raises(AdapterError, match=r"call fit\(train\)"):
        adapter.recommend(split.users[:3], k=5)
    adapter.fit(split.train)
    users = split.users[:20]
    recs = adapter.recommend(users, k=5)
    assert list(recs.columns) == ["user_id", "rank", "item_id", "score"]
    assert recs.groupby("user_id").size().eq(5).all() and set(recs["user_id"]) == set(users)
    assert recs.groupby("user_id")["rank"].apply(list).map(lambda r: r == [1, 2, 3, 4, 5]).all()
    assert recs.groupby("user_id")["score"].apply(lambda s: s.is_monotonic_decreasing).all()
    train = split.train.interactions.frame
    seen = train.groupby("user_id")["item_id"].apply(set)
    assert not any(
        item in seen[user] for user, item in zip(recs.user_id, recs.item_id, strict=True)
    )
    # The top item is the argmax over unseen item tokens of plain transformers' logits.
    model, tokenizer = reference_model(model_dir)
    ranker = adapter._ranker()
    user = users[0]
    prompt = ranker.prompt(adapter.histories_[user])
    with torch.no_grad():
        logits = model(**tokenizer(prompt, return_tensors="pt")).logits[0, -1].numpy()
    candidates = {
        token: item
        for token, item in adapter.manifest_.item_tokens.items()
        if item not in seen[user]
    }
    best = max(candidates, key=lambda t: logits[t])
    assert recs.loc[recs.user_id == user, "item_id"].iloc[0] == candidates[best]


def test_plain_causal_lm_has_no_recommend(model_dir: Path, tmp_path: Path, split) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(model_dir, plain)
    (plain / MANIFEST_NAME).unlink()
    adapter = make(plain)
    assert not adapter.supports("recommend") and adapter.supports("generate")
    adapter.fit(split.train)
    with pytest.raises(MissingCapabilityError):
        adapter.recommend(split.users[:2], k=3)
    assert adapter.fingerprint() != make(model_dir).fingerprint()


def test_prompt_longer_than_the_context(model_dir: Path) -> None:
    long_prompt = "pop rock jazz " * 400
    params = GenerationParams(max_new_tokens=4, seed=0)
    with pytest.raises(AdapterError, match="max_prompt_tokens"):
        make(model_dir).generate([long_prompt], params=params)
    (text,) = make(model_dir, max_prompt_tokens=100).generate([long_prompt], params=params)
    assert isinstance(text, str)


def test_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(AdapterError, match=r"does not exist.*params\.model_dir"):
        make(missing).generate(["x"], params=GenerationParams())
    assert not make(missing).supports("recommend")


def test_directory_without_config(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(AdapterError, match=r"has no config.json"):
        make(tmp_path).score(["a"], ["b"])


def test_wrong_architecture_names_it(model_dir: Path, tmp_path: Path) -> None:
    config = transformers.BertConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    transformers.BertModel(config).save_pretrained(tmp_path)
    with pytest.raises(AdapterError, match=r"BertModel.*not a causal language model"):
        make(tmp_path).generate(["x"], params=GenerationParams())


def test_missing_tokenizer(model_dir: Path, tmp_path: Path) -> None:
    for name in ("config.json", "model.safetensors"):
        shutil.copy2(model_dir / name, tmp_path / name)
    with pytest.raises(AdapterError, match=r"has no tokenizer.*save_pretrained"):
        make(tmp_path).tokenize(["x"])


def test_cuda_asked_without_a_gpu(model_dir: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(AdapterError, match="no CUDA GPU"):
        make(model_dir, device="cuda").generate(["x"], params=GenerationParams())


def test_registers_through_the_hook() -> None:
    host = PluginHost(PluginSettings(autoload=False))
    host.register_plugin(hf_module, name="huggingface")
    assert host.get("adapter", "huggingface").cls is HuggingFaceAdapter


def test_item_map_from_another_dataset(model_dir: Path) -> None:
    world = tiny_world()
    renamed = world.catalog.frame.rename(index=lambda item: f"other-{item}")
    other = world.replace(
        name="other", catalog=type(world.catalog)(renamed), interactions=world.interactions
    )
    with pytest.raises(AdapterError, match="shares no item with the catalog of 'other'"):
        make(model_dir).fit(other)
