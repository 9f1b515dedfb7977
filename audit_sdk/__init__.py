"""audit-sdk: audit LLM-based recommender systems for bias, with confidence intervals."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from audit_sdk.hookspecs import hookimpl

try:
    __version__ = version("audit-sdk")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "hookimpl"]
