"""The ``audit-sdk`` command line.

Exit codes (:class:`~audit_sdk.errors.ExitCode`, the README's "Exit codes"):

* ``run``/``demo``: 0 only when every requested report was written, published as one set
  and verified; 2 for bad input (config, data, plugin parameters); 3 when the reports could
  not all be produced (unwritable or full output folder, a reporter that failed, a plugin
  that called ``sys.exit``, an unexpected crash);
* ``gate``: 0 nothing violates, 1 something does, 2 an input cannot be read (or the report
  does not match its set's manifest), 4 nothing was checked (``--allow-empty``: 0).

Every error prints one message, never a traceback (``AUDIT_SDK_DEBUG=1`` shows them), through
one printer that never reads data as rich markup and shows control characters escaped.
Everything the CLI prints passes the redaction layer (:mod:`audit_sdk.redaction`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, TextIO, TypeVar, cast

import click
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from audit_sdk import __version__
from audit_sdk.errors import AuditSDKError, ExitCode, environment_error_message, terminal_safe
from audit_sdk.plugin_commands import PluginCommandGroup
from audit_sdk.redaction import (
    install_log_redaction,
    redact_text,
    register_environment_secrets,
    register_params_secrets,
)

if TYPE_CHECKING:
    from audit_sdk.config import AuditConfig
    from audit_sdk.plugin_host import PluginHost

__all__ = ["app", "main"]


class _Commands(PluginCommandGroup):
    """Built-in commands, then those plugins register (audit_sdk_register_commands)."""

    def wrap(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        return _user_errors(callback)


app = typer.Typer(
    name="audit-sdk",
    cls=_Commands,
    help="Audit LLM-based recommender systems for bias, with confidence intervals.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


def print_error(message: object, *, label: str = "error", style: str = "bold red") -> None:
    """Print one message on stderr: redacted, control characters escaped, never parsed as
    rich markup (a ``[/bold]`` in a path or a data cell is printed as it is)."""
    text = Text.assemble((f"{label}:", style), " ", terminal_safe(redact_text(str(message))))
    with contextlib.suppress(OSError, ValueError):
        err.print(text, highlight=False)


def _where_exited(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return ""
    return f" at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"


def _user_errors(fn: F) -> F:
    """Turn every failure into one message and an exit code (no traceback):
    AuditSDKErrors their own code (2 for bad input), failures of the environment (disk,
    permissions, locks, encodings), a plugin's ``sys.exit`` and unexpected errors 3."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(os.environ.get("AUDIT_SDK_DEBUG"))
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except AuditSDKError as exc:
            if debug:
                raise
            print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            print_error("interrupted", label="stopped", style="yellow")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except SystemExit as exc:
            if debug:
                raise
            print_error(
                f"sys.exit({exc.code!r}) was called{_where_exited(exc)} during the audit (a "
                "plugin ending the process?); the audit did not finish and no report of this "
                "run was written. Fix or block that plugin (plugins.block in the config)."
            )
            raise typer.Exit(ExitCode.NO_REPORT) from None
        except (OSError, sqlite3.Error, UnicodeError) as exc:
            if debug:
                raise
            print_error(environment_error_message(exc))
            raise typer.Exit(ExitCode.NO_REPORT) from None
        except Exception as exc:
            if debug:
                raise
            print_error(
                f"unexpected {type(exc).__name__}: {exc}. This is a bug in audit-sdk or a "
                "plugin; AUDIT_SDK_DEBUG=1 shows the traceback."
            )
            raise typer.Exit(ExitCode.NO_REPORT) from None

    return wrapper  # type: ignore[return-value]


class _RedactingStream:
    """A text stream that redacts everything written through it."""

    def __init__(self, inner: IO[str]) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        self._inner.write(redact_text(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _redact_process_output(ctx: typer.Context) -> None:
    """From here on, stdout, stderr and log records pass the redaction layer."""
    register_environment_secrets()
    install_log_redaction()
    saved = sys.stdout, sys.stderr
    if not isinstance(sys.stdout, _RedactingStream):
        sys.stdout = cast(TextIO, _RedactingStream(sys.stdout))
    if not isinstance(sys.stderr, _RedactingStream):
        sys.stderr = cast(TextIO, _RedactingStream(sys.stderr))

    def restore() -> None:
        sys.stdout, sys.stderr = saved

    ctx.call_on_close(restore)


def _register_config_secrets(config: AuditConfig, host: PluginHost) -> None:
    """Register the secrets of every plugin's parameters (``SecretStr`` fields, ``*_env``
    variables, credential-named keys) before anything runs."""
    from audit_sdk.plugin_instances import validate_params
    from audit_sdk.plugin_registry import Kind

    register_params_secrets(config)
    sections: list[tuple[Kind, str, dict[str, Any]]] = [
        ("dataset_loader", config.dataset.loader, config.dataset.params),
        ("adapter", config.subject.adapter, config.subject.params),
        *(("adapter", g.adapter, g.params) for g in config.profiles.generators or []),
        *(("adapter", m.adapter, m.params) for m in config.models.values()),
        *(("detector", d.name, d.params) for d in config.detectors),
        *(("mitigator", m.name, m.params) for m in config.mitigators),
    ]
    for kind, name, params in sections:
        with contextlib.suppress(Exception):  # the run reports bad parameters itself
            register_params_secrets(validate_params(host.get(kind, name), params, where=name))


def _table_console() -> Console:
    """A console for tables: the terminal's width, or wide when piped (so lines stay whole)."""
    return Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"audit-sdk {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show version."),
    ] = False,
) -> None:
    """audit-sdk: audit recommenders and LLM profile generators for bias."""
    _redact_process_output(ctx)


def _print_summary(result: Any) -> None:
    """What the run found and wrote; exit 3 unless every report was published as one set."""
    report = result.report
    written = result.written
    counts = ", ".join(f"{n} {s}" for s, n in report.summary.items() if n)
    title = terminal_safe(redact_text(report.title))
    try:
        out.print(Text.assemble((title, "bold"), f": {len(report.findings)} findings ({counts})"))
        for path in written.written:
            out.print(Text(terminal_safe(f"  wrote {path}")))
        if written.manifest is not None:
            out.print(Text(terminal_safe(f"  run {written.run_id}: {written.manifest}")))
        sys.stdout.flush()
    except (OSError, ValueError, SystemExit):  # stdout closed (| head -1; rich exits) or full
        _silence_stdout()
    for failure in written.failures:
        print_error(failure.describe())
    if not written.ok:
        print_error(
            f"the audit ran but its reports were not all written and published "
            f"({len(written.failures)} problem(s) above); exit code {ExitCode.NO_REPORT}."
        )
        raise typer.Exit(ExitCode.NO_REPORT)


@app.command()
@_user_errors
def run(
    config: Annotated[Path, typer.Argument(help="Audit file (YAML or TOML).")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: outputs.dir).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Run an audit and write report.json, report.html, junit.xml and summary.md."""
    from audit_sdk.config import load_config
    from audit_sdk.runner import AuditRunner

    cfg = load_config(config)
    audit = AuditRunner(cfg, config_path=config, quiet=quiet, out_dir=out_dir)
    _register_config_secrets(cfg, audit.host)
    _print_summary(audit.run())


@app.command()
@_user_errors
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("audit-reports"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Audit a recommender on the built-in synthetic music world (offline, about a minute)."""
    from audit_sdk.demo import demo_config
    from audit_sdk.runner import AuditRunner

    result = AuditRunner(
        demo_config(), config_path="built-in demo", quiet=quiet, out_dir=out_dir
    ).run()
    _print_summary(result)
    out.print(
        Text(
            f"Open {out_dir / 'report.html'} in a browser, or gate it: "
            f"audit-sdk gate {out_dir / 'report.json'}"
        )
    )


def _silence_stdout() -> None:
    """stdout is closed or full: send the rest to /dev/null so exiting cannot fail on it."""
    with contextlib.suppress(Exception):
        devnull = os.open(os.devnull, os.O_WRONLY)
        stdout = sys.__stdout__
        if stdout is not None:
            os.dup2(devnull, stdout.fileno())
        os.close(devnull)


@app.command()
def gate(
    report: Annotated[Path, typer.Argument(help="report.json to check.")],
    policy: Annotated[Path | None, typer.Option(help="Gate policy (YAML).")] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="An older report.json; fail on regressions.")
    ] = None,
    allow_empty: Annotated[
        bool,
        typer.Option(
            "--allow-empty", help="Exit 0, not 4, when no finding was checked (none or skipped)."
        ),
    ] = False,
    allow_missing_manifest: Annotated[
        bool,
        typer.Option(
            "--allow-missing-manifest",
            help="Gate a bare report.json without the audit-manifest.json of its report set "
            "(reports from audit-sdk 0.1, or copied alone). A manifest that is present is "
            "always checked.",
        ),
    ] = False,
) -> None:
    """Exit 0 when nothing violates, 1 when something does, 2 when inputs are unreadable,
    4 when nothing was checked."""
    from audit_sdk.gate import gate_report_files, render_gate_table

    try:
        result = gate_report_files(
            report,
            policy_path=policy,
            baseline_path=baseline,
            require_manifest=not allow_missing_manifest,
            allow_empty=allow_empty,
        )
    except AuditSDKError as exc:
        print_error(exc)
        raise typer.Exit(ExitCode.USAGE) from None
    except Exception as exc:  # a gate must never crash with exit 1 by accident
        print_error(f"could not gate {report}: {type(exc).__name__}: {exc}")
        raise typer.Exit(ExitCode.USAGE) from None
    code = result.exit_code
    try:
        render_gate_table(result, _table_console())
        sys.stdout.flush()
    except (OSError, ValueError, SystemExit):
        # a closed pipe (| head -1; rich answers it with SystemExit(1)) or a full stdout:
        # the verdict does not depend on the table being read
        _silence_stdout()
    except Exception as exc:  # printing must never change the verdict
        print_error(f"could not print the gate's table ({type(exc).__name__}: {exc})")
    raise typer.Exit(code)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def serve(ctx: typer.Context) -> None:
    """Serve a generator adapter over an OpenAI-compatible API on 127.0.0.1.

    Options: --adapter NAME --params JSON --port N [--model-name NAME] [--api-key-env VAR];
    `audit-sdk serve --help` lists them all.
    """
    from audit_sdk.serving.openai_server import main as serve_main

    raise typer.Exit(serve_main(list(ctx.args)))


class SchemaKind(StrEnum):
    config = "config"
    report = "report"
    policy = "policy"


@app.command()
def schema(
    kind: Annotated[SchemaKind, typer.Argument(help="Which schema.")] = SchemaKind.config,
) -> None:
    """Print the JSON Schema of the audit config (default), the report, or a gate policy."""
    if kind is SchemaKind.config:
        from audit_sdk.config import AuditConfig
        from audit_sdk.plugin_docs import config_schema
        from audit_sdk.plugin_host import get_plugin_host

        data = config_schema(get_plugin_host(), AuditConfig.model_json_schema())
    elif kind is SchemaKind.report:
        from audit_sdk.report_model import Report

        data = Report.model_json_schema()
    else:
        from audit_sdk.gate import GatePolicy

        data = GatePolicy.model_json_schema()
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


@app.command()
@_user_errors
def plugins(
    name: Annotated[
        str | None, typer.Argument(help="A plugin's name: print its parameters.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List installed plugins: name, version, providing distribution and what they register;
    with NAME, that plugin's parameters (type, default, description)."""
    from audit_sdk.plugin_host import get_plugin_host

    host = get_plugin_host()
    if name is not None:
        from audit_sdk.plugin_docs import render_plugin

        sys.stdout.write(render_plugin(host, name))
        return
    registrations = host.registry.all()
    if as_json:
        rows = [
            {
                "kind": r.kind,
                "name": r.name,
                "plugin": r.plugin,
                "distribution": r.distribution,
                "version": r.version,
                "description": r.summary,
            }
            for r in registrations
        ]
        plugin_rows = [
            {**rec.model_dump(mode="json"), "hooks": host.hooks_of(rec.entry_point)}
            for rec in host.records()
        ]
        sys.stdout.write(json.dumps({"components": rows, "plugins": plugin_rows}, indent=2) + "\n")
        return
    table = Table(title="audit-sdk plugins")
    for column in ("kind", "name", "version", "distribution", "entry point", "description"):
        table.add_column(column, overflow="fold")
    for r in registrations:
        table.add_row(r.kind, r.name, r.version or "", r.distribution or "", r.plugin, r.summary)
    console = _table_console()
    console.print(table)
    problems = [rec for rec in host.records() if rec.status != "loaded"]
    for rec in problems:
        style = "red" if rec.status == "failed" else "dim"
        detail = f": {rec.error}" if rec.error else ""
        text = f"{rec.status}: {rec.entry_point} ({rec.distribution}){detail}"
        console.print(Text(terminal_safe(text)), style=style)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
