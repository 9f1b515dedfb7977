"""Shared pieces of the fault suite: a tiny audit, the CLI in a subprocess, real mounts."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

TINY_CONFIG = """\
title: tiny fault audit
dataset: {loader: synthetic, params: {n_users: 80, n_artists: 40, seed: 1}}
subject: {adapter: popularity}
baselines: [popularity]
detectors: [{name: group_fairness}]
stats: {bootstrap_resamples: 50}
"""

REPORT_FILES = ("report.json", "report.html", "junit.xml", "summary.md")


def write_config(
    folder: Path, out_dir: Path | str, extra: str = "", name: str = "audit.yaml"
) -> Path:
    path = folder / name
    path.write_text(TINY_CONFIG + f"outputs: {{dir: '{out_dir}'}}\n" + textwrap.dedent(extra))
    return path


def cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
    stdout: int | None = subprocess.PIPE,
) -> subprocess.CompletedProcess[str]:
    """``audit-sdk ARGS`` in a fresh interpreter (real exit codes, real streams)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "audit_sdk.cli", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


def _mount(*args: str) -> bool:
    try:
        return subprocess.run(["mount", *args], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextlib.contextmanager
def tmpfs(path: Path, *, size: str, read_only: bool = False) -> Iterator[Path | None]:
    """A real tmpfs of ``size`` mounted at ``path`` (None where this machine cannot mount)."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", options, "tmpfs", str(path)):
        yield None
        return
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=20)


@contextlib.contextmanager
def remount(path: Path, options: str) -> Iterator[bool]:
    ok = _mount("-o", f"remount,{options}", str(path))
    try:
        yield ok
    finally:
        if ok:
            _mount("-o", "remount,rw", str(path))
