"""Fault suite, secrets: canaries planted in the environment, in URLs and in a plugin's
``SecretStr`` parameter never reach any file the run wrote, stdout, stderr or the logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from typer.testing import CliRunner

from audit_sdk.cli import app
from audit_sdk.interfaces import Detector
from audit_sdk.interfaces._params import PluginParams
from audit_sdk.plugin_host import PluginSettings, get_plugin_host
from audit_sdk.redaction import (
    REDACTED,
    clear_secrets,
    install_log_redaction,
    redact_data,
    redact_text,
    register_params_secrets,
    register_secret,
)
from audit_sdk.report_model import Finding
from audit_sdk.testing import inline_plugin
from tests.fault_helpers import MisbehavingServer, send

runner = CliRunner()


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """The registry is process-wide: secrets planted here must not redact other tests."""
    yield
    clear_secrets()


KEY = "sk-canary-KEY-0123456789"
PASSWORD = "canary-PASSWORD-42"
QUERY_KEY = "canary-QUERY-77"
SECRET_PARAM = "canary-SECRETSTR-99"
CANARIES = (KEY, PASSWORD, QUERY_KEY, SECRET_PARAM)


class WebhookParams(PluginParams):
    webhook: SecretStr  # not credential-named: only its type marks it secret


class WebhookDetector(Detector):
    name = "webhook_detector"
    description = "holds a SecretStr parameter and mentions it in its explanation"
    Params = WebhookParams

    def detect(self, context: Any) -> list[Finding]:
        assert isinstance(self.params, WebhookParams)
        secret = self.params.webhook.get_secret_value()
        logging.getLogger("webhook").warning("posting to %s", secret)
        return [
            Finding(
                detector=self.name,
                metric="posted",
                estimate=1.0,
                status="pass",
                explanation=f"posted with {secret}",
                details={"url": f"https://hooks.example/{secret}"},
            )
        ]


def _echo_credentials(handler: BaseHTTPRequestHandler, body: bytes) -> None:
    """A server that echoes the request's credentials in its error text (some do)."""
    message = f"rejected {handler.headers.get('Authorization')} for {handler.path}"
    status = 500 if "retry" not in handler.path else 400
    send(handler, status, json.dumps({"error": {"message": message}}).encode())


def _config(tmp_path: Path, url: str) -> Path:
    host = url.removeprefix("http://")
    base_url = f"http://bob:{PASSWORD}@{host}?api_key={QUERY_KEY}"
    config = tmp_path / "audit.yaml"
    config.write_text(
        f"""\
title: secrets
dataset: {{loader: synthetic, params: {{n_users: 60, n_artists: 40, seed: 1}}}}
subject: {{adapter: popularity}}
baselines: [popularity]
detectors:
  - {{name: profile_fidelity}}
  - {{name: webhook_detector, params: {{webhook: {SECRET_PARAM}}}}}
stats: {{bootstrap_resamples: 50}}
profiles:
  enabled: true
  max_users: 4
  cache: {tmp_path / "cache.sqlite"}
  generators:
    - name: remote
      adapter: openai_http
      params: {{base_url: "{base_url}", model: m, api_key_env: CANARY_API_KEY,
                max_retries: 1, backoff_base_s: 0}}
outputs: {{dir: {tmp_path / "out"}}}
"""
    )
    return config


def test_no_canary_reaches_any_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARY_API_KEY", KEY + "\n")  # pasted with a trailing newline
    host = get_plugin_host(
        PluginSettings.resolve(allow=None, block=[], autoload=True, strict=False)
    )
    with MisbehavingServer(_echo_credentials) as url, inline_plugin(host, WebhookDetector):
        result = runner.invoke(app, ["run", str(_config(tmp_path, url)), "--quiet"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    assert (out / "report.json").exists()
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "audit.yaml"]
    assert {p.name for p in written} >= {"report.json", "report.html", "junit.xml", "summary.md"}
    texts = {str(p): p.read_bytes().decode("utf-8", errors="replace") for p in written}
    texts["stdout"] = result.stdout
    texts["stderr"] = result.stderr
    for where, text in texts.items():
        for canary in CANARIES:
            assert canary not in text, f"{canary} leaked into {where}"
    report = json.loads((out / "report.json").read_text())
    # The failures are still reported, with the secrets replaced.
    generation = [f for f in report["findings"] if f["detector"] == "profile_generation"]
    assert generation and REDACTED in generation[0]["explanation"]
    webhook = [f for f in report["findings"] if f["detector"] == "webhook_detector"]
    assert webhook[0]["explanation"] == f"posted with {REDACTED}"


# -- the layer itself ----------------------------------------------------------------------------

_secret_chars = st.characters(codec="ascii", categories=("L", "N"), include_characters="-_.+/=")


@settings(max_examples=150, deadline=None)
@given(
    secret=st.text(alphabet=_secret_chars, min_size=8, max_size=40),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
    newline=st.booleans(),
)
def test_a_registered_secret_never_survives_redaction(
    secret: str, before: str, after: str, newline: bool
) -> None:
    register_secret(secret + ("\n" if newline else ""))
    try:
        assert secret not in redact_text(before + secret + after)
        data = {"a": [before + secret, {"b": secret + after}], "n": 3}
        assert secret not in json.dumps(redact_data(data))
    finally:
        clear_secrets()


@settings(max_examples=100, deadline=None)
@given(
    user=st.text(alphabet=_secret_chars, min_size=1, max_size=12),
    password=st.text(alphabet=_secret_chars, min_size=1, max_size=20),
    name=st.sampled_from(["api_key", "apikey", "token", "access_token", "key", "password"]),
    value=st.text(alphabet=_secret_chars, min_size=1, max_size=20),
)
def test_url_credentials_never_survive(user: str, password: str, name: str, value: str) -> None:
    url = f"see https://{user}:{password}@api.example.com/v1?model=m&{name}={value}#x"
    redacted = redact_text(url)
    assert f":{password}@" not in redacted
    assert f"{name}={value}" not in redacted
    assert "api.example.com/v1?model=m" in redacted  # what is not secret stays readable


def test_params_secrets_cover_secretstr_env_names_and_credential_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOME_VAR_FOR_KEY", "canary-from-env-var-1")
    register_params_secrets(
        {
            "api_key_env": "SOME_VAR_FOR_KEY",
            "nested": [WebhookParams(webhook=SecretStr("canary-secret-field-2"))],
            "client_secret": "canary-literal-3",
        }
    )
    text = "canary-from-env-var-1 canary-secret-field-2 canary-literal-3"
    assert "canary" not in redact_text(text)
    kept = {"api_key_env": "OPENAI_API_KEY", "max_new_tokens": 96, "key": "group/metric"}
    assert redact_data(kept) == kept  # names of variables and ordinary keys stay


def test_log_records_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    register_secret("canary-in-a-log-record")
    with caplog.at_level(logging.WARNING):
        logging.getLogger("x").warning("token %s", "canary-in-a-log-record")
    assert "canary-in-a-log-record" not in caplog.text
    assert REDACTED in caplog.text
