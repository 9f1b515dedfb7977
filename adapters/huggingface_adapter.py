"""The ``huggingface`` adapter: any local transformers causal LM (``AutoModelForCausalLM``).

Loads a model directory (``config.json``, weights, tokenizer) with ``local_files_only=True``
and ``HF_HUB_OFFLINE=1``, never from the hub; runs on the CPU by default and on CUDA when
asked (``device: cuda``) or available (``device: auto``). Capabilities: ``generate`` (batched,
left-padded, transformers' ``generate`` with a KV cache; sampling through the per-prompt
seeded sampler of :mod:`.token_sampling`, so outputs do not depend on batching), ``score``,
``tokenize``, and ``recommend`` for directories that carry TinyRec's item map.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from audit_sdk.errors import AdapterError
from audit_sdk.hookspecs import RegisterAdapter, hookimpl
from audit_sdk.interfaces import GenerationParams, PluginParams
from audit_sdk.interfaces._params import PathParam

from .local_causal_lm import SMALL_MODEL_PARAMETERS, LocalCausalLM
from .local_model_files import (
    MANIFEST_NAME,
    TOKENIZER_FILES,
    check_causal_lm_config,
    check_tokenizer_files,
    offline,
    quiet_transformers,
    read_model_config,
)
from .token_sampling import sample_next_tokens

__all__ = ["HuggingFaceAdapter", "HuggingFaceParams"]


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` torch CPU threads (unchanged when ``n`` is None)."""
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


Device = Literal["auto", "cpu", "cuda"]
DType = Literal["auto", "float32", "float16", "bfloat16"]
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


class HuggingFaceParams(PluginParams):
    model_dir: Annotated[str, PathParam()] = Field(
        description="local transformers model directory (never downloaded)"
    )
    device: Device = Field(
        "auto", description="'cpu', 'cuda', or 'auto' (CUDA when available, else CPU)"
    )
    batch_size: int = Field(16, ge=1, description="prompts per forward pass")
    dtype: DType = Field(
        "auto", description="weights dtype; 'auto': float32 on CPU, bfloat16/float16 on CUDA"
    )
    max_prompt_tokens: int | None = Field(
        None,
        ge=1,
        description="keep only the last N tokens of longer prompts (default: a prompt that "
        "does not fit the model's context is an error)",
    )
    threads: int | None = Field(
        None,
        ge=1,
        description=(
            "torch CPU threads while the model runs (default: 1 for small models, where more "
            "threads gain little and lose a lot on a busy machine; torch's default otherwise)"
        ),
    )


def resolve_device(device: Device) -> str:
    import torch

    if device == "cuda":
        if not torch.cuda.is_available():
            raise AdapterError(
                "device 'cuda' was asked for, but torch sees no CUDA GPU (torch "
                f"{torch.__version__}). Use device: cpu or auto, or install a CUDA build of torch."
            )
        return "cuda"
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cpu"


def resolve_dtype(dtype: DType, device: str) -> Any:
    import torch

    if dtype == "auto":
        if device == "cpu":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return getattr(torch, dtype)


class _SeededSampling:
    """A transformers logits processor that samples with :func:`sample_next_tokens` and
    leaves only the chosen token, so greedy search keeps it."""

    def __init__(self, generators: list[np.random.Generator], params: GenerationParams) -> None:
        self.generators = generators
        self.params = params

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        choices = sample_next_tokens(
            scores.float().cpu().numpy(),
            self.generators,
            temperature=self.params.temperature,
            top_p=self.params.top_p,
        )
        out = torch.full_like(scores, float("-inf"))
        rows = torch.arange(scores.shape[0], device=scores.device)
        out[rows, torch.from_numpy(choices).to(scores.device)] = 0.0
        return out


class HuggingFaceAdapter(LocalCausalLM):
    """A local Hugging Face causal LM."""

    name = "huggingface"
    description = "A local Hugging Face transformers causal LM (AutoModelForCausalLM directory)."
    Params: ClassVar[type[PluginParams]] = HuggingFaceParams

    # -- backend ----------------------------------------------------------------------------
    def _check_files(self, path: Path) -> None:
        offline()
        config = read_model_config(path, adapter=self.name)
        self.architecture_ = check_causal_lm_config(config, path, adapter=self.name)
        check_tokenizer_files(path, adapter=self.name)
        if not any(f.suffix in _WEIGHT_SUFFIXES for f in path.iterdir()):
            raise AdapterError(
                f"adapter {self.name!r}: {path} has a config.json but no weights "
                f"(*.safetensors or pytorch_model*.bin); save them with model.save_pretrained."
            )

    def _load_backend(self, path: Path) -> None:
        from transformers import AutoModelForCausalLM, GenerationConfig

        self.device_ = resolve_device(self.params.device)  # type: ignore[attr-defined]
        dtype = resolve_dtype(self.params.dtype, self.device_)  # type: ignore[attr-defined]
        try:
            with quiet_transformers():
                model = AutoModelForCausalLM.from_pretrained(
                    str(path), local_files_only=True, dtype=dtype
                )
        except Exception as exc:
            raise AdapterError(
                f"adapter {self.name!r}: cannot load the {self.architecture_} in {path}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        # Sampling happens in this adapter, per call: drop the directory's sampling defaults
        # (temperature, top_k...) so transformers neither applies nor warns about them.
        model.generation_config = GenerationConfig(
            bos_token_id=model.generation_config.bos_token_id,
            eos_token_id=model.generation_config.eos_token_id,
            pad_token_id=model.generation_config.pad_token_id,
        )
        model.to(self.device_)  # type: ignore[arg-type]
        self.model_ = model.eval()
        threads = self.params.threads  # type: ignore[attr-defined]
        small = sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS
        self.threads_ = threads or (1 if small and self.device_ == "cpu" else None)
        accepted = inspect.signature(self.model_.forward).parameters
        self.accepts_positions_ = "position_ids" in accepted
        self.accepts_logits_to_keep_ = "logits_to_keep" in accepted

    def _context_length(self) -> int | None:
        config = self.model_.config
        for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(config, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    def _forward(self, input_ids: np.ndarray, attention_mask: np.ndarray, **extra: Any) -> Any:
        import torch

        ids = torch.from_numpy(input_ids).to(self.device_)
        mask = torch.from_numpy(attention_mask).to(self.device_)
        kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, **extra}
        if self.accepts_positions_:
            kwargs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            return self.model_(**kwargs).logits

    def _logits(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, *, last_only: bool
    ) -> np.ndarray:
        extra = {"logits_to_keep": 1} if last_only and self.accepts_logits_to_keep_ else {}
        with torch_threads(self.threads_):
            logits = self._forward(input_ids, attention_mask, **extra)
        if last_only:
            logits = logits[:, -1:, :]
        return logits.float().cpu().numpy()

    def _tail_logits(self, input_ids: np.ndarray, attention_mask: np.ndarray, keep: int) -> Any:
        extra = {"logits_to_keep": keep} if self.accepts_logits_to_keep_ else {}
        with torch_threads(self.threads_):
            logits = self._forward(input_ids, attention_mask, **extra)
        return logits[:, -keep:, :].float().cpu().numpy()

    def _generate_batch(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        generators: list[np.random.Generator],
        params: GenerationParams,
    ) -> list[list[int]]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        tokenizer = self.tokenizer_
        eos = tokenizer.eos_token_id
        config = GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
        )
        ids = torch.from_numpy(input_ids).to(self.device_)
        mask = torch.from_numpy(attention_mask).to(self.device_)
        with torch.inference_mode(), torch_threads(self.threads_):
            out = self.model_.generate(
                input_ids=ids,
                attention_mask=mask,
                generation_config=config,
                logits_processor=LogitsProcessorList([_SeededSampling(generators, params)]),
            )
        new = out[:, input_ids.shape[1] :].cpu().numpy()
        results = []
        for row in new:
            tokens = row.tolist()
            if eos is not None and eos in tokens:
                tokens = tokens[: tokens.index(eos)]
            results.append(tokens)
        return results

    def _fingerprint_files(self, path: Path) -> list[str]:
        weights = [f.name for f in path.iterdir() if f.suffix in _WEIGHT_SUFFIXES]
        return ["config.json", MANIFEST_NAME, *TOKENIZER_FILES, *weights]

    def _backend_description(self) -> dict[str, Any]:
        model = self.model_
        return {
            "backend": "transformers",
            "model_type": model.config.model_type,
            "architecture": self.architecture_,
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "device": self.device_,
            "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
            "context_length": self._context_length(),
        }

    def close(self) -> None:
        model = getattr(self, "model_", None)
        if model is None:
            return
        self.model_ = None
        self.tokenizer_ = None
        if getattr(self, "device_", "cpu") == "cuda":
            import torch

            torch.cuda.empty_cache()


@hookimpl
def audit_sdk_register_adapters(register: RegisterAdapter) -> None:
    register(HuggingFaceAdapter)
