"""The ``audit-sdk`` command line.

Every error a user can cause prints one clear message (no traceback) and exits with 2;
``AUDIT_SDK_DEBUG=1`` shows tracebacks. ``gate`` exits 0 (nothing violates), 1 (something
does) or 2 (the report or policy cannot be read).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from audit_sdk import __version__
from audit_sdk.errors import AuditSDKError

__all__ = ["app", "main"]

app = typer.Typer(
    name="audit-sdk",
    help="Audit LLM-based recommender systems for bias, with confidence intervals.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


def _user_errors(fn: F) -> F:
    """Turn AuditSDKErrors into one red message and exit code 2 (no traceback)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AuditSDKError as exc:
            if os.environ.get("AUDIT_SDK_DEBUG"):
                raise
            err.print(f"[bold red]error:[/bold red] {exc}", markup=True, highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _table_console() -> Console:
    """A console for tables: the terminal's width, or wide when piped (so lines stay whole)."""
    return Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"audit-sdk {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show version."),
    ] = False,
) -> None:
    """audit-sdk: audit recommenders and LLM profile generators for bias."""


def _print_summary(result: Any) -> None:
    report = result.report
    counts = ", ".join(f"{n} {s}" for s, n in report.summary.items() if n)
    out.print(f"[bold]{report.title}[/bold]: {len(report.findings)} findings ({counts})")
    for path in result.written.written:
        out.print(f"  wrote {path}")
    for failure in result.written.failures:
        err.print(f"[yellow]warning:[/yellow] {failure.describe()}")


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
    result = AuditRunner(cfg, config_path=config, quiet=quiet, out_dir=out_dir).run()
    _print_summary(result)


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
        f"Open {out_dir / 'report.html'} in a browser, or gate it: audit-sdk gate {out_dir / 'report.json'}"
    )


@app.command()
def gate(
    report: Annotated[Path, typer.Argument(help="report.json to check.")],
    policy: Annotated[Path | None, typer.Option(help="Gate policy (YAML).")] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="An older report.json; fail on regressions.")
    ] = None,
) -> None:
    """Exit 0 when nothing violates, 1 when something does, 2 when inputs are unreadable."""
    from audit_sdk.gate import gate_report_files, render_gate_table

    try:
        result = gate_report_files(report, policy_path=policy, baseline_path=baseline)
    except AuditSDKError as exc:
        err.print(f"[bold red]error:[/bold red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except Exception as exc:  # a gate must never crash with exit 1 by accident
        err.print(
            f"[bold red]error:[/bold red] could not gate {report}: {type(exc).__name__}: {exc}"
        )
        raise typer.Exit(2) from None
    render_gate_table(result, _table_console())
    raise typer.Exit(result.exit_code)


@app.command("train-tinyrec")
@_user_errors
def train_tinyrec_command(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the model directory.")],
    config: Annotated[
        Path | None,
        typer.Option(help="Audit file whose dataset section says what to train on."),
    ] = None,
    size: Annotated[str, typer.Option(help="demo (about a minute) or full.")] = "full",
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    time_budget: Annotated[
        float | None, typer.Option("--time-budget", help="Stop training after this many seconds.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model directory.")] = False,
) -> None:
    """Train TinyRec (the embedded LLM recommender) and report held-out NDCG@10 and recall@10
    beside the popularity and random baselines."""
    from audit_sdk.config import load_config, parse_config
    from audit_sdk.errors import ConfigError
    from audit_sdk.plugin_host import get_plugin_host
    from audit_sdk.plugin_instances import validate_params
    from audit_sdk.sampling import filter_streams
    from audit_sdk.tinyrec import train_tinyrec

    if size not in ("demo", "full"):
        raise ConfigError(f"--size {size!r}: use demo or full.")
    cfg = load_config(config) if config is not None else parse_config({})
    host = get_plugin_host()
    reg = host.get("dataset_loader", cfg.dataset.loader)
    loader = reg.cls(validate_params(reg, cfg.dataset.params, where="dataset.params"))
    dataset = filter_streams(loader.load(), min_play_seconds=cfg.sampling.min_play_seconds)
    with err.status(f"Training TinyRec ({size}) on {dataset.name}..."):
        result = train_tinyrec(
            dataset,
            out_dir=out_dir,
            size=size,  # type: ignore[arg-type]
            seed=seed,
            time_budget_s=time_budget,
            overwrite=overwrite,
            split_strategy=cfg.split.strategy,
            test_items=cfg.split.test_items,
            k=cfg.subject.k,
        )
    table = Table(title=f"Held-out quality on {dataset.name} (95% CI)")
    summary = result.summary_table()
    table.add_column("model")
    for column in summary.columns:
        table.add_column(str(column), justify="right")
    for model, row in summary.iterrows():
        table.add_row(str(model), *(str(v) for v in row))
    _table_console().print(table)
    for metric, v in result.paired.items():
        verdict = "beats" if v["low"] > 0 else "does not beat"
        out.print(
            f"TinyRec - popularity, {metric}: {v['mean']:+.4f} "
            f"[{v['low']:+.4f}, {v['high']:+.4f}]: TinyRec {verdict} popularity"
        )
    out.print(f"Saved {result.model_dir}")


@app.command("export-onnx")
@_user_errors
def export_onnx_command(
    model_dir: Annotated[Path, typer.Argument(help="A transformers causal LM directory.")],
    out_dir: Annotated[Path, typer.Argument(help="Where to write the ONNX model.")],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing export.")] = False,
) -> None:
    """Export a causal LM (TinyRec included) to ONNX for the `onnx` adapter."""
    from audit_sdk.adapters.onnx_export import export_onnx

    path = export_onnx(model_dir, out_dir, overwrite=overwrite)
    out.print(f"Exported {model_dir} to {path}")


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

        data = AuditConfig.model_json_schema()
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
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List installed plugins: name, version, providing distribution and what they register."""
    from audit_sdk.plugin_host import get_plugin_host

    host = get_plugin_host()
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
        console.print(escape(text), style=style)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
