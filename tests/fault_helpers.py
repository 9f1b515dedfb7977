"""Shared pieces of the fault suite: a tiny audit, the CLI in a subprocess, real mounts."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


# -- a real misbehaving HTTP server on 127.0.0.1 ----------------------------------------------

Behaviour = Callable[[BaseHTTPRequestHandler, bytes], None]


class MisbehavingServer:
    """A real HTTP server on 127.0.0.1 whose POST answers come from ``behaviour(handler,
    body)``; used as ``with MisbehavingServer(fn) as url: ...`` (``url`` ends in ``/v1``)."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                outer.requests.append(dict(self.headers))
                with contextlib.suppress(OSError):
                    outer.behaviour(self, body)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients that give up mid-answer are the point of these tests

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


def completion(text: str) -> bytes:
    return json.dumps({"choices": [{"message": {"content": text}, "text": text}]}).encode()
