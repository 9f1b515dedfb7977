"""Trained TinyRec models cached in the user's cache directory.

``<cache>/tinyrec/<size>-seed<seed>-<key>/``, where ``<cache>`` is
``platformdirs.user_cache_dir("audit-sdk")`` or ``$AUDIT_SDK_CACHE_DIR`` and ``<key>`` hashes
the training data's fingerprint, the size and its settings, the seed, TinyRec's format
version and its training recipe. A model is
trained into a temporary sibling directory and renamed into place when complete, so a killed
training never leaves a half model; when two processes train the same key, the first rename
wins and the other's copy is discarded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from audit_sdk.cache_paths import cache_dir
from audit_sdk.data.tables import Dataset
from audit_sdk.errors import AdapterError

from ..local_model_files import MANIFEST_NAME, TINYREC_FORMAT_VERSION
from .settings import SIZES, TRAINING_RECIPE, TinyRecSize
from .training import train_tinyrec

__all__ = ["cache_root", "cached_model_dir", "ensure_tinyrec"]


def cache_root() -> Path:
    """``$AUDIT_SDK_CACHE_DIR`` or the platform's user cache directory for audit-sdk."""
    return cache_dir()


def cached_model_dir(train: Dataset, *, size: TinyRecSize, seed: int) -> Path:
    """Where the TinyRec for this training data, size and seed is (or will be) cached."""
    settings = json.dumps(asdict(SIZES[size]), sort_keys=True)
    key = hashlib.sha256(
        f"{train.fingerprint()}:{size}:{settings}:{seed}:v{TINYREC_FORMAT_VERSION}"
        f":r{TRAINING_RECIPE}".encode()
    ).hexdigest()[:20]
    return cache_root() / "tinyrec" / f"{size}-seed{seed}-{key}"


def _is_complete(path: Path) -> bool:
    return (path / MANIFEST_NAME).is_file() and (path / "config.json").is_file()


def _remove_stale_staging(folder: Path, *, max_age_s: float = 6 * 3600) -> None:
    """Remove temporary directories that killed trainings left behind (older than 6 h)."""
    if not folder.is_dir():
        return
    now = time.time()
    for entry in folder.iterdir():
        if entry.name.startswith(".") and entry.is_dir():
            try:
                if now - entry.stat().st_mtime > max_age_s:
                    shutil.rmtree(entry, ignore_errors=True)
            except OSError:
                continue


def ensure_tinyrec(
    train: Dataset,
    *,
    size: TinyRecSize,
    seed: int,
    train_if_missing: bool = True,
    progress: Any = None,
) -> Path:
    """The cached TinyRec for ``train``, training it (on all of ``train``) on first use."""
    target = cached_model_dir(train, size=size, seed=seed)
    if _is_complete(target):
        return target
    if not train_if_missing:
        raise AdapterError(
            f"adapter 'tinyrec': no cached {size} TinyRec for this dataset (looked in "
            f"{target}). Set params.train_if_missing: true to train one now, or train one with "
            f"`audit-sdk train-tinyrec` and set params.model_dir."
        )
    if target.exists():  # an incomplete leftover (e.g. copied by hand): replace it
        shutil.rmtree(target, ignore_errors=True)
    _remove_stale_staging(target.parent)
    staging = target.with_name(f".{target.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    train_tinyrec(
        train,
        out_dir=staging,
        size=size,
        seed=seed,
        holdout=False,
        settings=SIZES[size],
        progress=progress,
    )
    try:
        os.replace(staging, target)
    except OSError:
        # Another process published the same model first; keep theirs.
        shutil.rmtree(staging, ignore_errors=True)
        if not _is_complete(target):
            raise
    return target
