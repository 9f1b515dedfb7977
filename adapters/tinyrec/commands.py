"""``audit-sdk train-tinyrec``: the command the tinyrec plugin adds to the CLI."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from audit_sdk.plugin_commands import PluginCommand

__all__ = ["TrainTinyRecCommand"]


class TrainTinyRecCommand(PluginCommand):
    name = "train-tinyrec"
    description = "Train TinyRec and report its held-out quality beside the baselines."

    @staticmethod
    def run(
        out_dir: Annotated[Path, typer.Option("--out", help="Folder for the model directory.")],
        config: Annotated[
            Path | None,
            typer.Option(help="Audit file whose dataset section says what to train on."),
        ] = None,
        size: Annotated[str, typer.Option(help="demo (about a minute) or full.")] = "full",
        seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
        time_budget: Annotated[
            float | None,
            typer.Option(
                "--time-budget",
                help="Stop training after this many seconds (default: train every step, "
                "so the same seed gives the same model).",
            ),
        ] = None,
        overwrite: Annotated[
            bool, typer.Option(help="Replace an existing model directory.")
        ] = False,
    ) -> None:
        """Train TinyRec (the embedded LLM recommender) and report held-out NDCG@10 and
        recall@10 beside the popularity and random baselines."""
        from rich.console import Console
        from rich.table import Table

        from audit_sdk.config import load_config, parse_config
        from audit_sdk.errors import ConfigError
        from audit_sdk.plugin_host import get_plugin_host
        from audit_sdk.plugin_instances import validate_params
        from audit_sdk.sampling import filter_streams

        from .training import train_tinyrec

        if size not in ("demo", "full"):
            raise ConfigError(f"--size {size!r}: use demo or full.")
        out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
        err = Console(stderr=True, soft_wrap=True)
        cfg = load_config(config) if config is not None else parse_config({})
        host = get_plugin_host()
        reg = host.get("dataset_loader", cfg.dataset.loader)
        loader = reg.cls(
            validate_params(
                reg, cfg.dataset.params, where="dataset.params", base_dir=cfg.source_dir
            )
        )
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
        out.print(table)
        for metric, v in result.paired.items():
            verdict = "beats" if v["low"] > 0 else "does not beat"
            out.print(
                f"TinyRec - popularity, {metric}: {v['mean']:+.4f} "
                f"[{v['low']:+.4f}, {v['high']:+.4f}]: TinyRec {verdict} popularity"
            )
        if result.time_paced:
            out.print(
                "Note: the time budget set the pace, so this model is not reproducible from "
                "its seed; train without --time-budget for that."
            )
        out.print(f"Saved {result.model_dir}")
