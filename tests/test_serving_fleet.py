"""A serving fleet: the OpenAI-compatible adapter spreads prompts over several base URLs."""

from __future__ import annotations

import socket

import pytest
from audit_sdk.adapters.openai_http_adapter import OpenAIHTTPAdapter
from audit_sdk.adapters.template_profile_writer import (
    TemplateProfileWriter,
    write_template_profile,
)
from pydantic import ValidationError

from audit_sdk.interfaces import GenerationParams
from audit_sdk.profile_prompts import render_profile_prompts
from audit_sdk.serving.openai_server import OpenAICompatibleServer

from .profile_fixtures import synthetic_samples

MODEL = "template_writer"


def prompts_and_profiles(n: int) -> tuple[list[str], list[str]]:
    world, samples = synthetic_samples()
    sample = samples["365d"]
    prompts = render_profile_prompts(sample, world.catalog)
    users = list(prompts)[:n]
    expected = [
        write_template_profile(sample[sample["user_id"] == u], world.catalog) for u in users
    ]
    return [prompts[u] for u in users], expected


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def fleet(*urls: str, **extra: object) -> OpenAIHTTPAdapter:
    return OpenAIHTTPAdapter(
        OpenAIHTTPAdapter.Params(
            base_urls=list(urls),
            model=MODEL,
            mode="completions",
            api_key_env=None,
            backoff_base_s=0.0,
            **extra,
        )
    )


def test_prompts_are_spread_over_every_replica() -> None:
    prompts, expected = prompts_and_profiles(10)
    with (
        OpenAICompatibleServer(TemplateProfileWriter()) as one,
        OpenAICompatibleServer(TemplateProfileWriter()) as two,
    ):
        adapter = fleet(one.url, two.url)
        try:
            assert adapter.generate(prompts, params=GenerationParams()) == expected
        finally:
            adapter.close()
        assert one.stats()["generation_requests"] == 5
        assert two.stats()["generation_requests"] == 5


def test_a_replica_that_is_down_costs_a_retry_not_the_prompt() -> None:
    prompts, expected = prompts_and_profiles(6)
    with OpenAICompatibleServer(TemplateProfileWriter()) as live:
        adapter = fleet(closed_port_url(), live.url, max_retries=1)
        try:
            assert adapter.generate(prompts, params=GenerationParams()) == expected
        finally:
            adapter.close()
        assert live.stats()["generation_requests"] == 6


def test_a_fleet_is_one_model_whatever_the_order_of_its_urls() -> None:
    a, b = "http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1"
    assert fleet(a, b).fingerprint() == fleet(b, a).fingerprint()
    assert fleet(a, b).fingerprint() != fleet(a).fingerprint()
    assert fleet(a, b).describe()["base_urls"] == [a, b]


@pytest.mark.parametrize(
    ("urls", "message"),
    [
        ([], "is empty"),
        (["http://a:1/v1", "http://a:1/v1/"], "same URL twice"),
        (["ftp://a"], "http"),
    ],
)
def test_bad_fleets_are_refused(urls: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OpenAIHTTPAdapter.Params(base_urls=urls, model=MODEL)
