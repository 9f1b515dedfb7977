"""Running transformers the way audit-sdk needs: offline, and quiet inside our progress bars."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["offline", "quiet_transformers"]


def offline() -> None:
    """Never reach the model hub from this process (set before transformers loads anything)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """No transformers progress bars (weight loading, saving) inside an audit's own progress."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()
