"""One redaction layer for every output: reports, logs, stderr, error texts and cache rows.

A secret never leaves memory: whatever the SDK writes or prints passes :func:`redact_text`
(for text) or :func:`redact_data` (for JSON-like data) first. What counts as a secret:

* **known values**: every value given to :func:`register_secret`; the values of environment
  variables named by a plugin parameter ending in ``_env`` (``api_key_env: OPENAI_API_KEY``)
  and of every ``SecretStr`` field, found by :func:`register_params_secrets`; and the values of
  environment variables whose name says they hold a credential (``*_API_KEY``, ``*_TOKEN``,
  ``*_SECRET``, ``*_PASSWORD``...) and whose value looks like one (8 or more characters, not a
  plain word or an existing path), found by :func:`register_environment_secrets`. A value is
  matched with and without surrounding whitespace (a key pasted with a trailing newline);
* **credentials in URLs**: ``scheme://user:password@host`` keeps the scheme and host only, and
  a query parameter whose name says it is a credential (``?api_key=...``, ``&token=...``)
  keeps its name only;
* **credential-named keys** in data: the value of a mapping key such as ``api_key``,
  ``password`` or ``token`` (but not ``api_key_env``, which names a variable).

Each secret becomes :data:`REDACTED`. The registry is process-wide and thread-safe.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

__all__ = [
    "REDACTED",
    "clear_secrets",
    "install_log_redaction",
    "redact_data",
    "redact_text",
    "register_environment_secrets",
    "register_params_secrets",
    "register_secret",
]

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 4

_SECRET_WORDS = (
    r"api_?key|apikey|x-api-key|token|access_?token|auth_?token|refresh_?token|secret|"
    r"client_?secret|password|passwd|passphrase|credentials?|private_?key|access_?key|"
    r"secret_?key|session_?key|auth|authorization|signature"
)
_SECRET_NAME = re.compile(rf"(?:^|[_\-.])(?:{_SECRET_WORDS})(?:$|[_\-.])", re.IGNORECASE)
_SECRET_QUERY_NAME = re.compile(rf"(?:^|[_\-.])(?:{_SECRET_WORDS}|key|sig)(?:$|[_\-.])", re.I)
# user:password@ in any scheme://; the user part alone (no colon) is kept.
# (Greedy up to the last "@": a password with an unencoded "/" or "?" is still caught; a
# URL whose path holds an "@" after a port is over-redacted, which is the safe side.)
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^\s@\"'<>]+)@")
_QUERY_PARAM = re.compile(r"(?P<sep>[?&])(?P<name>[^=&#\s]+)=(?P<value>[^&#\s\"'<>]*)")
_BEARER = re.compile(r"(?P<scheme>\bBearer\s+)[A-Za-z0-9._~+/=-]{6,}")

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def _is_secret_name(name: str, *, pattern: re.Pattern[str] = _SECRET_NAME) -> bool:
    lowered = name.lower()
    if lowered.endswith(("_env", "-env", "_file", "_path")):
        return False  # names a variable or a file that holds the secret, not the secret
    return bool(pattern.search(lowered))


def register_secret(value: str | bytes | None) -> None:
    """Treat ``value`` (and its whitespace-stripped form) as a secret from now on."""
    if value is None:
        return
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    global _pattern
    with _lock:
        before = len(_secrets)
        for variant in (value, value.strip()):
            if len(variant) >= MIN_SECRET_CHARS:
                _secrets.add(variant)
        if len(_secrets) != before:
            _pattern = None


def clear_secrets() -> None:
    """Forget every registered secret (tests)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None


def register_environment_secrets(environ: Mapping[str, str] | None = None) -> None:
    """Register the values of environment variables whose name says they hold a credential."""
    environ = os.environ if environ is None else environ
    for name, value in environ.items():
        if _is_secret_name(name) and _looks_like_a_secret(value):
            register_secret(value)


def _looks_like_a_secret(value: str, *, min_chars: int = 8) -> bool:
    """Guessed from a name only, so be strict: ``AUTH_MODE=basic`` or ``SSH_AUTH_SOCK=/tmp/...``
    must not blank out every "basic" or path in a report."""
    text = value.strip()
    if len(text) < min_chars or text.isalpha() or text.lower() in {"true", "false", "none", "null"}:
        return False
    return not _is_existing_path(text)


def _is_existing_path(value: str) -> bool:
    """A variable such as ``SSH_AUTH_SOCK`` holds a path, not a secret."""
    try:
        return value.startswith(("/", "~", ".")) and os.path.exists(os.path.expanduser(value))
    except (OSError, ValueError):
        return False


def register_params_secrets(params: Any, environ: Mapping[str, str] | None = None) -> None:
    """Register every secret a plugin's parameters hold or point to: ``SecretStr`` and
    ``SecretBytes`` fields, values of credential-named keys, and the environment variables
    named by ``*_env`` fields. ``params`` is a pydantic model, a mapping or a list of them."""
    environ = os.environ if environ is None else environ
    for name, value in _walk_items(params):
        if isinstance(value, SecretStr | SecretBytes):
            register_secret(value.get_secret_value())
        elif isinstance(value, str) and name is not None:
            lowered = name.lower()
            if lowered.endswith(("_env", "-env")) and value in environ:
                register_secret(environ[value])
            elif _is_secret_name(lowered) and _looks_like_a_secret(value, min_chars=6):
                register_secret(value)  # (its own key is redacted in data regardless)


def _walk_items(
    value: Any, name: str | None = None, depth: int = 0
) -> Iterable[tuple[str | None, Any]]:
    if depth > 20:
        return
    if isinstance(value, BaseModel):
        for field_name in type(value).model_fields:
            yield from _walk_items(getattr(value, field_name, None), field_name, depth + 1)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk_items(item, str(key), depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk_items(item, name, depth + 1)
    else:
        yield name, value


def _secret_pattern() -> re.Pattern[str] | None:
    global _pattern
    with _lock:
        if _pattern is None and _secrets:
            ordered = sorted(_secrets, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(s) for s in ordered))
        return _pattern


def _redact_query(match: re.Match[str]) -> str:
    if match["value"] and _is_secret_name(match["name"], pattern=_SECRET_QUERY_NAME):
        return f"{match['sep']}{match['name']}={REDACTED}"
    return match.group(0)


def _redact_userinfo(match: re.Match[str]) -> str:
    if ":" not in match["userinfo"]:
        return match.group(0)
    return f"{match['scheme']}{REDACTED}@"


def redact_text(text: str) -> str:
    """``text`` with every known secret, URL credential and bearer token replaced."""
    if not text:
        return text
    pattern = _secret_pattern()
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    if "://" in text:
        text = _URL_USERINFO.sub(_redact_userinfo, text)
    if "=" in text:
        text = _QUERY_PARAM.sub(_redact_query, text)
    if "Bearer" in text:
        text = _BEARER.sub(lambda m: f"{m['scheme']}{REDACTED}", text)
    return text


def redact_data(value: Any, *, key: str | None = None, _depth: int = 0) -> Any:
    """A copy of JSON-like ``value`` with every string redacted and the values of
    credential-named keys replaced. Non-container values other than strings pass unchanged."""
    if _depth > 200:
        return REDACTED
    if isinstance(value, str):
        if key is not None and value and _is_secret_name(key):
            return REDACTED
        return redact_text(value)
    if isinstance(value, SecretStr | SecretBytes):
        return REDACTED
    if isinstance(value, Mapping):
        return {
            redact_text(str(k)): redact_data(v, key=str(k), _depth=_depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_data(v, key=key, _depth=_depth + 1) for v in value]
    return value


class _RedactingRecordFactory:
    """A log-record factory whose records carry their message already redacted."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.inner(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed %-format: leave it to logging's own error path
            return record
        record.msg = redact_text(message)
        record.args = None
        if record.exc_info and record.exc_text is None and record.exc_info[1] is not None:
            import traceback

            record.exc_text = redact_text("".join(traceback.format_exception(*record.exc_info)))
            record.exc_info = None
        return record


def install_log_redaction() -> None:
    """Make every log record from now on carry a redacted message (idempotent)."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RedactingRecordFactory):
        logging.setLogRecordFactory(_RedactingRecordFactory(factory))
