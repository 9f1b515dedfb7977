"""A model behind an OpenAI-compatible HTTP API (vLLM, llama.cpp, Ollama, TGI, OpenAI...).

Requests go to ``{base_url}/chat/completions`` (``mode: chat``) or ``{base_url}/completions``
(``mode: completions``), one prompt per request, at most ``max_concurrency`` at a time. Each
request has a timeout; a 429 or 5xx answer, a timeout or a refused connection is retried at
most ``max_retries`` times, after an exponential backoff with full jitter (or the server's
``Retry-After``, capped at ``backoff_max_s``). Whatever still fails becomes an
:class:`~audit_sdk.errors.AdapterError` that says what happened and what to check.

Every prompt's call, retries and waits included, ends within ``deadline_s``: each read,
write and connect is given at most the time left (:mod:`audit_sdk.deadlines`), so a server
that trickles its answer cannot stretch it. An answer larger than ``max_response_bytes`` is
refused while it streams in, before it is stored anywhere.

The API key is read from the environment variable named by ``api_key_env`` when a request is
made (surrounding whitespace, such as a trailing newline, is dropped). It is never stored on
the adapter, and never appears in ``describe()``, ``fingerprint()``, cache keys, log records
or error messages: every message passes :func:`audit_sdk.redaction.redact_text`, which knows
the key.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import random
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, ClassVar

from audit_sdk.deadlines import deadline, remaining_s
from audit_sdk.errors import AdapterError, MissingCapabilityError
from audit_sdk.hookspecs import RegisterAdapter, hookimpl
from audit_sdk.interfaces._params import PluginParams
from audit_sdk.interfaces.adapter import (
    Capability,
    GenerationParams,
    GeneratorAdapter,
    TokenScores,
)
from audit_sdk.redaction import redact_text, register_secret

from ._deadline_transport import _deadline_spent, _deadline_transport
from ._openai_http_errors import (
    _RETRY_STATUS,
    _Cancelled,
    _connect_reason,
    _error_message,
    _excerpt,
    _public_url,
    _retry_after,
    _Retryable,
)
from ._openai_http_params import OpenAIHTTPParams
from ._openai_http_scoring import parse_echo_logprobs, scoring_body

if TYPE_CHECKING:
    import httpx

__all__ = ["OpenAIHTTPAdapter", "OpenAIHTTPParams"]

logger = logging.getLogger(__name__)


class OpenAIHTTPAdapter(GeneratorAdapter):
    """Generates text through an OpenAI-compatible server."""

    name = "openai_http"
    description = "A model behind an OpenAI-compatible HTTP API (chat or completions)."
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"generate", "score"})
    Params = OpenAIHTTPParams

    def __init__(self, params: PluginParams | None = None) -> None:
        super().__init__(params)
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    @property
    def _params(self) -> OpenAIHTTPParams:
        assert isinstance(self.params, OpenAIHTTPParams)
        return self.params

    # -- identity ---------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return self._endpoint_at(0)

    def _endpoint_at(self, turn: int) -> str:
        """The endpoint of the fleet's ``turn``-th root (in turn, wrapping around)."""
        roots = self._params.roots
        path = "chat/completions" if self._params.mode == "chat" else "completions"
        return f"{_public_url(roots[turn % len(roots)])}/{path}"

    def fingerprint(self) -> str:
        """Endpoint(s) and model name (and, when set, a hash of the system prompt); never the
        key. A fleet's roots are sorted: the order they are listed in does not matter."""
        params = self._params
        where = "|".join(sorted(_public_url(root) for root in params.roots))
        text = f"openai_http:{params.mode}:{where}:{params.model}"
        if params.system_prompt:
            digest = hashlib.sha256(params.system_prompt.encode("utf-8")).hexdigest()[:16]
            text += f":system={digest}"
        return text

    def describe(self) -> dict[str, Any]:
        params = self._params
        return {
            "adapter": self.name,
            "model": params.model,
            "base_url": _public_url(params.base_url),
            "mode": params.mode,
            **({"base_urls": [_public_url(r) for r in params.roots]} if params.base_urls else {}),
        }

    # -- HTTP -------------------------------------------------------------------------------
    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                try:
                    import httpx
                except ImportError as exc:
                    raise AdapterError(
                        "the openai_http adapter needs httpx: pip install 'audit-sdk[http]'."
                    ) from exc
                params = self._params
                limits = httpx.Limits(
                    max_connections=params.max_concurrency,
                    max_keepalive_connections=params.max_concurrency,
                )
                self._client = httpx.Client(
                    timeout=httpx.Timeout(params.timeout_s, connect=params.connect_timeout_s),
                    limits=limits,
                    transport=_deadline_transport(httpx, limits),
                    follow_redirects=False,
                )
            return self._client

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __del__(self) -> None:
        # an adapter dropped without close() must not leave sockets to warn when collected
        with contextlib.suppress(Exception):
            self.close()

    def _api_key(self) -> str | None:
        env = self._params.api_key_env
        raw = os.environ.get(env) if env else None
        if not raw:
            return None
        register_secret(raw)  # whatever prints or writes an error text redacts it
        return raw.strip() or None

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _redact(self, text: str) -> str:
        """Server messages may echo the request; never let the key through."""
        self._api_key()
        return redact_text(text)

    def _body(self, prompt: str, params: GenerationParams) -> dict[str, Any]:
        settings = self._params
        body: dict[str, Any] = {
            "model": settings.model,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
            "n": 1,
            "stream": False,
        }
        if settings.send_seed:
            body["seed"] = params.seed
        if settings.mode == "chat":
            messages = []
            if settings.system_prompt:
                messages.append({"role": "system", "content": settings.system_prompt})
            messages.append({"role": "user", "content": prompt})
            body["messages"] = messages
        else:
            body["prompt"] = prompt
        return body

    def supports(self, capability: Capability) -> bool:
        # Prompt log-probabilities come from the completions API (echo + logprobs) only.
        if capability == "score":
            return self._params.mode == "completions"
        return capability in self.capabilities

    def _attempt(self, body: dict[str, Any], extract: Any = None, url: str | None = None) -> Any:
        """One request (to ``url``, default the first endpoint); returns the text (or
        ``extract(payload, text, url)``), raises _Retryable or AdapterError."""
        import httpx

        url = url or self.endpoint
        settings = self._params
        root = url.rsplit("/chat/completions", 1)[0].rsplit("/completions", 1)[0]
        try:
            status, headers, raw = self._send(url, body)
        except httpx.TimeoutException as exc:
            raise self._timeout(exc, url) from None
        except httpx.ConnectError as exc:
            raise _Retryable(
                "connect",
                f"cannot connect to {url} ({_connect_reason(exc)}). Is the server running "
                f"and listening at {root}?",
            ) from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise _Retryable(
                "protocol",
                self._redact(f"the connection to {url} broke ({type(exc).__name__}: {exc})"),
            ) from None
        except httpx.HTTPError as exc:
            raise AdapterError(
                self._redact(f"request to {url} failed: {type(exc).__name__}: {exc}")
            ) from None

        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AdapterError(
                f"the response from {url} (HTTP {status}) is not UTF-8 text: byte "
                f"0x{raw[exc.start]:02x} at position {exc.start}; starts with "
                f"{self._redact(repr(raw[:40]))}. Check that base_url points at an "
                f"OpenAI-compatible API."
            ) from None
        text = self._redact(text)
        if status in _RETRY_STATUS:
            retry_after = _retry_after(headers.get("retry-after"))
            label = "rate limited" if status == 429 else "server error"
            raise _Retryable(
                "rate_limit" if status == 429 else "server",
                f"{label} (HTTP {status}) at {url}: {_excerpt(_error_message(text))}",
                retry_after,
            )
        if status >= 400:
            hint = ""
            if status in (401, 403):
                env = settings.api_key_env
                hint = (
                    f" Set the API key in the environment variable {env}."
                    if env
                    else " The server wants an API key: set params.api_key_env."
                )
            elif status == 404:
                hint = (
                    f" Check base_url (usually ends in /v1), mode ({settings.mode!r}) and "
                    f"model ({settings.model!r})."
                )
            raise AdapterError(
                f"{url} answered HTTP {status}: {_excerpt(_error_message(text))}.{hint}"
            )
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AdapterError(
                f"the response from {url} (HTTP {status}) is not valid JSON ({exc.msg} at "
                f"position {exc.pos}): {_excerpt(text)}"
            ) from None
        return (extract or self._extract)(payload, text, url)

    def _timeout(self, exc: Exception, url: str) -> _Retryable:
        import httpx

        settings = self._params
        if _deadline_spent():
            return _Retryable(
                "deadline",
                f"the call to {url} did not finish within {settings.deadline_s:g} s (deadline_s)",
            )
        if isinstance(exc, httpx.ConnectTimeout):
            what = (
                f"connecting to {url} timed out after {settings.connect_timeout_s:g} s "
                "(connect_timeout_s)"
            )
        elif isinstance(exc, httpx.WriteTimeout):
            what = (
                f"sending the request to {url} took over {settings.timeout_s:g} s "
                "(write timeout, timeout_s)"
            )
        elif isinstance(exc, httpx.PoolTimeout):
            what = f"no free connection to {url} within {settings.timeout_s:g} s (pool timeout)"
        else:
            what = (
                f"the server at {url} sent no answer within {settings.timeout_s:g} s "
                "(read timeout, timeout_s)"
            )
        return _Retryable("timeout", what)

    def _send(self, url: str, body: dict[str, Any]) -> tuple[int, Any, bytes]:
        """POST ``body``; the status, headers and body, read up to ``max_response_bytes``."""
        cap = self._params.max_response_bytes
        with self._http().stream("POST", url, json=body, headers=self._headers()) as response:
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > cap:
                raise AdapterError(
                    f"the answer from {url} is {int(declared):,} bytes, over "
                    f"max_response_bytes ({cap:,}); raise it if the server is right."
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_raw():
                size += len(chunk)
                if size > cap:
                    raise AdapterError(
                        f"the answer from {url} exceeds max_response_bytes ({cap:,} bytes); "
                        "raise it if the server is right."
                    )
                chunks.append(chunk)
            return response.status_code, response.headers, b"".join(chunks)

    def _extract(self, payload: Any, text: str, url: str) -> str:
        chat = self._params.mode == "chat"
        path = "choices[0].message.content" if chat else "choices[0].text"
        try:
            choice = payload["choices"][0]
            value = choice["message"]["content"] if chat else choice["text"]
        except (KeyError, IndexError, TypeError):
            value = None
        if not isinstance(value, str):
            raise AdapterError(f"the response from {url} lacks {path} (a string): {_excerpt(text)}")
        return value

    def _request(
        self,
        prompt: str,
        params: GenerationParams,
        index: int,
        total: int,
        stop: threading.Event,
        scoring: tuple[str, str] | None = None,
    ) -> Any:
        with deadline(self._params.deadline_s):
            return self._request_within_deadline(prompt, params, index, total, stop, scoring)

    def _request_within_deadline(
        self,
        prompt: str,
        params: GenerationParams,
        index: int,
        total: int,
        stop: threading.Event,
        scoring: tuple[str, str] | None = None,
    ) -> Any:
        settings = self._params
        body = self._body(prompt, params)
        extract = None
        if scoring is not None:  # (prompt, continuation) to score with echo + logprobs
            body = scoring_body(settings.model, *scoring)
            extract = functools.partial(
                parse_echo_logprobs, prompt=scoring[0], continuation=scoring[1], index=index
            )
        attempts = settings.max_retries + 1
        kinds: list[str] = []
        last: _Retryable | None = None
        for attempt in range(1, attempts + 1):
            if stop.is_set():
                raise _Cancelled()
            try:  # a fleet spreads prompts over its roots; a retry goes to the next one
                return self._attempt(body, extract, self._endpoint_at(index + attempt - 1))
            except _Retryable as failure:
                last = failure
                kinds.append(failure.kind)
                if attempt == attempts or failure.kind == "deadline" or _deadline_spent():
                    break
                if failure.retry_after is not None:
                    wait_s = min(failure.retry_after, settings.backoff_max_s)
                    why = "Retry-After"
                else:
                    ceiling = min(
                        settings.backoff_max_s, settings.backoff_base_s * 2 ** (attempt - 1)
                    )
                    wait_s = random.uniform(0.0, ceiling)
                    why = "backoff"
                left = remaining_s()
                if left is not None and wait_s >= left:
                    break  # waiting would pass the deadline
                logger.warning(
                    "openai_http: prompt %d/%d, attempt %d/%d failed (%s); retrying in %.2f s (%s)",
                    index + 1,
                    total,
                    attempt,
                    attempts,
                    failure.detail,
                    wait_s,
                    why,
                )
                if stop.wait(wait_s):
                    raise _Cancelled() from None
        assert last is not None
        if last.kind == "deadline" or _deadline_spent():
            advice = "raise deadline_s, or check why the server answers so slowly"
            summary = f"did not finish within deadline_s ({settings.deadline_s:g} s)"
        elif all(kind == "rate_limit" for kind in kinds):
            advice = "lower max_concurrency, raise max_retries or backoff_base_s, or check the server's rate limit"
            summary = f"rate limited (HTTP 429) on all {attempts} attempts"
        elif last.kind == "timeout":
            advice = "raise timeout_s (or connect_timeout_s), or check the server's load"
            summary = f"timed out on {attempts} attempt(s)"
        elif last.kind == "connect":
            advice = "start the server or fix base_url"
            summary = f"could not connect in {attempts} attempt(s)"
        else:
            advice = "check the server's logs"
            summary = f"failed on all {attempts} attempts"
        detail = last.detail if last.detail.endswith(("?", ".")) else f"{last.detail}."
        raise AdapterError(
            self._redact(
                f"openai_http: prompt {index + 1} of {total} {summary}; last: {detail} "
                f"{advice[0].upper()}{advice[1:]}."
            )
        )

    # -- score ------------------------------------------------------------------------------
    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[TokenScores]:
        """Log-probability of each continuation token after its prompt, from the completions
        API with ``echo`` and ``logprobs`` (:mod:`._openai_http_scoring`), one request per
        pair, ``max_concurrency`` in flight. Needs ``mode: completions``."""
        prompts, continuations = list(prompts), list(continuations)
        if self._params.mode != "completions":
            raise MissingCapabilityError(
                "adapter 'openai_http' scores prompts only with mode: completions (the chat "
                "API returns no prompt log-probabilities); set params.mode: completions."
            )
        if len(prompts) != len(continuations):
            raise AdapterError(
                f"openai_http: score() got {len(prompts)} prompts and {len(continuations)} "
                f"continuations; pass one continuation per prompt."
            )
        pairs = list(zip(prompts, continuations, strict=True))
        return self._run_requests(pairs, GenerationParams(), scoring=True)

    # -- generate ---------------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], *, params: GenerationParams) -> list[str]:
        """One request per prompt, ``max_concurrency`` in flight; outputs in prompt order.

        The first prompt that fails for good cancels the prompts not yet sent and raises.
        """
        return self._run_requests(list(prompts), params, scoring=False)

    def _run_requests(self, prompts: list[Any], params: GenerationParams, *, scoring: bool) -> Any:
        if not prompts:
            return []
        self._http()
        total = len(prompts)
        workers = min(self._params.max_concurrency, total)
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai_http") as pool:
            futures: dict[Future[str], int] = {
                pool.submit(
                    self._request,
                    prompt[0] if scoring else prompt,
                    params,
                    index,
                    total,
                    stop,
                    prompt if scoring else None,
                ): index
                for index, prompt in enumerate(prompts)
            }
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            if any(f.exception() is not None for f in done):
                stop.set()
                for future in pending:
                    future.cancel()
                wait(pending)
                failed = [
                    f
                    for f in futures
                    if not f.cancelled()
                    and f.exception() is not None
                    and not isinstance(f.exception(), _Cancelled)
                ]
                first = min(failed, key=lambda f: futures[f])
                exc = first.exception()
                assert exc is not None
                raise exc
            return [future.result() for future in futures]


@hookimpl
def audit_sdk_register_adapters(register: RegisterAdapter) -> None:
    register(OpenAIHTTPAdapter)
