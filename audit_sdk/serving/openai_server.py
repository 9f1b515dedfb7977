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
from collections.abc import Sequence
from http.server import ThreadingHTTPServer
from typing import Any

from pydantic import ValidationError

from audit_sdk.config import format_validation_error
from audit_sdk.errors import AdapterError, AuditSDKError, ConfigError
from audit_sdk.interfaces.adapter import GenerationParams, GeneratorAdapter
from audit_sdk.serving._fault_injection import FaultPlan, parse_fault
from audit_sdk.serving._request_handler import _Handler
from audit_sdk.serving.request_limits import BoundedHTTPServer

__all__ = ["FaultPlan", "OpenAICompatibleServer", "load_adapter", "main", "parse_fault"]


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

    def prompt_logprobs(self, prompts: list[str], *, token_ids: bool) -> list[dict[str, Any]]:
        """Echoed prompt-token log-probabilities (:mod:`._prompt_logprobs`)."""
        from audit_sdk.serving._prompt_logprobs import prompt_logprobs

        with self._model_lock:
            return prompt_logprobs(self.adapter, prompts, token_ids=token_ids)


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
