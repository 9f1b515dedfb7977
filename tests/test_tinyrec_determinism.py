"""TinyRec is the same model for a seed: in parallel processes, on a loaded machine, with any
ambient thread settings; the clock takes part only when a time budget is asked for."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from audit_sdk.adapters.tinyrec import MANIFEST_NAME, read_manifest

from .tinyrec_fixtures import tiny_world, train_tiny_tinyrec

pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[1]

_TRAIN = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    import torch
    torch.set_num_threads({ambient_threads})  # the caller's setting must not matter
    from pathlib import Path
    from tests.tinyrec_fixtures import train_tiny_tinyrec

    train_tiny_tinyrec(Path({out!r}), seed=7, holdout=False)
    assert torch.get_num_threads() == {ambient_threads}
    print("DONE", flush=True)
    """
)

# Keeps a core busy for as long as the trainings run: the machine is loaded.
_BUSY = "import time\nend = time.monotonic() + 600\nwhile time.monotonic() < end:\n    pass\n"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _identity(model_dir: Path) -> dict[str, str]:
    """The files that define the model (and the adapter's fingerprint)."""
    names = ("model.safetensors", "config.json", "tokenizer.json", MANIFEST_NAME)
    return {name: _sha256(model_dir / name) for name in names}


@pytest.mark.slow
def test_parallel_trainings_on_a_loaded_machine_give_identical_bytes(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONHASHSEED": "random"}
    busy = [subprocess.Popen([sys.executable, "-c", _BUSY]) for _ in range(2)]
    trainers = []
    try:
        for name, threads in (("a", 1), ("b", 2)):
            script = _TRAIN.format(
                root=str(ROOT), out=str(tmp_path / name), ambient_threads=threads
            )
            trainers.append(
                subprocess.Popen(
                    [sys.executable, "-c", script],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        outputs = [p.communicate(timeout=600) for p in trainers]
    finally:
        for process in [*busy, *trainers]:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    for process, (stdout, stderr) in zip(trainers, outputs, strict=True):
        assert process.returncode == 0 and "DONE" in stdout, stderr[-3000:]
    first, second = _identity(tmp_path / "a"), _identity(tmp_path / "b")
    assert first == second
    # ...and the same model as one trained in this process.
    here = train_tiny_tinyrec(tmp_path / "here", seed=7, holdout=False)
    assert _identity(here.model_dir) == first
    manifest = read_manifest(here.model_dir)
    assert manifest is not None
    training = manifest.training
    assert training["deterministic"] and not training["time_limited"]
    assert training["steps"] == training["planned_steps"] > 0
    assert training["threads"] == 1 and training["cpu_capability"]


def test_wall_clock_times_stay_out_of_the_model_files(tmp_path: Path) -> None:
    result = train_tiny_tinyrec(tmp_path / "m", holdout=False)
    manifest_text = (result.model_dir / MANIFEST_NAME).read_text(encoding="utf-8")
    assert "seconds" not in manifest_text
    timing = json.loads((result.model_dir / "audit_sdk_tinyrec_timing.json").read_text())
    assert timing["train_seconds"] >= 0


def test_a_time_budget_is_used_only_when_asked_and_is_recorded(tmp_path: Path) -> None:
    from audit_sdk.adapters.tinyrec import train_tinyrec

    from .tinyrec_fixtures import TINY_SETTINGS

    world = tiny_world()
    generous = train_tinyrec(
        world,
        out_dir=tmp_path / "generous",
        holdout=False,
        settings=TINY_SETTINGS,
        time_budget_s=1e9,
    )
    plain = train_tiny_tinyrec(tmp_path / "plain", holdout=False, dataset=world)
    # A budget the steps never reach changes nothing in the weights, but is on record.
    assert _sha256(generous.model_dir / "model.safetensors") == _sha256(
        plain.model_dir / "model.safetensors"
    )
    generous_training = read_manifest(generous.model_dir).training  # type: ignore[union-attr]
    assert generous_training["time_limited"] and generous_training["time_budget_s"] == 1e9
    assert generous_training["deterministic"] and not generous.time_paced
    # A budget too short for even one step stops training, and says so.
    cut = train_tinyrec(
        world,
        out_dir=tmp_path / "cut",
        holdout=False,
        settings=TINY_SETTINGS,
        time_budget_s=1e-9,
    )
    assert cut.stopped_by_time_budget and cut.time_paced and cut.steps == 0
    cut_training = read_manifest(cut.model_dir).training  # type: ignore[union-attr]
    assert cut_training["time_limited"] and not cut_training["deterministic"]
    assert cut_training["steps"] < cut_training["planned_steps"]
