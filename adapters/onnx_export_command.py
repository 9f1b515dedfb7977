"""``audit-sdk export-onnx``: the command the onnx plugin adds to the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from audit_sdk.plugin_commands import PluginCommand

__all__ = ["ExportOnnxCommand"]


class ExportOnnxCommand(PluginCommand):
    name = "export-onnx"
    description = "Export a causal LM (TinyRec included) to ONNX for the onnx adapter."

    @staticmethod
    def run(
        model_dir: Annotated[Path, typer.Argument(help="A transformers causal LM directory.")],
        out_dir: Annotated[Path, typer.Argument(help="Where to write the ONNX model.")],
        overwrite: Annotated[bool, typer.Option(help="Replace an existing export.")] = False,
    ) -> None:
        """Export a causal LM (TinyRec included) to ONNX for the `onnx` adapter."""
        from rich.console import Console

        from .onnx_export import export_onnx

        path = export_onnx(model_dir, out_dir, overwrite=overwrite)
        Console(soft_wrap=True).print(f"Exported {model_dir} to {path}")
