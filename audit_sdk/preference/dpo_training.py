"""Align a Hugging Face causal-LM profile writer with DPO on CPU, deterministically.

:func:`train_dpo_writer` loads the writer's directory (``AutoModelForCausalLM``, offline),
computes the frozen reference log-probabilities of every pair once (pi_ref is the writer before
training), then runs a fixed number of AdamW steps (the rate decaying linearly to 0 by
default, as in TRL) on the DPO loss of :mod:`.dpo_loss` (Rafailov et al., NeurIPS 2023, eq. 7;
with ``nll_weight``, the DPO + NLL loss of Pang et al., NeurIPS 2024) in a seeded order, on a
fixed number of threads, so a seed gives the same weights on any machine load. With
``lora_rank`` set, only LoRA adapters (Hu et al., ICLR 2022, through ``peft``) are trained and
then merged back, for writers too large to tune whole. Prompts and completions are tokenized
as the local adapters generate them: the prompt with the tokenizer's special tokens, the
completion as ``" " + text`` followed by end-of-text (the format TinyRec learned to write
profiles in).

The tuned writer is written as a new model directory (the source's tokenizer, item map and
config, new weights, and ``audit_sdk_dpo.json`` with the settings and the training curve),
atomically; its files, hence its fingerprint, differ from the source's. A directory that
already holds the same training is reused.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from audit_sdk.atomic_io import atomic_write_text
from audit_sdk.errors import AuditSDKError
from audit_sdk.preference.dpo_loss import chosen_nll, dpo_loss, token_logprobs
from audit_sdk.preference.preference_pairs import PreferencePair

__all__ = [
    "DPO_RECORD_NAME",
    "DPOSettings",
    "DPOTrainingResult",
    "LearningRateSchedule",
    "UntrainableWriterError",
    "train_dpo_writer",
]

DPO_RECORD_NAME = "audit_sdk_dpo.json"
LearningRateSchedule = Literal["linear", "constant"]
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


class UntrainableWriterError(AuditSDKError):
    """The writer is not a local causal LM that can be trained here, or no pair fits it."""


@dataclass(frozen=True)
class DPOSettings:
    """What :func:`train_dpo_writer` does; every field is part of the trained directory's
    record (and of the mitigator's cache key)."""

    beta: float = 0.1
    learning_rate: float = 2e-4
    epochs: int = 2
    batch_size: int = 8
    max_grad_norm: float = 1.0
    seed: int = 0
    threads: int = 1
    lora_rank: int | None = None
    """train LoRA adapters of this rank (peft) instead of every weight"""
    lora_alpha: int = 16
    nll_weight: float = 0.0
    """alpha of DPO + NLL (RPO, Pang et al., NeurIPS 2024): 0 is plain DPO"""
    lr_schedule: LearningRateSchedule = "linear"
    """``linear`` decays the rate to 0 over the steps (TRL's and transformers' default);
    ``constant`` keeps it"""


@dataclass
class DPOTrainingResult:
    model_dir: Path
    settings: DPOSettings
    pairs_used: int
    pairs_dropped: int
    steps: int
    losses: list[float] = field(default_factory=list)
    """mean loss per epoch (DPO alone starts at log 2, before any step has moved the policy)"""
    reward_accuracy: float = float("nan")
    """share of pairs whose implicit reward margin is positive after training"""
    seconds: float = 0.0
    reused: bool = False

    def record(self) -> dict[str, Any]:
        return {
            "settings": asdict(self.settings),
            "pairs_used": self.pairs_used,
            "pairs_dropped": self.pairs_dropped,
            "steps": self.steps,
            "losses": self.losses,
            "reward_accuracy": self.reward_accuracy,
            "seconds": round(self.seconds, 3),
        }


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _load(model_dir: Path) -> tuple[Any, Any]:
    if not (model_dir / "config.json").is_file():
        raise UntrainableWriterError(
            f"{model_dir} is not a transformers model directory (no config.json); DPO needs a "
            "local Hugging Face causal LM (the tinyrec or huggingface adapter)"
        )
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as error:
        raise UntrainableWriterError(
            "DPO training needs torch and transformers: pip install 'audit-sdk[llm]'"
        ) from error
    from audit_sdk.transformers_support import offline, quiet_transformers

    offline()
    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True)
    except Exception as exc:
        raise UntrainableWriterError(
            f"cannot load {model_dir} as a causal LM: {type(exc).__name__}: {exc}"
        ) from None
    return tokenizer, model.float()


def _encode(
    pairs: Sequence[PreferencePair], tokenizer: Any, *, max_length: int | None
) -> tuple[list[tuple[list[int], list[int], list[int]]], int]:
    """(prompt, chosen, rejected) token ids per pair that fits the context; and how many did
    not fit."""
    eos = tokenizer.eos_token_id
    tail = [eos] if eos is not None else []
    prompts = tokenizer([p.prompt for p in pairs], verbose=False)["input_ids"]
    chosen = tokenizer([" " + p.chosen for p in pairs], add_special_tokens=False, verbose=False)[
        "input_ids"
    ]
    rejected = tokenizer(
        [" " + p.rejected for p in pairs], add_special_tokens=False, verbose=False
    )["input_ids"]
    out, dropped = [], 0
    for prompt, good, bad in zip(prompts, chosen, rejected, strict=True):
        good, bad = [*good, *tail], [*bad, *tail]
        if max_length is not None and len(prompt) + max(len(good), len(bad)) > max_length:
            dropped += 1
            continue
        out.append((list(prompt), good, bad))
    return out, dropped


def preference_batch(
    encoded: Sequence[tuple[list[int], list[int], list[int]]], *, pad_id: int
) -> tuple[Any, Any, Any]:
    """Right-padded (input ids, attention mask, completion mask) tensors, the chosen
    completions in the first half of the rows and the rejected in the second (TRL's layout)."""
    import torch

    rows = [(p, c) for p, c, _ in encoded] + [(p, r) for p, _, r in encoded]
    width = max(len(p) + len(c) for p, c in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    completion = np.zeros((len(rows), width), dtype=np.int64)
    for row, (prompt, comp) in enumerate(rows):
        n = len(prompt) + len(comp)
        ids[row, :n] = prompt + comp
        mask[row, :n] = 1
        completion[row, len(prompt) : n] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(completion)


def _token_logps(model: Any, batch: tuple[Any, Any, Any]) -> tuple[Any, Any]:
    ids, mask, completion = batch
    logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
    return token_logprobs(logits, ids, completion)


def _logps(model: Any, batch: tuple[Any, Any, Any]) -> Any:
    picked, mask = _token_logps(model, batch)
    return (picked * mask).sum(dim=1)


def _same_training(out_dir: Path, record: dict[str, Any]) -> bool:
    path = out_dir / DPO_RECORD_NAME
    if not path.is_file():
        return False
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return bool(stored.get("key") == record["key"])


def train_dpo_writer(
    model_dir: str | Path,
    pairs: Sequence[PreferencePair],
    *,
    out_dir: str | Path,
    settings: DPOSettings | None = None,
    pairs_sha256: str = "",
    source_fingerprint: str = "",
) -> DPOTrainingResult:
    """Train the writer in ``model_dir`` on ``pairs`` with DPO; write it to ``out_dir``.

    :param pairs_sha256: identifies the pairs (:func:`.preference_pairs.pairs_sha256`);
    :param source_fingerprint: identifies the writer (its adapter's fingerprint); with the
        pairs and ``settings``, the key under which an existing ``out_dir`` is reused.
    :raises UntrainableWriterError: the directory is not a causal LM, or no pair fits it.
    """
    import torch
    from transformers import get_scheduler

    settings = settings or DPOSettings()
    source, target = Path(model_dir), Path(out_dir)
    key = {
        "source": source_fingerprint or str(source.resolve()),
        "pairs": pairs_sha256,
        "settings": asdict(settings),
    }
    record: dict[str, Any] = {"key": json.dumps(key, sort_keys=True)}
    if _same_training(target, record):
        stored = json.loads((target / DPO_RECORD_NAME).read_text(encoding="utf-8"))
        return DPOTrainingResult(
            model_dir=target,
            settings=settings,
            pairs_used=int(stored["pairs_used"]),
            pairs_dropped=int(stored["pairs_dropped"]),
            steps=int(stored["steps"]),
            losses=list(stored["losses"]),
            reward_accuracy=float(stored["reward_accuracy"]),
            seconds=float(stored["seconds"]),
            reused=True,
        )
    began = time.perf_counter()
    tokenizer, model = _load(source)
    max_length = getattr(model.config, "n_positions", None) or getattr(
        model.config, "max_position_embeddings", None
    )
    encoded, dropped = _encode(pairs, tokenizer, max_length=max_length)
    if not encoded:
        raise UntrainableWriterError(
            f"none of the {len(pairs)} preference pairs fits the writer's context "
            f"({max_length} tokens)"
        )
    pad_id = tokenizer.pad_token_id
    pad_id = int(pad_id if pad_id is not None else (tokenizer.eos_token_id or 0))
    size = settings.batch_size
    with _torch_threads(settings.threads):
        torch.manual_seed(settings.seed)
        model.eval()
        reference: list[Any] = []
        with torch.no_grad():
            for start in range(0, len(encoded), size):
                reference.append(
                    _logps(model, preference_batch(encoded[start : start + size], pad_id=pad_id))
                )
        ref = torch.cat([r.view(2, -1) for r in reference], dim=1)  # (2, n): chosen, rejected
        if settings.lora_rank is not None:
            model = _with_lora(model, settings)
        model.train()
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=0.0)
        scheduler = get_scheduler(  # what TRL's DPOTrainer steps with (lr_scheduler_type)
            settings.lr_schedule,
            optimizer,
            num_warmup_steps=0,
            num_training_steps=settings.epochs * math.ceil(len(encoded) / size),
        )
        rng = np.random.default_rng(settings.seed)
        steps, losses = 0, []
        for _ in range(settings.epochs):
            order = rng.permutation(len(encoded))
            epoch_loss, seen = 0.0, 0
            for start in range(0, len(order), size):
                rows = order[start : start + size]
                batch = preference_batch([encoded[i] for i in rows], pad_id=pad_id)
                picked, completion = _token_logps(model, batch)
                chosen, rejected = (picked * completion).sum(dim=1).chunk(2)
                index = torch.from_numpy(rows)
                loss, _ = dpo_loss(
                    chosen, rejected, ref[0, index], ref[1, index], beta=settings.beta
                )
                if settings.nll_weight > 0:
                    loss = loss + settings.nll_weight * chosen_nll(picked, completion)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, settings.max_grad_norm)
                optimizer.step()
                scheduler.step()
                steps += 1
                epoch_loss += float(loss.detach()) * len(rows)
                seen += len(rows)
            losses.append(epoch_loss / max(seen, 1))
        if settings.lora_rank is not None:
            model = model.merge_and_unload()
        model.eval()
        margins = []
        with torch.no_grad():
            for start in range(0, len(encoded), size):
                logps = _logps(
                    model, preference_batch(encoded[start : start + size], pad_id=pad_id)
                )
                chosen, rejected = logps.chunk(2)
                index = torch.arange(start, start + len(chosen))
                _, margin = dpo_loss(
                    chosen, rejected, ref[0, index], ref[1, index], beta=settings.beta
                )
                margins.append(margin)
        accuracy = float((torch.cat(margins) > 0).double().mean())
    result = DPOTrainingResult(
        model_dir=target,
        settings=settings,
        pairs_used=len(encoded),
        pairs_dropped=dropped,
        steps=steps,
        losses=[round(x, 6) for x in losses],
        reward_accuracy=accuracy,
        seconds=time.perf_counter() - began,
    )
    _save(model, source, target, {**record, **result.record()})
    return result


def _with_lora(model: Any, settings: DPOSettings) -> Any:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as error:
        raise UntrainableWriterError(
            "LoRA needs peft: pip install 'audit-sdk[preference]'"
        ) from error
    # GPT-2-style models keep their projections in transposed Conv1D layers
    transposed = any(type(m).__name__ == "Conv1D" for m in model.modules())
    config = LoraConfig(
        r=int(settings.lora_rank or 8),
        fan_in_fan_out=transposed,
        lora_alpha=settings.lora_alpha,
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        # peft reads transformers' deprecated is_gradient_checkpointing; nothing to do here
        warnings.filterwarnings(
            "ignore", message=".*gradient_checkpointing", category=FutureWarning
        )
        return get_peft_model(model, config)


def _save(model: Any, source: Path, target: Path, record: dict[str, Any]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for path in source.iterdir():
            if (
                path.is_file()
                and not path.name.endswith(_WEIGHT_SUFFIXES)
                and not (path.name.endswith(".index.json"))
            ):
                shutil.copy2(path, staging / path.name)
        from audit_sdk.transformers_support import quiet_transformers

        with quiet_transformers():  # no "writing shards" bar inside the audit's progress
            model.save_pretrained(str(staging))
        atomic_write_text(staging / DPO_RECORD_NAME, json.dumps(record, indent=1, sort_keys=True))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
