"""FAA through the openai_http adapter against a real ``audit-sdk serve`` process on
127.0.0.1 (completions with echo + logprobs) equals FAA through the local adapter."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("httpx")

from audit_sdk.adapters._openai_http_scoring import parse_echo_logprobs
from audit_sdk.adapters.openai_http_adapter import OpenAIHTTPAdapter

from audit_sdk.attribution import attribute
from audit_sdk.errors import AdapterError

from .attribution_fixtures import history_prompts, tiny_adapter, tiny_model_dir
from .test_openai_http_adapter import openai_server_process


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    params = json.dumps({"model_dir": str(tiny_model_dir())})
    with openai_server_process(
        "--params", params, "--model-name", "tinyrec", adapter="huggingface"
    ) as url:
        yield url


@pytest.mark.slow  # a server process and ~20 requests: 20-40 s on a busy 2-core machine
def test_http_attribution_equals_local(served: str) -> None:
    prompts, targets = history_prompts(3)
    local = tiny_adapter()
    remote = OpenAIHTTPAdapter(
        OpenAIHTTPAdapter.Params(base_url=served, model="tinyrec", mode="completions")
    )
    try:
        assert remote.supports("score") and not remote.supports("tokenize")
        here = attribute(local, prompts, targets)
        there = attribute(remote, prompts, targets)
    finally:
        remote.close()
        local.close()
    assert (here.engine, there.engine) == ("tokens", "text")
    for a, b in zip(here.prompts, there.prompts, strict=True):
        assert a.target_token_ids == b.target_token_ids
        np.testing.assert_allclose(b.full, a.full, atol=1e-4)
        np.testing.assert_allclose(b.token_attributions, a.token_attributions, atol=1e-4)
        assert b.prefix_attributions is not None and a.prefix_attributions is not None
        np.testing.assert_allclose(b.prefix_attributions, a.prefix_attributions, atol=1e-4)


def test_chat_mode_cannot_score(served: str) -> None:
    remote = OpenAIHTTPAdapter(
        OpenAIHTTPAdapter.Params(base_url=served, model="tinyrec", mode="chat")
    )
    assert not remote.supports("score")
    remote.close()


def test_an_endpoint_without_logprobs_is_a_clear_error() -> None:
    answer = {"choices": [{"text": "Muse\n", "logprobs": None}]}
    with pytest.raises(AdapterError, match=r"no log-probabilities for prompt 3.*echo"):
        parse_echo_logprobs(
            answer,
            json.dumps(answer),
            "http://x/v1/completions",
            prompt="a\n",
            continuation="b\n",
            index=2,
        )
