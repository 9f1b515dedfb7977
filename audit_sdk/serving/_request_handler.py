"""The OpenAI-compatible server's HTTP handler: bounded body reading, authentication, the
``GET``/``POST`` routes, injected faults and the completion responses.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from audit_sdk.errors import AuditSDKError
from audit_sdk.serving._completion_requests import _chat_prompt, _generation_params
from audit_sdk.serving.request_limits import (
    IDLE_TIMEOUT_S,
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    REQUEST_DEADLINE_S,
    HTTPRequestError,
    finite_float,
    json_depth_exceeds,
    reject_constant,
)

if TYPE_CHECKING:
    from audit_sdk.serving.openai_server import OpenAICompatibleServer

# the server's logger, so its records keep the name they had before the handler moved here
logger = logging.getLogger("audit_sdk.serving.openai_server")


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
        if body.get("echo") and path != "/v1/chat/completions":
            self._send_json(200, self._echo_logprobs(body))
            return
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

    def _echo_logprobs(self, body: dict[str, Any]) -> dict[str, Any]:
        """``echo`` with ``logprobs`` and ``max_tokens: 0``: the prompt tokens' log-probabilities
        (:mod:`audit_sdk.serving._prompt_logprobs`)."""
        if body.get("max_tokens", 0) not in (0, None) or body.get("logprobs") is None:
            raise HTTPRequestError(
                400, "echo is supported for scoring only: send max_tokens 0 and logprobs 0."
            )
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if (
            not isinstance(prompts, list)
            or not prompts
            or not all(isinstance(p, str) for p in prompts)
        ):
            raise HTTPRequestError(400, "'prompt' must be a string or a non-empty list of strings.")
        token_ids = bool(body.get("return_tokens_as_token_ids"))
        logprobs = self.app.prompt_logprobs(prompts, token_ids=token_ids)
        return {
            "id": f"cmpl-{uuid.uuid4().hex[:24]}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.app.model_name,
            "choices": [
                {"index": i, "text": text, "finish_reason": "length", "logprobs": lp}
                for i, (text, lp) in enumerate(zip(prompts, logprobs, strict=True))
            ],
        }
