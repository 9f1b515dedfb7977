"""The OpenAI-compatible HTTP adapter against a real server process on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from audit_sdk.adapters import openai_http_adapter as http_module
from audit_sdk.adapters.openai_http_adapter import OpenAIHTTPAdapter
from audit_sdk.adapters.template_profile_writer import (
    TemplateProfileWriter,
    write_template_profile,
)
from pydantic import ValidationError

from audit_sdk.errors import AdapterError
from audit_sdk.generation_cache import GenerationCache
from audit_sdk.interfaces import GenerationParams
from audit_sdk.plugin_host import PluginHost, PluginSettings
from audit_sdk.profile_pipeline import generate_profiles
from audit_sdk.profile_prompts import render_profile_prompts
from audit_sdk.serving import openai_server
from audit_sdk.serving.openai_server import OpenAICompatibleServer

from .profile_fixtures import synthetic_samples

SERVED = "audit_sdk.adapters.template_profile_writer:TemplateProfileWriter"
MODEL = "template_writer"
SECRET = "sk-test-9f2c4e1d7b5a3c8e"


@contextmanager
def openai_server_process(
    *args: str, env: dict[str, str] | None = None, adapter: str = SERVED
) -> Iterator[str]:
    """Start the server as a real subprocess on a free port; yield its base URL; always stop
    it (SIGTERM, then SIGKILL)."""
    command = [
        sys.executable,
        "-m",
        "audit_sdk.serving.openai_server",
        "--adapter",
        adapter,
        "--port",
        "0",
        *args,
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        try:
            first = lines.get(timeout=60)
        except queue.Empty:
            raise AssertionError("the server did not start within 60 s") from None
        assert " at http://127.0.0.1:" in first, first
        url = first.split(" at ")[1].split()[0]
        httpx.get(url.removesuffix("/v1") + "/health", timeout=10).raise_for_status()
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def server_stats(url: str) -> dict[str, int]:
    return httpx.get(url.removesuffix("/v1") + "/_audit_sdk/stats", timeout=10).json()


def adapter_for(url: str, **settings: object) -> OpenAIHTTPAdapter:
    values: dict[str, object] = {"base_url": url, "model": MODEL, "backoff_base_s": 0.01}
    values.update(settings)
    return OpenAIHTTPAdapter(OpenAIHTTPAdapter.Params.model_validate(values))


def some_prompts(n: int) -> tuple[list[str], list[str]]:
    """``n`` profile prompts and their template profiles."""
    world, samples = synthetic_samples()
    sample = samples["365d"]
    prompts = render_profile_prompts(sample, world.catalog)
    users = list(prompts)[:n]
    expected = [
        write_template_profile(sample[sample["user_id"] == user], world.catalog) for user in users
    ]
    return [prompts[user] for user in users], expected


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with openai_server_process() as url:
        yield url


# -- it works --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["chat", "completions"])
def test_both_endpoints_return_the_served_models_output(server: str, mode: str) -> None:
    prompts, expected = some_prompts(6)
    adapter = adapter_for(server, mode=mode)
    try:
        assert adapter.generate(prompts, params=GenerationParams(seed=2)) == expected
    finally:
        adapter.close()
    models = httpx.get(f"{server}/models", timeout=10).json()
    assert [m["id"] for m in models["data"]] == [MODEL]


def test_concurrency_never_exceeds_the_limit() -> None:
    prompts, expected = some_prompts(12)
    with openai_server_process("--fault", "slow:0.15") as url:
        adapter = adapter_for(url, max_concurrency=3)
        outputs = adapter.generate(prompts, params=GenerationParams())
        adapter.close()
        stats = server_stats(url)
    assert outputs == expected  # in prompt order
    assert stats["generation_requests"] == 12
    assert 2 <= stats["max_in_flight"] <= 3


# -- failures: clear errors, never a hang ----------------------------------------------------
def test_endpoint_down_names_the_url_and_what_to_check() -> None:
    port = free_port()
    adapter = adapter_for(f"http://127.0.0.1:{port}/v1", max_retries=1)
    with pytest.raises(AdapterError) as info:
        adapter.generate(["- A — B [rock; US; 1990; 1 play]"], params=GenerationParams())
    message = str(info.value)
    assert f"cannot connect to http://127.0.0.1:{port}/v1/chat/completions" in message
    assert "connection refused" in message
    assert "Is the server running" in message
    assert "could not connect in 2 attempt(s)" in message


def test_a_slow_server_times_out_with_the_timeout_named() -> None:
    prompts, _ = some_prompts(1)
    with openai_server_process("--fault", "slow:5") as url:
        adapter = adapter_for(url, timeout_s=0.3, max_retries=1)
        with pytest.raises(AdapterError) as info:
            adapter.generate(prompts, params=GenerationParams())
        adapter.close()
    message = str(info.value)
    assert "timed out on 2 attempt(s)" in message
    assert "no answer within 0.3 s (read timeout, timeout_s)" in message
    assert "Raise timeout_s" in message


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("malformed", r"is not valid JSON \(.*\): '\{\"id\": \"cmpl-1\", \"choices\""),
        ("missing_fields", r"lacks choices\[0\]\.message\.content \(a string\): '\{\"id\""),
        ("non_utf8", r"is not UTF-8 text: byte 0xff at position \d+"),
    ],
)
def test_bad_responses_are_clear_errors(fault: str, expected: str) -> None:
    prompts, _ = some_prompts(1)
    with openai_server_process("--fault", fault) as url:
        adapter = adapter_for(url)
        with pytest.raises(AdapterError, match=expected):
            adapter.generate(prompts, params=GenerationParams())
        adapter.close()
        assert server_stats(url)["generation_requests"] == 1  # not retried


def test_rate_limiting_is_retried_honouring_retry_after(caplog: pytest.LogCaptureFixture) -> None:
    prompts, expected = some_prompts(1)
    caplog.set_level(logging.WARNING, logger=http_module.__name__)
    with openai_server_process("--fault", "rate_limit:2:0.05") as url:
        adapter = adapter_for(url, max_retries=3)
        assert adapter.generate(prompts, params=GenerationParams()) == expected
        adapter.close()
        assert server_stats(url)["generation_requests"] == 3
    retries = [r.getMessage() for r in caplog.records if r.name == http_module.__name__]
    assert len(retries) == 2
    assert all("rate limited (HTTP 429)" in m for m in retries)
    assert all("retrying in 0.05 s (Retry-After)" in m for m in retries)


def test_persistent_rate_limiting_gives_up_after_the_retries() -> None:
    prompts, _ = some_prompts(1)
    with openai_server_process("--fault", "rate_limit:1000") as url:
        adapter = adapter_for(url, max_retries=2)
        with pytest.raises(AdapterError, match=r"rate limited \(HTTP 429\) on all 3 attempts"):
            adapter.generate(prompts, params=GenerationParams())
        adapter.close()
        assert server_stats(url)["generation_requests"] == 3


def test_server_errors_are_retried_with_backoff() -> None:
    prompts, expected = some_prompts(2)
    with openai_server_process("--fault", "error500:2") as url:
        adapter = adapter_for(url, max_retries=2, max_concurrency=1)
        assert adapter.generate(prompts, params=GenerationParams()) == expected
        adapter.close()
        assert server_stats(url)["generation_requests"] == 4


def test_client_errors_are_not_retried(server: str) -> None:
    before = server_stats(server)["generation_requests"]
    adapter = adapter_for(server, model="no-such-model")
    with pytest.raises(
        AdapterError, match=r"HTTP 404: \"model 'no-such-model' not found.*Check base_url"
    ):
        adapter.generate(some_prompts(1)[0], params=GenerationParams())
    adapter.close()
    assert server_stats(server)["generation_requests"] == before + 1


def test_a_model_that_rejects_the_prompt_is_an_error_not_a_retry(server: str) -> None:
    adapter = adapter_for(server, mode="completions")
    with pytest.raises(AdapterError, match=r"HTTP 400.*no listening lines"):
        adapter.generate(["Write anything."], params=GenerationParams())
    adapter.close()


def test_a_failing_endpoint_yields_error_rows_in_the_pipeline() -> None:
    world, samples = synthetic_samples()
    adapter = adapter_for(f"http://127.0.0.1:{free_port()}/v1", max_retries=0)
    profiles = generate_profiles(
        {"30d": samples["30d"]}, world.catalog, {"remote": adapter}, batch_size=5
    )
    assert profiles["text"].isna().all()
    assert profiles["error"].str.contains("connection refused").all()


# -- the API key stays secret ----------------------------------------------------------------
def test_the_api_key_is_sent_but_never_written_anywhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    world, samples = synthetic_samples()
    server_env = {"AUDIT_SDK_TEST_SERVER_KEY": SECRET}
    with openai_server_process(
        "--api-key-env", "AUDIT_SDK_TEST_SERVER_KEY", "--fault", "rate_limit:1", env=server_env
    ) as url:
        monkeypatch.delenv("AUDIT_SDK_TEST_CLIENT_KEY", raising=False)
        adapter = adapter_for(url, api_key_env="AUDIT_SDK_TEST_CLIENT_KEY", max_retries=2)
        with pytest.raises(AdapterError) as missing:
            adapter.generate(some_prompts(1)[0], params=GenerationParams())
        assert "HTTP 401" in str(missing.value)
        assert "environment variable AUDIT_SDK_TEST_CLIENT_KEY" in str(missing.value)

        monkeypatch.setenv("AUDIT_SDK_TEST_CLIENT_KEY", "sk-wrong-0000")
        with pytest.raises(AdapterError, match="HTTP 401") as wrong:
            adapter.generate(some_prompts(1)[0], params=GenerationParams())
        assert "sk-wrong-0000" not in str(wrong.value)

        monkeypatch.setenv("AUDIT_SDK_TEST_CLIENT_KEY", SECRET)
        cache_path = tmp_path / "cache.sqlite"
        with GenerationCache(cache_path) as cache:
            profiles = generate_profiles(
                {"30d": samples["30d"]},
                world.catalog,
                {"remote": adapter, "local": TemplateProfileWriter()},
                cache=cache,
                batch_size=8,
            )
            rows = list(cache)
        adapter.close()

    assert profiles["error"].isna().all()
    remote = profiles[profiles["model"] == "remote"].set_index(["user_id", "window"])["text"]
    local = profiles[profiles["model"] == "local"].set_index(["user_id", "window"])["text"]
    assert remote.sort_index().tolist() == local.sort_index().tolist()

    assert any("rate limited" in r.getMessage() for r in caplog.records)  # logs were written
    places = {
        "describe()": json.dumps(adapter.describe()),
        "fingerprint()": adapter.fingerprint(),
        "params": adapter.params.model_dump_json(),
        "cache rows": repr(rows),
        "profiles": profiles.to_json(),
        "log records": caplog.text,
        "error messages": str(missing.value) + str(wrong.value),
    }
    for place, text in places.items():
        assert SECRET not in text, place
    for path in tmp_path.iterdir():  # the database, its WAL and shared-memory files
        assert SECRET.encode() not in path.read_bytes(), path.name
    assert adapter.describe() == {
        "adapter": "openai_http",
        "model": MODEL,
        "base_url": url,
        "mode": "chat",
    }


def test_credentials_in_the_url_stay_out_of_reports() -> None:
    adapter = adapter_for("http://user:hunter2@127.0.0.1:9/v1?token=abc")
    assert adapter.describe()["base_url"] == "http://127.0.0.1:9/v1"
    assert "hunter2" not in adapter.fingerprint()
    assert "abc" not in adapter.fingerprint()
    with pytest.raises(AdapterError) as info:
        adapter_for("http://user:hunter2@127.0.0.1:9/v1", max_retries=0).generate(
            ["x"], params=GenerationParams()
        )
    assert "hunter2" not in str(info.value)


# -- configuration ---------------------------------------------------------------------------
def test_params_are_validated() -> None:
    with pytest.raises(ValidationError, match="http:// or https://"):
        OpenAIHTTPAdapter.Params(base_url="localhost:8000", model="m")
    with pytest.raises(ValidationError, match="max_concurrency"):
        OpenAIHTTPAdapter.Params(model="m", max_concurrency=0)
    with pytest.raises(ValidationError, match="api_key"):
        OpenAIHTTPAdapter.Params.model_validate({"model": "m", "api_key": SECRET})


def test_fingerprint_separates_models_modes_and_system_prompts() -> None:
    base = adapter_for("http://127.0.0.1:8000/v1")
    others = [
        adapter_for("http://127.0.0.1:8001/v1"),
        adapter_for("http://127.0.0.1:8000/v1", model="other"),
        adapter_for("http://127.0.0.1:8000/v1", mode="completions"),
        adapter_for("http://127.0.0.1:8000/v1", system_prompt="Be terse."),
    ]
    assert len({a.fingerprint() for a in [base, *others]}) == 5
    assert base.fingerprint() == adapter_for("http://127.0.0.1:8000/v1/").fingerprint()


def test_adapter_registers_through_the_hook() -> None:
    host = PluginHost(PluginSettings(autoload=False))
    host.register_plugin(http_module, name="openai_http_adapter")
    assert host.get("adapter", "openai_http").cls is OpenAIHTTPAdapter


# -- the server itself -----------------------------------------------------------------------
def test_server_rejects_bad_requests_in_process() -> None:
    with OpenAICompatibleServer(TemplateProfileWriter(), api_key=SECRET) as app:
        base = app.url
        auth = {"Authorization": f"Bearer {SECRET}"}
        with httpx.Client(timeout=10) as client:
            assert client.get(f"{base}/models").status_code == 401
            assert client.get(f"{base}/models", headers=auth).status_code == 200
            post = f"{base}/completions"
            body = {"model": MODEL, "prompt": "x"}
            assert client.post(post, json={**body, "stream": True}, headers=auth).status_code == 400
            assert client.post(post, json={**body, "n": 2}, headers=auth).status_code == 400
            assert (
                client.post(post, json={**body, "temperature": "hot"}, headers=auth)
                .json()["error"]["message"]
                .startswith("'temperature' must be a number")
            )
            assert client.post(post, content=b"{nope", headers=auth).status_code == 400
            assert client.post(f"{base}/nowhere", json=body, headers=auth).status_code == 404
            many = client.post(post, json={**body, "prompt": some_prompts(3)[0]}, headers=auth)
            assert [c["text"] for c in many.json()["choices"]] == some_prompts(3)[1]
        assert app.stats()["requests"] == 8


def test_server_command_line_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert openai_server.main(["--adapter", SERVED, "--fault", "explode:1", "--port", "0"]) == 2
    assert "unknown fault 'explode:1'" in capsys.readouterr().err
    assert openai_server.main(["--adapter", "no_such_adapter", "--port", "0"]) == 2
    assert "no adapter named 'no_such_adapter'" in capsys.readouterr().err
    assert openai_server.main(["--adapter", SERVED, "--params", "[1]", "--port", "0"]) == 2
    assert "--params must be a JSON object" in capsys.readouterr().err
    code = openai_server.main(["--adapter", SERVED, "--api-key-env", "AUDIT_SDK_UNSET_VAR_X"])
    assert code == 2
    assert "AUDIT_SDK_UNSET_VAR_X: that environment variable is not set" in capsys.readouterr().err
