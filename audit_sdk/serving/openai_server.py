"""A small OpenAI-compatible server for any generator adapter (TinyRec included).

``audit-sdk serve --adapter NAME --params JSON --port N`` (or ``python -m
audit_sdk.serving.openai_server ...``) serves ``POST /v1/completions``,
``POST /v1/chat/completions`` and ``GET /v1/models`` on 127.0.0.1, so a model trained here can
be audited exactly like one behind vLLM or llama.cpp, and the HTTP adapter's tests talk to a
real server process. It is a standard-library ``ThreadingHTTPServer``: requests are handled
concurrently, calls into the model are serialized (models are rarely thread-safe). It is
meant for local use; it has no TLS.

``--api-key-env NAME`` makes the server require ``Authorization: Bearer <key>`` with the key
read from that environment variable (never from the command line, where ``ps`` shows it).

Test-only fault injection (``--fault``, repeatable), for exercising clients' error handling:

=========================  ====================================================================
``rate_limit:N[:S]``       the first N generation requests get HTTP 429 (``Retry-After: S``, 0)
``error500:N``             the next N generation requests get HTTP 500
``slow:S``                 every generation request waits S seconds before answering
``malformed``              answers 200 with a truncated JSON body
``missing_fields``         answers 200 with JSON that has no ``choices``
``non_utf8``               answers 200 with bytes that are not UTF-8
=========================  ====================================================================

``GET /_audit_sdk/stats`` reports request counts and the most requests ever in flight at once.

Bounded: a request body is at most ``MAX_BODY_BYTES`` (a ``Content-Length`` that is missing,
negative or too large is refused before anything is read) and must arrive within
``REQUEST_DEADLINE_S``; an idle or stalled connection is closed after ``IDLE_TIMEOUT_S``; at
most ``MAX_CONNECTIONS`` connections are served at once (the next gets HTTP 503). A body
that is not JSON, nests deeper than ``MAX_JSON_DEPTH`` or holds a non-finite number is a 400.
"""

from __future__ import annotations

import argparse
import hmac
import importlib
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import ValidationError

from audit_sdk.config import format_validation_error
from audit_sdk.errors import AdapterError, AuditSDKError, ConfigError
from audit_sdk.interfaces.adapter import GenerationParams, GeneratorAdapter
from audit_sdk.serving.request_limits import (
    IDLE_TIMEOUT_S,
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    REQUEST_DEADLINE_S,
    BoundedHTTPServer,
    HTTPRequestError,
    finite_float,
    json_depth_exceeds,
    number_field,
    reject_constant,
)

__all__ = ["FaultPlan", "OpenAICompatibleServer", "load_adapter", "main", "parse_fault"]

logger = logging.getLogger(__name__)


@dataclass
class FaultPlan:
    """Injected faults (tests only); see the module docstring."""

    rate_limit: int = 0
    retry_after_s: float = 0.0
    error500: int = 0
    slow_s: float = 0.0
    malformed: bool = False
    missing_fields: bool = False
    non_utf8: bool = False

    @property
    def any(self) -> bool:
        return bool(
            self.rate_limit
            or self.error500
            or self.slow_s
            or self.malformed
            or self.missing_fields
            or self.non_utf8
        )


def parse_fault(spec: str, plan: FaultPlan | None = None) -> FaultPlan:
    """Add one ``--fault`` spec (``rate_limit:3``, ``slow:0.5``, ``malformed``...) to ``plan``."""
    plan = plan if plan is not None else FaultPlan()
    name, _, rest = spec.partition(":")
    args = rest.split(":") if rest else []
    try:
        if name == "rate_limit" and 1 <= len(args) <= 2:
            plan.rate_limit = int(args[0])
            plan.retry_after_s = float(args[1]) if len(args) == 2 else 0.0
        elif name == "error500" and len(args) == 1:
            plan.error500 = int(args[0])
        elif name == "slow" and len(args) == 1:
            plan.slow_s = float(args[0])
        elif name in ("malformed", "missing_fields", "non_utf8") and not args:
            setattr(plan, name, True)
        else:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"unknown fault {spec!r}; use rate_limit:N[:SECONDS], error500:N, slow:SECONDS, "
            f"malformed, missing_fields or non_utf8."
        ) from None
    return plan


class OpenAICompatibleServer:
    """Serves one adapter's ``generate`` as an OpenAI-compatible API.

    ``start()`` runs it in a background thread and returns the base URL (``.../v1``);
    ``serve_forever()`` runs it in the calling thread; ``stop()`` shuts it down and closes
    the adapter. ``port=0`` picks a free port.
    """

    def __init__(
        self,
        adapter: GeneratorAdapter,
        *,
        model_name: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        self.adapter = adapter
        self.model_name = model_name or adapter.name
        self.host = host
        self.port = port
        self._api_key = api_key
        self.faults = faults or FaultPlan()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._model_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._requests = 0
        self._generation_requests = 0
        self._in_flight = 0
        self._max_in_flight = 0

    # -- lifecycle --------------------------------------------------------------------------
    def _bind(self) -> ThreadingHTTPServer:
        if self._httpd is None:
            handler = type("Handler", (_Handler,), {"app": self})
            httpd = BoundedHTTPServer((self.host, self.port), handler)
            httpd.daemon_threads = True
            self._httpd = httpd
            self.port = httpd.server_address[1]
        return self._httpd

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> str:
        httpd = self._bind()
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.1,), name="openai-server", daemon=True
        )
        self._thread.start()
        return self.url

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._bind().serve_forever(poll_interval=poll_interval)

    def stop(self) -> None:
        if self._httpd is not None:
            if self._thread is not None:
                self._httpd.shutdown()
                self._thread.join(timeout=10)
            self._httpd.server_close()
            self._httpd = None
        self.adapter.close()

    def __enter__(self) -> OpenAICompatibleServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- state ------------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        with self._stats_lock:
            return {
                "requests": self._requests,
                "generation_requests": self._generation_requests,
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
            }

    def _count_request(self) -> None:
        with self._stats_lock:
            self._requests += 1

    def _enter_generation(self) -> int:
        with self._stats_lock:
            self._generation_requests += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            return self._generation_requests

    def _leave_generation(self) -> None:
        with self._stats_lock:
            self._in_flight -= 1

    def authorized(self, header: str | None) -> bool:
        if self._api_key is None:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[len("Bearer ") :].encode(), self._api_key.encode())

    def generate(self, prompts: list[str], params: GenerationParams) -> list[str]:
        with self._model_lock:
            outputs = self.adapter.generate(prompts, params=params)
        if len(outputs) != len(prompts) or not all(isinstance(o, str) for o in outputs):
            raise AdapterError(
                f"adapter {self.adapter.name!r} returned {len(outputs)} outputs for "
                f"{len(prompts)} prompts (or a non-string)."
            )
        return list(outputs)


def _generation_params(body: dict[str, Any]) -> GenerationParams:
    temperature = number_field(body, "temperature", 0.8)
    top_p = number_field(body, "top_p", 1.0)
    max_tokens = number_field(body, "max_tokens", 96)
    seed = number_field(body, "seed", 0)
    if not 0 <= temperature <= 2 or not 0 < top_p <= 1 or max_tokens < 1:
        raise HTTPRequestError(
            400, "temperature must be in [0, 2], top_p in (0, 1], max_tokens >= 1."
        )
    return GenerationParams(
        temperature=temperature, top_p=top_p, max_new_tokens=int(max_tokens), seed=int(seed)
    )


def _chat_prompt(messages: Any) -> str:
    if not isinstance(messages, list) or not messages:
        raise HTTPRequestError(400, "'messages' must be a non-empty list.")
    parts = []
    for message in messages:
        if not isinstance(message, dict):
            raise HTTPRequestError(400, "each message must be an object with 'role' and 'content'.")
        content = message.get("content")
        if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        if not isinstance(content, str):
            raise HTTPRequestError(400, "each message needs a string 'content'.")
        parts.append(content)
    return "\n\n".join(parts)


class _Handler(BaseHTTPRequestHandler):
    app: OpenAICompatibleServer
    protocol_version = "HTTP/1.1"
    server_version = "audit-sdk-openai-server"
    timeout = IDLE_TIMEOUT_S  # socket timeout: a stalled connection is closed

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    # -- responses --------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"), headers)

    def _send_error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        self._send_json(status, {"error": {"message": message, "type": kind, "code": status}})

    def _read_body(self) -> dict[str, Any]:
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise HTTPRequestError(411, "a Content-Length header is required.")
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise HTTPRequestError(411, "chunked bodies are not supported; send a Content-Length.")
        text = length_header.strip()
        if not text.isdigit():
            self.close_connection = True
            raise HTTPRequestError(400, "Content-Length must be a non-negative integer.")
        length = int(text)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise HTTPRequestError(413, f"request body over {MAX_BODY_BYTES} bytes.")
        raw = self._read_exactly(length)
        try:
            decoded = raw.decode("utf-8")
            if json_depth_exceeds(decoded, MAX_JSON_DEPTH):
                raise HTTPRequestError(400, f"the request body nests deeper than {MAX_JSON_DEPTH}.")
            body = json.loads(decoded, parse_constant=reject_constant, parse_float=finite_float)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise HTTPRequestError(400, f"the request body is not UTF-8 JSON ({exc}).") from None
        except RecursionError:
            raise HTTPRequestError(400, "the request body nests too deeply.") from None
        if not isinstance(body, dict):
            raise HTTPRequestError(400, "the request body must be a JSON object.")
        return body

    def _read_exactly(self, length: int) -> bytes:
        """``length`` bytes of body, all within ``REQUEST_DEADLINE_S`` (a client that trickles
        its body gets a 408)."""
        deadline = time.monotonic() + REQUEST_DEADLINE_S
        chunks: list[bytes] = []
        left = length
        while left > 0:
            if time.monotonic() > deadline:
                self.close_connection = True
                raise HTTPRequestError(
                    408, f"the body did not arrive within {REQUEST_DEADLINE_S:g} s."
                )
            chunk = self.rfile.read1(min(left, 65536))
            if not chunk:
                self.close_connection = True
                raise HTTPRequestError(400, "the body ended before Content-Length bytes.")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _check_auth(self) -> None:
        if not self.app.authorized(self.headers.get("Authorization")):
            raise HTTPRequestError(401, "missing or invalid API key.", kind="authentication_error")

    # -- routes -----------------------------------------------------------------------------
    def do_GET(self) -> None:
        self.app._count_request()
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            if path in ("/health", "/v1/health"):
                self._send_json(200, {"status": "ok"})
            elif path == "/_audit_sdk/stats":
                self._send_json(200, self.app.stats())
            elif path == "/v1/models":
                self._check_auth()
                self._send_json(
                    200,
                    {
                        "object": "list",
                        "data": [
                            {
                                "id": self.app.model_name,
                                "object": "model",
                                "created": 0,
                                "owned_by": "audit-sdk",
                            }
                        ],
                    },
                )
            else:
                raise HTTPRequestError(404, f"no route GET {path}.")
        except HTTPRequestError as exc:
            self._send_error(exc.status, exc.message, exc.kind)

    def do_POST(self) -> None:
        self.app._count_request()
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            body = self._read_body()
            if path not in ("/v1/completions", "/v1/chat/completions"):
                raise HTTPRequestError(404, f"no route POST {path}.")
            self._check_auth()
        except HTTPRequestError as exc:
            self._send_error(exc.status, exc.message, exc.kind)
            return
        number = self.app._enter_generation()
        try:
            self._generation(path, body, number)
        except HTTPRequestError as exc:
            self._send_error(exc.status, exc.message, exc.kind)
        except AuditSDKError as exc:  # the adapter rejected this input: retrying won't help
            self._send_error(400, f"the model rejected the request: {exc}")
        except Exception as exc:  # a model bug must not kill the server
            logger.exception("generation failed")
            self._send_error(500, f"the model failed: {type(exc).__name__}: {exc}", "server_error")
        finally:
            self.app._leave_generation()

    def _generation(self, path: str, body: dict[str, Any], number: int) -> None:
        faults = self.app.faults
        if faults.slow_s:
            time.sleep(faults.slow_s)
        if number <= faults.rate_limit:
            self._send(
                429,
                json.dumps(
                    {
                        "error": {
                            "message": "rate limit reached (injected fault)",
                            "type": "rate_limit_error",
                            "code": 429,
                        }
                    }
                ).encode(),
                {"Retry-After": f"{faults.retry_after_s:g}"},
            )
            return
        if number <= faults.rate_limit + faults.error500:
            raise HTTPRequestError(500, "internal error (injected fault)", kind="server_error")
        if faults.malformed:
            self._send(200, b'{"id": "cmpl-1", "choices": [{"text": "Their taste')
            return
        if faults.missing_fields:
            self._send(200, b'{"id": "cmpl-1", "object": "text_completion", "model": "x"}')
            return
        if faults.non_utf8:
            self._send(200, b'{"choices": [{"text": "\xff\xfe\xfa broken"}]}')
            return

        model = body.get("model")
        if model is not None and model != self.app.model_name:
            raise HTTPRequestError(
                404,
                f"model {model!r} not found; this server serves {self.app.model_name!r}.",
                kind="not_found_error",
            )
        if body.get("stream"):
            raise HTTPRequestError(400, "streaming is not supported; send stream=false.")
        if body.get("n", 1) not in (1, None):
            raise HTTPRequestError(400, "only n=1 is supported.")
        params = _generation_params(body)
        chat = path == "/v1/chat/completions"
        if chat:
            prompts = [_chat_prompt(body.get("messages"))]
        else:
            prompt = body.get("prompt")
            if isinstance(prompt, str):
                prompts = [prompt]
            elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
                prompts = list(prompt)
            else:
                raise HTTPRequestError(
                    400, "'prompt' must be a string or a non-empty list of strings."
                )
        outputs = self.app.generate(prompts, params)
        created = int(time.time())
        if chat:
            payload = {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": created,
                "model": self.app.model_name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": outputs[0]},
                        "finish_reason": "stop",
                    }
                ],
            }
        else:
            payload = {
                "id": f"cmpl-{uuid.uuid4().hex[:24]}",
                "object": "text_completion",
                "created": created,
                "model": self.app.model_name,
                "choices": [
                    {"index": i, "text": text, "finish_reason": "stop", "logprobs": None}
                    for i, text in enumerate(outputs)
                ],
            }
        self._send_json(200, payload)


# -- command line --------------------------------------------------------------------------
def load_adapter(spec: str, params: dict[str, Any] | None = None) -> GeneratorAdapter:
    """An adapter by registered name (``template_writer``) or class path
    (``package.module:ClassName``), with ``params`` validated against its ``Params``."""
    if ":" in spec:
        module_name, _, class_name = spec.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot load adapter class {spec!r}: {exc}.") from None
        if not (isinstance(cls, type) and issubclass(cls, GeneratorAdapter)):
            raise ConfigError(f"{spec!r} is not a GeneratorAdapter subclass.")
    else:
        from audit_sdk.plugin_host import get_plugin_host

        cls = get_plugin_host().get("adapter", spec).cls
    try:
        validated = cls.Params.model_validate(params or {})
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(exc, source=f"adapter {cls.name!r} params", model=cls.Params)
        ) from None
    adapter: GeneratorAdapter = cls(validated)
    if not adapter.supports("generate"):
        raise ConfigError(f"adapter {cls.name!r} cannot generate text, so it cannot be served.")
    return adapter


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number: use 0-65535 (0: any free)")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m audit_sdk.serving.openai_server",
        description="Serve a generator adapter as an OpenAI-compatible API on 127.0.0.1.",
    )
    parser.add_argument("--adapter", required=True, help="registered name or package.module:Class")
    parser.add_argument("--params", default="{}", help="the adapter's parameters, as JSON")
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8000, help="port (0: a free one)")
    parser.add_argument("--model-name", default=None, help="the model id clients send")
    parser.add_argument(
        "--api-key-env", default=None, help="require the API key held in this env variable"
    )
    parser.add_argument(
        "--fault", action="append", default=[], help="test-only fault injection (repeatable)"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        try:
            params = json.loads(args.params)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--params is not valid JSON: {exc}.") from None
        if not isinstance(params, dict):
            raise ConfigError("--params must be a JSON object.")
        api_key = None
        if args.api_key_env:
            api_key = os.environ.get(args.api_key_env)
            if not api_key:
                raise ConfigError(
                    f"--api-key-env {args.api_key_env}: that environment variable is not set."
                )
        faults = FaultPlan()
        for spec in args.fault:
            parse_fault(spec, faults)
        adapter = load_adapter(args.adapter, params)
        server = OpenAICompatibleServer(
            adapter,
            model_name=args.model_name,
            host=args.host,
            port=args.port,
            api_key=api_key,
            faults=faults,
        )
        try:
            server._bind()
        except (OSError, OverflowError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(f"cannot listen on {args.host}:{args.port}: {reason}.") from None
    except AuditSDKError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code

    def _stop(signum: int, frame: Any) -> None:
        httpd = server._httpd
        if httpd is not None:  # shutdown() waits for serve_forever, so not from this thread
            threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: serving on {args.host}, not the loopback interface; this server has "
            f"no TLS, so put it behind a proxy before exposing it.",
            file=sys.stderr,
        )
    note = f" with injected faults {args.fault}" if faults.any else ""
    print(
        f"audit-sdk: serving adapter {adapter.name!r} as model {server.model_name!r} "
        f"at {server.url}{note}",
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
