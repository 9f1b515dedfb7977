"""Fine-tune a saved causal LM (TinyRec or any transformers causal LM) with an objective.

:func:`fine_tune` loads a model directory, trains it on answer-only examples
(:mod:`.gdrt_data`) with any :class:`TrainingObjective` through TinyRec's deterministic loop
(:mod:`.training_loop`: AdamW, warm-up + cosine schedule, fixed threads, seeded order), and
writes a new, complete model directory (atomically) whose manifest records the base model's
fingerprint, the objective and the schedule, so the tuned model has a fingerprint of its own.
Small models are tuned in full; ``lora`` tunes low-rank adapters through ``peft`` (Hu et al.,
"LoRA", ICLR 2022) and merges them into the weights before saving, so the result loads like
any other model directory.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from audit_sdk.errors import AdapterError

from ..local_model_files import TinyRecManifest, read_manifest
from .gdrt_data import SpanExample, example_batches, steps_for
from .objectives import TrainingObjective
from .settings import DEFAULT_TRAINING_THREADS
from .training import _publish
from .training_loop import (
    LearningRateSchedule,
    deterministic_training,
    run_training_loop,
    seed_from,
)

__all__ = ["FineTuneResult", "LoraSettings", "fine_tune", "load_causal_lm"]


@dataclass(frozen=True)
class LoraSettings:
    """Low-rank adaptation (``peft.LoraConfig``): rank, scaling and the modules it wraps
    (``None``: peft's default for the architecture)."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] | None = None


@dataclass
class FineTuneResult:
    model_dir: Path
    steps: int
    train_seconds: float
    final_loss: float
    objective: dict[str, Any]


def load_causal_lm(model_dir: str | Path) -> tuple[Any, Any, TinyRecManifest | None]:
    """The model (float32, eval mode), its tokenizer and its TinyRec manifest (or None)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from audit_sdk.transformers_support import quiet_transformers

    path = Path(model_dir)
    try:
        with quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:
        raise AdapterError(
            f"cannot load the causal LM in {path}: {type(exc).__name__}: {exc}"
        ) from None
    return model.float().eval(), tokenizer, read_manifest(path)


def _with_lora(model: Any, lora: LoraSettings) -> Any:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise AdapterError(
            "LoRA tuning needs peft: pip install 'audit-sdk[tune]' (or pip install peft)"
        ) from None
    # GPT-2 keeps its projections in transformers' Conv1D (weights stored transposed)
    conv1d = getattr(model.config, "model_type", "") == "gpt2"
    config = LoraConfig(
        fan_in_fan_out=conv1d,
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules) if lora.target_modules else None,
        bias="none",
        task_type="CAUSAL_LM",
    )
    with _quiet_peft():
        return get_peft_model(model, config)


@contextlib.contextmanager
def _quiet_peft() -> Iterator[None]:
    """peft asks transformers a deprecated question (``is_gradient_checkpointing``); the
    FutureWarning says nothing about this run."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        yield


def fine_tune(
    model_dir: str | Path,
    examples: Sequence[SpanExample],
    token_groups: Sequence[np.ndarray] | None,
    objective: TrainingObjective,
    *,
    out_dir: str | Path,
    epochs: int = 2,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 0,
    threads: int | None = None,
    lora: LoraSettings | None = None,
    overwrite: bool = False,
    base_fingerprint: str | None = None,
    label: str = "fine-tuned",
) -> FineTuneResult:
    """Tune the model in ``model_dir`` on ``examples`` and save it to ``out_dir``.

    Every objective tuned with the same ``seed``, ``epochs`` and ``batch_size`` sees the same
    batches in the same order and takes the same number of steps: the same budget."""
    from audit_sdk.transformers_support import quiet_transformers

    if not examples:
        raise AdapterError("there are no training examples to fine-tune on")
    source = Path(model_dir)
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise AdapterError(f"{out} already exists; choose a new directory or pass overwrite=True.")
    started = time.perf_counter()
    threads = threads or DEFAULT_TRAINING_THREADS
    total = steps_for(len(examples), batch_size=batch_size, epochs=epochs)
    with deterministic_training(seed=seed_from(seed, "gdrt-torch") % (2**63), threads=threads):
        model, tokenizer, manifest = load_causal_lm(source)
        trained = _with_lora(model, lora) if lora is not None else model
        loop = run_training_loop(
            trained,
            example_batches(
                examples,
                token_groups,
                batch_size=batch_size,
                epochs=epochs,
                seed=seed,
                pad_id=int(tokenizer.pad_token_id or 0),
            ),
            objective=objective,
            schedule=LearningRateSchedule(learning_rate, total),
            n_epochs=epochs,
        )
        if lora is not None:
            with _quiet_peft():
                model = trained.merge_and_unload()
    info = {
        "label": label,
        "base_model": str(source),
        "base_fingerprint": base_fingerprint,
        "objective": objective.describe(),
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "threads": threads,
        "steps": loop.steps,
        "n_examples": len(examples),
        "lora": None if lora is None else {"r": lora.r, "alpha": lora.alpha},
        "final_loss": loop.final_loss,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        with quiet_transformers():
            model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        generation = source / "generation_config.json"
        if generation.is_file():
            shutil.copy2(generation, tmp / generation.name)
        if manifest is not None:
            history = [*manifest.training.get("fine_tuning", []), info]
            replace(manifest, training={**manifest.training, "fine_tuning": history}).write(tmp)
        _publish(tmp, out, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return FineTuneResult(
        model_dir=out,
        steps=loop.steps,
        train_seconds=time.perf_counter() - started,
        final_loss=loop.final_loss,
        objective=objective.describe(),
    )
