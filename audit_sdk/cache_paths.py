"""Where audit-sdk keeps caches: trained models and generations.

``AUDIT_SDK_CACHE_DIR`` overrides the platform's user cache folder
(``~/.cache/audit-sdk`` on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir

__all__ = ["cache_dir", "generation_cache_path"]


def cache_dir() -> Path:
    """The cache root (created on first use)."""
    root = os.environ.get("AUDIT_SDK_CACHE_DIR") or user_cache_dir("audit-sdk", appauthor=False)
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def generation_cache_path() -> Path:
    """The default SQLite generation cache."""
    return cache_dir() / "generations.sqlite"
