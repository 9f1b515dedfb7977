"""The adapter conformance check, run against every built-in adapter, and what it catches."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest

from audit_sdk.interfaces import Capability, GenerationParams, GeneratorAdapter
from audit_sdk.plugin_host import get_plugin_host
from audit_sdk.splitting import holdout_split
from audit_sdk.testing import check_adapter
from audit_sdk.testing.adapter_checks import default_check_data, default_check_prompts

from .tinyrec_fixtures import tiny_world, train_tiny_tinyrec

BUILTIN_ADAPTERS = {
    "popularity",
    "item_knn",
    "random",
    "template_writer",
    "callable",
    "logged_outputs",
    "openai_http",
    "huggingface",
    "onnx",
    "tinyrec",
    "embedding",
}


def _adapter(name: str, **params: object) -> GeneratorAdapter:
    reg = get_plugin_host().get("adapter", name)
    return reg.cls(reg.cls.Params.model_validate(params))


def test_every_built_in_adapter_is_covered_below() -> None:
    assert set(get_plugin_host().registry.names("adapter")) == BUILTIN_ADAPTERS


@pytest.mark.parametrize("name", ["popularity", "item_knn", "random"])
def test_baseline_recommenders(name: str) -> None:
    checked = check_adapter(_adapter(name))
    assert checked.checked == ["recommend"]
    assert checked.recommendations is not None and len(checked.recommendations) > 0


def test_template_writer() -> None:
    train = default_check_data()
    checked = check_adapter(
        _adapter("template_writer"),
        train,
        prompts=default_check_prompts(train, recommendation=False),
    )
    assert checked.checked == ["generate"] and checked.generations


_TARGET = """
def answer(prompts, params):
    return [f"{len(p)}:{params.seed}" for p in prompts]
"""


@pytest.fixture
def target_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "adapter_check_target.py").write_text(textwrap.dedent(_TARGET))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "adapter_check_target"
    sys.modules.pop("adapter_check_target", None)


def test_callable(target_module: str) -> None:
    checked = check_adapter(_adapter("callable", target=f"{target_module}:answer"))
    assert checked.checked == ["generate"]


def test_logged_outputs(tmp_path: Path) -> None:
    from audit_sdk.adapters.template_profile_writer import TemplateProfileWriter

    train = default_check_data()
    prompts = default_check_prompts(train, recommendation=False)
    texts = TemplateProfileWriter().generate(prompts, params=GenerationParams())
    log = pd.DataFrame(
        {
            "user_id": sorted(train.interactions.frame["user_id"].unique())[: len(prompts)],
            "model": "logged-model",
            "window": "all",
            "prompt": prompts,
            "text": texts,
        }
    )
    log.to_csv(tmp_path / "profiles.csv", index=False)
    checked = check_adapter(
        _adapter("logged_outputs", path=str(tmp_path / "profiles.csv")), train, prompts=prompts
    )
    assert checked.checked == ["generate", "replay"]
    assert checked.generations == texts


def test_openai_http_against_a_local_server() -> None:
    from .test_openai_http_adapter import openai_server_process

    train = default_check_data()
    with openai_server_process() as base_url:
        adapter = _adapter("openai_http", base_url=base_url, model="template_writer")
        try:
            checked = check_adapter(
                adapter, train, prompts=default_check_prompts(train, recommendation=False)
            )
        finally:
            adapter.close()  # an open client's sockets warn when collected, in a later test
    assert checked.checked == ["generate"]


@pytest.mark.parametrize("backend", ["wordllama"])  # MiniLM: tests/test_verification_embeddings
def test_embedding(backend: str) -> None:
    checked = check_adapter(_adapter("embedding", backend=backend))
    assert checked.checked == ["embed"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    return train_tiny_tinyrec(tmp_path_factory.mktemp("checked") / "tinyrec").model_dir


@pytest.mark.parametrize("name", ["huggingface", "tinyrec"])
def test_local_language_models(name: str, tiny_model: Path) -> None:
    train = holdout_split(tiny_world(), seed=0).train
    checked = check_adapter(_adapter(name, model_dir=str(tiny_model)), train)
    assert checked.checked == ["generate", "recommend", "score", "tokenize"]


@pytest.mark.slow
def test_onnx(tiny_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from audit_sdk.adapters.onnx_export import export_onnx

    exported = export_onnx(tiny_model, tmp_path / "onnx").parent
    train = holdout_split(tiny_world(), seed=0).train
    checked = check_adapter(_adapter("onnx", model_dir=str(exported)), train)
    assert checked.checked == ["generate", "recommend", "score", "tokenize"]


class _Sloppy(GeneratorAdapter):
    """Declares recommend and generate; gets both subtly wrong, and embeds undeclared."""

    name = "sloppy"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"recommend", "generate"})
    calls = 0

    def recommend(self, user_ids, *, k):  # type: ignore[no-untyped-def]
        rows = [(u, r, f"not-an-item-{r}", float(r)) for u in user_ids for r in (1, 3)]
        return pd.DataFrame(rows, columns=["user_id", "rank", "item_id", "score"])

    def generate(self, prompts, *, params):  # type: ignore[no-untyped-def]
        type(self).calls += 1
        return [f"{p[:5]}{self.calls}{len(prompts)}" for p in prompts]

    def embed(self, texts):  # type: ignore[no-untyped-def]
        return [[1.0] for _ in texts]


def test_the_check_names_every_broken_promise() -> None:
    with pytest.raises(AssertionError) as info:
        check_adapter(_Sloppy())
    message = str(info.value)
    for expected in (
        "items not in the catalog",
        "ranks are not 1, 2",
        "a score rises with rank",
        "generate differs between two calls with the same seed",
        "depends on the other prompts of its batch",
        "'embed' is not declared, but calling it worked",
    ):
        assert expected in message, message
