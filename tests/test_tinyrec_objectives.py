"""TinyRec's training objectives: the default is today's loss; another one plugs in."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from audit_sdk.adapters.tinyrec import (
    CrossEntropyObjective,
    TrainingBatch,
    TrainingObjective,
    WeightedCrossEntropyObjective,
    read_manifest,
    train_tinyrec,
)

from .tinyrec_fixtures import TINY_SETTINGS, tiny_world

pytest.importorskip("transformers")


def _weights_sha(model_dir: Path) -> str:
    return hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()


def _train(out_dir: Path, objective: TrainingObjective | None = None) -> Path:
    result = train_tinyrec(
        tiny_world(), out_dir=out_dir, holdout=False, settings=TINY_SETTINGS, objective=objective
    )
    return result.model_dir


class _Recording(WeightedCrossEntropyObjective):
    """Uniform weights, and a record of what after_step saw."""

    name = "recording"

    def __init__(self) -> None:
        super().__init__({})
        self.seen: list[tuple[int, str, int, np.ndarray]] = []

    def after_step(self, step: int, per_example_loss: np.ndarray, batch: TrainingBatch) -> None:
        self.seen.append((step, batch.task, len(batch), per_example_loss))


def test_uniform_weights_train_the_default_model_bit_for_bit(tmp_path: Path) -> None:
    default = _train(tmp_path / "default")
    explicit = _train(tmp_path / "explicit", CrossEntropyObjective())
    uniform = _train(tmp_path / "uniform", WeightedCrossEntropyObjective({}, default=1.0))
    recording = _Recording()
    recorded = _train(tmp_path / "recorded", recording)
    assert (
        _weights_sha(default)
        == _weights_sha(explicit)
        == _weights_sha(uniform)
        == _weights_sha(recorded)
    )
    manifest = read_manifest(default)
    assert manifest is not None and manifest.training["objective"] == {"name": "cross_entropy"}
    # after_step saw every step, both tasks, one finite loss per example.
    steps = [step for step, *_ in recording.seen]
    assert steps == list(range(manifest.training["steps"]))
    assert {task for _, task, _, _ in recording.seen} == {"recommendation", "profile"}
    for _, _, n_rows, losses in recording.seen:
        assert losses.shape == (n_rows,) and np.isfinite(losses).all() and (losses > 0).all()


def test_non_uniform_weights_change_the_model_and_are_on_record(tmp_path: Path) -> None:
    users = sorted(tiny_world().interactions.frame["user_id"].unique())
    heavy = dict.fromkeys(users[: len(users) // 3], 5.0)
    weighted = _train(tmp_path / "weighted", WeightedCrossEntropyObjective(heavy))
    default = _train(tmp_path / "default")
    assert _weights_sha(weighted) != _weights_sha(default)
    manifest = read_manifest(weighted)
    assert manifest is not None
    objective: dict[str, Any] = manifest.training["objective"]
    assert objective["name"] == "weighted_cross_entropy"
    assert objective["n_weighted_users"] == len(heavy)


def test_weighted_reduction_is_the_weighted_token_mean() -> None:
    import torch
    from audit_sdk.adapters.tinyrec.objectives import TargetLosses

    token_loss = torch.tensor([1.0, 3.0, 2.0, 6.0])
    losses = TargetLosses(token_loss, torch.tensor([0, 0, 1, 2]), n_rows=4)
    batch = TrainingBatch(
        np.zeros((4, 2), dtype=np.int64),
        np.ones((4, 2), dtype=np.int64),
        np.zeros((4, 2), dtype=np.int64),
        ("a", "b", "c", "d"),
        "recommendation",
    )
    objective = WeightedCrossEntropyObjective({"a": 2.0, "c": 0.0})
    weights = objective.example_weights(batch)
    assert weights.tolist() == [2.0, 1.0, 0.0, 1.0]
    # tokens of a (weight 2) count twice, c's not at all: (2*1 + 2*3 + 1*2) / (2 + 2 + 1)
    assert float(objective.reduce(losses, weights, batch)) == pytest.approx(10 / 5)
    assert losses.per_example().tolist() == [2.0, 2.0, 6.0, 0.0]
    with pytest.raises(ValueError, match="non-negative"):
        WeightedCrossEntropyObjective({"a": -1.0})
