"""The ``openai_http`` adapter's parameters: where the API is (one root or a serving fleet),
the model, the mode, and the limits every request keeps (concurrency, timeouts, deadline,
answer size, retries and backoff)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from audit_sdk.interfaces._params import PluginParams

__all__ = ["OpenAIHTTPParams"]


class OpenAIHTTPParams(PluginParams):
    base_url: str = Field(
        "http://127.0.0.1:8000/v1", description="the API root, e.g. http://127.0.0.1:8000/v1"
    )
    base_urls: list[str] | None = Field(
        None,
        description="a serving fleet: several API roots serving the same model (vLLM, TGI "
        "replicas); prompts are spread over them in turn and a retry goes to the next one",
    )
    model: str = Field(description="the model name the server expects")
    mode: Literal["chat", "completions"] = Field("chat", description="which endpoint to call")
    api_key_env: str | None = Field(
        "OPENAI_API_KEY",
        description="environment variable holding the API key (None: send no key); the key "
        "itself never goes into a config, report, log or cache",
    )
    system_prompt: str | None = Field(None, description="chat mode: a system message")
    max_concurrency: int = Field(8, ge=1, le=256, description="requests in flight at most")
    timeout_s: float = Field(60.0, gt=0, description="read/write timeout of one request")
    deadline_s: float = Field(
        300.0,
        gt=0,
        description="overall limit on one prompt's call: every attempt, wait and slow answer",
    )
    max_response_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="refuse an answer larger than this"
    )
    connect_timeout_s: float = Field(5.0, gt=0, description="connect timeout of one request")
    max_retries: int = Field(4, ge=0, le=20, description="retries after the first attempt")
    backoff_base_s: float = Field(0.5, ge=0, description="first backoff; doubles per retry")
    backoff_max_s: float = Field(30.0, ge=0, description="cap on one wait (and on Retry-After)")
    send_seed: bool = Field(True, description="send the generation seed (most servers accept it)")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL, e.g. http://127.0.0.1:8000/v1")
        return value.rstrip("/")

    @field_validator("base_urls")
    @classmethod
    def _http_urls(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("is empty; list at least one URL, or leave it out for base_url")
        roots = [cls._http_url(url) for url in value]
        if len(set(roots)) < len(roots):
            raise ValueError("lists the same URL twice")
        return roots

    @property
    def roots(self) -> list[str]:
        """The API roots requests go to: ``base_urls``, or ``base_url`` alone."""
        return list(self.base_urls) if self.base_urls else [self.base_url]
