"""The callable adapter: calling conventions, validation of what comes back, import errors."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from audit_sdk.adapters import callable_adapter as callable_module
from audit_sdk.adapters.callable_adapter import CallableAdapter
from pydantic import ValidationError

from audit_sdk.errors import AdapterError, MissingCapabilityError
from audit_sdk.interfaces import GenerationParams, TokenScores
from audit_sdk.plugin_host import PluginHost, PluginSettings

_counter = itertools.count()

TARGETS = """
from __future__ import annotations

import pandas as pd

def batch(prompts: list[str], params) -> list[str]:
    return [f"{p.upper()}@{params.temperature}/{params.seed}" for p in prompts]

def single(prompt: str) -> str:
    return prompt[::-1]

def single_with_params(prompt, params):
    return f"{prompt}:{params.max_new_tokens}"

def ambiguous(x):
    return x

def returns_str(prompts):
    return "one string"

def returns_short(prompts):
    return prompts[:-1]

def returns_ints(prompts):
    return [1 for _ in prompts]

def single_returns_none(prompt):
    return None

def explodes(prompts):
    raise ValueError("model weights missing")

def recommend_mapping(user_ids, k):
    return {u: [f"{u}-item{i}" for i in range(5)] for u in user_ids}

def recommend_frame(user_ids, k):
    return pd.DataFrame({"user_id": [1, 1], "rank": [1, 2], "item_id": [10, 11]})

def recommend_bad(user_ids, k):
    return pd.DataFrame({"user": [1]})

def embed(texts):
    return [[len(t), 1.0] for t in texts]

def embed_flat(texts):
    return [1.0 for _ in texts]

class Model:
    def generate(self, prompts, params):
        return [p + "!" for p in prompts]

    def score(self, prompts, continuations):
        from audit_sdk.interfaces import TokenScores
        return [TokenScores([1, 2], [-0.5, -0.25]) for _ in prompts]

model = Model()
"""


@pytest.fixture
def targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"callable_targets_{next(_counter)}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(TARGETS), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def make(target: str, **params: object) -> CallableAdapter:
    return CallableAdapter(CallableAdapter.Params.model_validate({"target": target, **params}))


PARAMS = GenerationParams(temperature=0.3, seed=5, max_new_tokens=12)


def test_batch_function_gets_prompts_and_params(targets: str) -> None:
    adapter = make(f"{targets}:batch")
    assert adapter.generate(["a", "b"], params=PARAMS) == ["A@0.3/5", "B@0.3/5"]


def test_single_prompt_functions_with_and_without_params(targets: str) -> None:
    assert make(f"{targets}:single").generate(["abc", "xy"], params=PARAMS) == ["cba", "yx"]
    assert make(f"{targets}:single_with_params").generate(["p"], params=PARAMS) == ["p:12"]


def test_an_ambiguous_signature_asks_for_the_convention(targets: str) -> None:
    with pytest.raises(AdapterError, match=r"cannot tell.*first parameter 'x'.*params\.call"):
        make(f"{targets}:ambiguous").generate(["a"], params=PARAMS)
    assert make(f"{targets}:ambiguous", call="single").generate(["a"], params=PARAMS) == ["a"]


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("returns_str", r"returned str; a batch function must return a list of str"),
        ("returns_short", r"returned 1 outputs for 2 prompts"),
        ("returns_ints", r"output 1 is int, not str"),
        ("single_returns_none", r"returned NoneType for prompt 1; a single-prompt function"),
        ("explodes", r"\(generate\) raised ValueError: model weights missing"),
    ],
)
def test_wrong_returns_and_exceptions_are_clear_errors(
    targets: str, function: str, message: str
) -> None:
    with pytest.raises(AdapterError, match=message) as info:
        make(f"{targets}:{function}").generate(["a", "b"], params=PARAMS)
    assert f"'{targets}:{function}'" in str(info.value)


def test_import_problems_name_the_module_and_the_error(
    targets: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(AdapterError, match=r"cannot import module 'no_such_pkg\.mod'.*No module"):
        make("no_such_pkg.mod:generate").generate(["a"], params=PARAMS)
    broken = f"broken_target_{next(_counter)}"
    (tmp_path / f"{broken}.py").write_text("import missing_dependency_xyz\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(AdapterError, match=r"cannot import module.*missing_dependency_xyz"):
        make(f"{broken}:generate").generate(["a"], params=PARAMS)
    with pytest.raises(AdapterError, match=r"has no attribute 'singel'\. Did you mean 'single'\?"):
        make(f"{targets}:singel").generate(["a"], params=PARAMS)


def test_target_must_name_module_and_function() -> None:
    with pytest.raises(ValidationError, match=r"package\.module:function"):
        CallableAdapter.Params(target="just_a_module")
    with pytest.raises(ValidationError, match="at least one capability"):
        CallableAdapter.Params(target="m:f", capabilities=[])


def test_recommend_accepts_a_mapping_or_a_frame(targets: str) -> None:
    mapping = make(f"{targets}:recommend_mapping", capabilities=["recommend"])
    frame = mapping.recommend(["u1", "u2"], k=3)
    assert list(frame.columns) == ["user_id", "rank", "item_id", "score"]
    assert frame[frame["user_id"] == "u2"]["item_id"].tolist() == [
        "u2-item0",
        "u2-item1",
        "u2-item2",
    ]
    assert frame["rank"].tolist() == [1, 2, 3, 1, 2, 3]
    from_frame = make(f"{targets}:recommend_frame", capabilities=["recommend"]).recommend(
        ["1"], k=10
    )
    assert from_frame["item_id"].tolist() == ["10", "11"]
    assert from_frame["user_id"].tolist() == ["1", "1"]
    with pytest.raises(AdapterError, match=r"lacks column.*user_id, rank, item_id"):
        make(f"{targets}:recommend_bad", capabilities=["recommend"]).recommend(["1"], k=3)


def test_embed_checks_the_shape(targets: str) -> None:
    vectors = make(f"{targets}:embed", capabilities=["embed"]).embed(["ab", "abc"])
    np.testing.assert_array_equal(vectors, [[2, 1], [3, 1]])
    with pytest.raises(AdapterError, match=r"shape \(2,\); expected \(2, dim\)"):
        make(f"{targets}:embed_flat", capabilities=["embed"]).embed(["ab", "abc"])


def test_an_object_serves_several_capabilities(targets: str) -> None:
    adapter = make(f"{targets}:model", capabilities=["generate", "score"])
    assert adapter.supports("score")
    assert not adapter.supports("recommend")
    assert adapter.capabilities == frozenset({"generate", "score"})
    assert adapter.generate(["a"], params=PARAMS) == ["a!"]
    [scores] = adapter.score(["p"], ["c"])
    assert isinstance(scores, TokenScores)
    assert scores.total == -0.75
    with pytest.raises(MissingCapabilityError, match="does not support 'recommend'"):
        adapter.recommend(["u"], k=2)
    with pytest.raises(AdapterError, match="method named 'embed'"):
        make(f"{targets}:model", capabilities=["generate", "embed"]).generate(["a"], params=PARAMS)


def test_fingerprint_follows_the_source_file(targets: str, tmp_path: Path) -> None:
    adapter = make(f"{targets}:batch")
    first = adapter.fingerprint()
    assert first.startswith(f"callable:{targets}:batch[generate]:")
    assert make(f"{targets}:batch").fingerprint() == first
    (tmp_path / f"{targets}.py").write_text(
        textwrap.dedent(TARGETS) + "\n# edited\n", encoding="utf-8"
    )
    assert make(f"{targets}:batch").fingerprint() != first
    assert adapter.describe() == {
        "adapter": "callable",
        "model": f"{targets}:batch",
        "capabilities": ["generate"],
    }


def test_adapter_registers_through_the_hook() -> None:
    host = PluginHost(PluginSettings(autoload=False))
    host.register_plugin(callable_module, name="callable_adapter")
    registered: Callable[..., object] = host.get("adapter", "callable").cls
    assert registered is CallableAdapter
