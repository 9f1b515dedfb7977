"""The model commands end to end: train-tinyrec, then export-onnx, from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from audit_sdk.cli import app

runner = CliRunner()


def test_train_tinyrec_then_export_onnx(tmp_path: Path) -> None:
    config = tmp_path / "audit.yaml"
    config.write_text(
        "dataset:\n  params: {seed: 3, n_users: 150, n_artists: 30, mean_tracks_per_artist: 4}\n"
    )
    model = tmp_path / "tinyrec"
    env = {"COLUMNS": "200"}
    trained = runner.invoke(
        app,
        [
            "train-tinyrec",
            "--config",
            str(config),
            "--out",
            str(model),
            "--size",
            "demo",
            "--time-budget",
            "8",
        ],
        env=env,
    )
    assert trained.exit_code == 0, trained.output
    for name in ("tinyrec", "popularity", "random"):
        assert name in trained.output
    assert "TinyRec - popularity, ndcg@10:" in trained.output
    assert json.loads((model / "config.json").read_text())["model_type"] == "gpt2"

    again = runner.invoke(app, ["train-tinyrec", "--config", str(config), "--out", str(model)])
    assert again.exit_code == 2  # an existing model is not overwritten silently
    assert "Traceback" not in again.output

    exported = runner.invoke(app, ["export-onnx", str(model), str(tmp_path / "onnx")], env=env)
    assert exported.exit_code == 0, exported.output
    assert any(p.suffix == ".onnx" for p in (tmp_path / "onnx").iterdir())

    missing = runner.invoke(app, ["export-onnx", str(tmp_path / "nope"), str(tmp_path / "x")])
    assert missing.exit_code == 2
    assert "nope" in missing.output
