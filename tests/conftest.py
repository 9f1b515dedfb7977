"""Suite-wide fixtures: hermetic plugin loading and access to the real datasets."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit_sdk.plugin_host import reset_plugin_hosts

# Tests never depend on whatever third-party plugins happen to be installed.
os.environ["AUDIT_SDK_DISABLE_PLUGIN_AUTOLOAD"] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
for _name in ("AUDIT_SDK_PLUGINS", "AUDIT_SDK_BLOCK_PLUGINS", "AUDIT_SDK_STRICT_PLUGINS"):
    os.environ.pop(_name, None)
# Trained models and generations go to a cache of the test session's own, never the user's.
os.environ["AUDIT_SDK_CACHE_DIR"] = tempfile.mkdtemp(prefix="audit-sdk-test-cache-")


@pytest.fixture(autouse=True)
def _fresh_plugin_hosts() -> Iterator[None]:
    reset_plugin_hosts()
    yield
    reset_plugin_hosts()


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """The shared real datasets (``AUDIT_SDK_DATA``); tests that need them skip without."""
    value = os.environ.get("AUDIT_SDK_DATA")
    problem = None
    if not value:
        problem = "AUDIT_SDK_DATA is not set; it must point at the shared datasets folder"
    elif not Path(value).is_dir():
        problem = f"AUDIT_SDK_DATA={value} is not a directory"
    if problem:
        if os.environ.get("AUDIT_SDK_REQUIRE_DATA"):
            pytest.fail(f"{problem} (AUDIT_SDK_REQUIRE_DATA is set: real-data tests must run)")
        pytest.skip(problem)
    return Path(str(value)).resolve()


@pytest.fixture(scope="session")
def hetrec_dir(datasets_dir: Path) -> Path:
    path = datasets_dir / "hetrec2011-lastfm-2k"
    if not (path / "user_artists.dat").is_file():
        if os.environ.get("AUDIT_SDK_REQUIRE_DATA"):
            pytest.fail(f"{path} does not hold HetRec 2011 Last.fm 2K")
        pytest.skip(f"{path} does not hold HetRec 2011 Last.fm 2K")
    return path
