"""Fault suite, HTTP: a real misbehaving server on 127.0.0.1 cannot hang or flood the client,
and a misbehaving client cannot hang, flood or crash ``serve``."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from audit_sdk.adapters.openai_http_adapter import OpenAIHTTPAdapter, OpenAIHTTPParams
from audit_sdk.adapters.template_profile_writer import TemplateProfileWriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit_sdk.errors import AdapterError
from audit_sdk.interfaces import GenerationParams
from audit_sdk.serving import openai_server, request_limits
from audit_sdk.serving.openai_server import OpenAICompatibleServer
from tests.fault_helpers import MisbehavingServer, cli, completion, send

PARAMS = GenerationParams(temperature=0.0, top_p=1.0, max_new_tokens=8, seed=0)


def _adapter(url: str, **params: Any) -> OpenAIHTTPAdapter:
    settings = {"base_url": url, "model": "m", "max_retries": 0, "api_key_env": None, **params}
    return OpenAIHTTPAdapter(OpenAIHTTPParams(**settings))


def _finishes(fn: Any, guard_s: float = 60.0) -> BaseException | None:
    """Run ``fn`` in a thread; the exception it raised (None if it returned). Fails the test
    if it is still running after ``guard_s`` (a hang), which no correct run comes near."""
    box: dict[str, BaseException | None] = {"error": None}

    def target() -> None:
        try:
            fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(guard_s)
    assert not thread.is_alive(), "the call hung"
    return box["error"]


# -- the client ----------------------------------------------------------------------------------


def _trickle_body(handler: BaseHTTPRequestHandler, body: bytes) -> None:
    payload = completion("x" * 200)
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    for byte in payload:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(0.2)


def _trickle_headers(handler: BaseHTTPRequestHandler, body: bytes) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 2000:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(0.2)


@pytest.mark.parametrize("behaviour", [_trickle_body, _trickle_headers], ids=["body", "headers"])
def test_a_trickling_server_cannot_outlast_the_deadline(behaviour: Any) -> None:
    """Each byte arrives well within timeout_s, so only an overall deadline ends the call."""
    with MisbehavingServer(behaviour) as url:
        adapter = _adapter(url, timeout_s=5.0, deadline_s=1.5)
        error = _finishes(lambda: adapter.generate(["p"], params=PARAMS))
        adapter.close()
    assert isinstance(error, AdapterError), error
    assert "deadline_s" in str(error)


def _huge(handler: BaseHTTPRequestHandler, body: bytes) -> None:
    chunk = b"x" * 65536
    handler.send_response(200)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    for _ in range(200):  # 13 MB, no Content-Length
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    handler.wfile.write(b"0\r\n\r\n")


def _huge_declared(handler: BaseHTTPRequestHandler, body: bytes) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(500 * 1024 * 1024))
    handler.end_headers()
    handler.wfile.write(b"{")


@pytest.mark.parametrize("behaviour", [_huge, _huge_declared], ids=["streamed", "declared"])
def test_an_oversized_answer_is_refused_before_it_is_stored(behaviour: Any) -> None:
    with MisbehavingServer(behaviour) as url:
        adapter = _adapter(url, max_response_bytes=1024 * 1024)
        error = _finishes(lambda: adapter.generate(["p"], params=PARAMS))
        adapter.close()
    assert isinstance(error, AdapterError) and "max_response_bytes" in str(error), error


@pytest.mark.parametrize("status", [418, 301, 999])
def test_odd_statuses_are_one_adapter_error(status: int) -> None:
    with MisbehavingServer(lambda h, b: send(h, status, b"<html>teapot</html>")) as url:
        adapter = _adapter(url)
        error = _finishes(lambda: adapter.generate(["p"], params=PARAMS))
        adapter.close()
    assert isinstance(error, AdapterError), error


def test_a_key_with_a_trailing_newline_is_sent_stripped_and_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = "sk-canary-newline-5555"
    monkeypatch.setenv("FAULT_KEY", key + "\n")

    def echo(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        message = f"nope: {handler.headers.get('Authorization')!r}"
        send(handler, 401, json.dumps({"error": {"message": message}}).encode())

    with MisbehavingServer(echo) as url:
        server = url
        adapter = _adapter(server, api_key_env="FAULT_KEY")
        error = _finishes(lambda: adapter.generate(["p"], params=PARAMS))
        adapter.close()
    assert isinstance(error, AdapterError)
    assert key not in str(error) and "[redacted]" in str(error)


# -- serve ---------------------------------------------------------------------------------------


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    monkeypatch.setattr(openai_server._Handler, "timeout", 1.0)
    monkeypatch.setattr(request_limits.BoundedHTTPServer, "max_connections", 4)
    server = OpenAICompatibleServer(TemplateProfileWriter(), port=0)
    server.start()
    try:
        yield server.host, server.port
    finally:
        server.stop()


def _post(address: tuple[str, int], body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        connection.putrequest("POST", "/v1/completions", skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"{}", {"Content-Length": "-1"}, 400),
        (b"{}", {"Content-Length": "abc"}, 400),
        (b"", {"Content-Length": str(64 * 1024 * 1024)}, 413),
        (b'{"prompt": "p", "temperature": NaN}', {}, 400),
        (b'{"prompt": "p", "temperature": Infinity}', {}, 400),
        (b'{"prompt": "p", "top_p": 1e999}', {}, 400),
        (b'{"prompt": "p", "seed": 1' + b"0" * 400 + b"}", {}, 400),
        (b"[" * 100_000 + b"]" * 100_000, {}, 400),
        (b'{"prompt": ' + b'{"a": ' * 2000 + b"1" + b"}" * 2000 + b"}", {}, 400),
    ],
    ids=[
        "negative length",
        "text length",
        "over the cap",
        "NaN",
        "Infinity",
        "overflow",
        "huge int",
        "deep list",
        "deep object",
    ],
)
def test_hostile_requests_are_4xx_and_the_server_lives(
    served: tuple[str, int], body: bytes, headers: dict[str, str], status: int
) -> None:
    headers = {"Content-Length": str(len(body)), "Content-Type": "application/json", **headers}
    assert _post(served, body, headers)[0] == status
    assert _health(served) == 200  # and the server still answers


def _health(address: tuple[str, int]) -> int:
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_stalled_client_is_disconnected(served: tuple[str, int]) -> None:
    with socket.create_connection(served, timeout=30) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
        sock.settimeout(30)
        assert _finishes(lambda: sock.recv(1024), guard_s=30) is None  # closed by the server


def test_connections_over_the_limit_get_503_not_a_thread_each(served: tuple[str, int]) -> None:
    idle = [socket.create_connection(served, timeout=30) for _ in range(4)]
    try:
        time.sleep(0.3)  # let the server accept them (not a timed assertion)
        status, _ = _post(served, b'{"prompt": "p"}', {"Content-Length": "15"})
        assert status == 503
    finally:
        for sock in idle:
            sock.close()


def test_serve_on_an_impossible_port_is_one_message() -> None:
    result = cli("serve", "--adapter", "template_writer", "--port", "99999", timeout=60)
    assert result.returncode == 2
    assert "99999 is not a port number" in result.stderr
    assert "Traceback" not in result.stderr


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["prompt", "temperature", "top_p", "max_tokens", "seed", "n", "model", "x"]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_json_values | st.binary(max_size=64).map(lambda b: {"raw": b.hex()}))
def test_no_request_body_makes_serve_answer_500(body: Any) -> None:
    raw = json.dumps(body, allow_nan=True).encode()
    server = OpenAICompatibleServer(TemplateProfileWriter(), port=0)
    server.start()
    try:
        address = (server.host, server.port)
        status, answer = _post(address, raw, {"Content-Length": str(len(raw))})
        assert status < 500, answer
        assert _health(address) == 200
    finally:
        server.stop()
