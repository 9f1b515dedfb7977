"""The ``onnx`` adapter: a causal LM exported with ``audit-sdk export-onnx``, on ONNX Runtime.

Runs the exported decoder step (:mod:`.onnx_export`) with a KV cache: one pass over the
left-padded prompts, then one pass per generated token. CPU execution provider by default;
the CUDA provider when asked (``provider: cuda``, which needs the ``gpu`` extra,
``onnxruntime-gpu``) or available (``provider: auto``). Capabilities as the ``huggingface``
adapter: ``generate`` (same per-prompt seeded sampler, so the same text for the same seed),
``score``, ``tokenize``, and ``recommend`` for TinyRec exports (the item map is copied by the
export).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from audit_sdk.errors import AdapterError
from audit_sdk.hookspecs import RegisterAdapter, RegisterCommand, hookimpl
from audit_sdk.interfaces import GenerationParams, PluginParams
from audit_sdk.interfaces._params import PathParam

from .local_causal_lm import SMALL_MODEL_PARAMETERS, LocalCausalLM
from .local_model_files import MANIFEST_NAME, TOKENIZER_FILES, check_tokenizer_files
from .onnx_export import ONNX_MANIFEST_NAME, ONNX_MODEL_NAME, export_onnx
from .token_sampling import sample_next_tokens

__all__ = ["OnnxAdapter", "OnnxParams", "export_onnx"]


class OnnxParams(PluginParams):
    model_dir: Annotated[str, PathParam()] = Field(
        description="directory written by `audit-sdk export-onnx`"
    )
    provider: Literal["auto", "cpu", "cuda"] = Field(
        "cpu", description="ONNX Runtime execution provider; 'cuda' needs the gpu extra"
    )
    batch_size: int = Field(16, ge=1, description="prompts per pass")
    max_prompt_tokens: int | None = Field(
        None, ge=1, description="keep only the last N tokens of longer prompts"
    )
    threads: int | None = Field(
        None, ge=1, description="intra-op threads (default: 1 for small models, else ORT's)"
    )


def _providers(provider: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if provider == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise AdapterError(
                "provider 'cuda' was asked for, but this onnxruntime has no CUDA execution "
                f"provider (available: {', '.join(available)}). Install the gpu extra "
                "(pip install 'audit-sdk[gpu]', which brings onnxruntime-gpu) or use "
                "provider: cpu."
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if provider == "auto" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxAdapter(LocalCausalLM):
    """A causal LM exported to ONNX."""

    name = "onnx"
    description = "A causal LM exported to ONNX (audit-sdk export-onnx), on ONNX Runtime."
    Params: ClassVar[type[PluginParams]] = OnnxParams

    def _check_files(self, path: Path) -> None:
        if not (path / ONNX_MODEL_NAME).is_file() or not (path / ONNX_MANIFEST_NAME).is_file():
            raise AdapterError(
                f"adapter {self.name!r}: {path} is not an audit-sdk ONNX export (it lacks "
                f"{ONNX_MODEL_NAME} or {ONNX_MANIFEST_NAME}). Export the model first: "
                f"audit-sdk export-onnx MODEL_DIR {path}."
            )
        check_tokenizer_files(path, adapter=self.name)
        try:
            self.export_info_ = json.loads((path / ONNX_MANIFEST_NAME).read_text("utf-8"))
            self.past_names_ = [n for n in self.export_info_["inputs"] if n.startswith("past_")]
        except (OSError, ValueError, KeyError) as exc:
            raise AdapterError(
                f"adapter {self.name!r}: {path / ONNX_MANIFEST_NAME} is unreadable ({exc}); "
                f"export the model again."
            ) from None

    def _load_backend(self, path: Path) -> None:
        try:
            import onnxruntime as ort
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise AdapterError(
                "the onnx adapter needs onnxruntime: pip install 'audit-sdk[onnx]'."
            ) from None
        options = ort.SessionOptions()
        threads = self.params.threads  # type: ignore[attr-defined]
        small = (path / ONNX_MODEL_NAME).stat().st_size < 4 * SMALL_MODEL_PARAMETERS
        if threads or small:
            options.intra_op_num_threads = int(threads or 1)
        self.providers_ = _providers(self.params.provider)  # type: ignore[attr-defined]
        try:
            self.session_ = ort.InferenceSession(
                str(path / ONNX_MODEL_NAME), sess_options=options, providers=self.providers_
            )
        except Exception as exc:
            raise AdapterError(
                f"adapter {self.name!r}: ONNX Runtime cannot load {path / ONNX_MODEL_NAME}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        config = json.loads((path / "config.json").read_text("utf-8"))
        context = None
        for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            if isinstance(config.get(key), int) and config[key] > 0:
                context = int(config[key])
                break
        self.context_ = context

    def _context_length(self) -> int | None:
        return self.context_

    def _empty_past(self, batch: int) -> dict[str, np.ndarray]:
        shape = (batch, int(self.export_info_["kv_heads"]), 0, int(self.export_info_["head_dim"]))
        return {name: np.zeros(shape, dtype=np.float32) for name in self.past_names_}

    def _run(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        positions: np.ndarray,
        past: dict[str, np.ndarray],
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        feeds = {
            "input_ids": input_ids.astype(np.int64, copy=False),
            "attention_mask": attention_mask.astype(np.int64, copy=False),
            "logit_positions": positions.astype(np.int64, copy=False),
            **past,
        }
        outputs = self.session_.run(None, feeds)
        return outputs[0], outputs[1:]

    def _logits(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, *, last_only: bool
    ) -> np.ndarray:
        width = input_ids.shape[1]
        positions = np.array([width - 1]) if last_only else np.arange(width)
        logits, _ = self._run(
            input_ids, attention_mask, positions, self._empty_past(len(input_ids))
        )
        return logits

    def _tail_logits(self, input_ids: np.ndarray, attention_mask: np.ndarray, keep: int) -> Any:
        width = input_ids.shape[1]
        positions = np.arange(width - keep, width)
        logits, _ = self._run(
            input_ids, attention_mask, positions, self._empty_past(len(input_ids))
        )
        return logits

    def _generate_batch(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        generators: list[np.random.Generator],
        params: GenerationParams,
    ) -> list[list[int]]:
        eos = self.tokenizer_.eos_token_id
        n = len(input_ids)
        mask = attention_mask
        logits, presents = self._run(
            input_ids, mask, np.array([input_ids.shape[1] - 1]), self._empty_past(n)
        )
        outputs: list[list[int]] = [[] for _ in range(n)]
        finished = np.zeros(n, dtype=bool)
        for step in range(params.max_new_tokens):
            choices = sample_next_tokens(
                logits[:, -1, :],
                generators,
                temperature=params.temperature,
                top_p=params.top_p,
            )
            for row in np.flatnonzero(~finished):
                token = int(choices[row])
                if eos is not None and token == eos:
                    finished[row] = True
                else:
                    outputs[row].append(token)
            if finished.all() or step == params.max_new_tokens - 1:
                break
            mask = np.concatenate([mask, np.ones((n, 1), dtype=mask.dtype)], axis=1)
            logits, presents = self._run(
                choices[:, None],
                mask,
                np.zeros(1, dtype=np.int64),
                dict(zip(self.past_names_, presents, strict=True)),
            )
        return outputs

    def _fingerprint_files(self, path: Path) -> list[str]:
        data = [f.name for f in path.iterdir() if f.name.startswith(ONNX_MODEL_NAME)]
        return [*data, ONNX_MANIFEST_NAME, "config.json", MANIFEST_NAME, *TOKENIZER_FILES]

    def _backend_description(self) -> dict[str, Any]:
        import onnxruntime as ort

        info = self.export_info_
        return {
            "backend": "onnxruntime",
            "onnxruntime_version": ort.__version__,
            "providers": self.session_.get_providers(),
            "model_type": info.get("model_type"),
            "architecture": info.get("architecture"),
            "opset": info.get("opset"),
            "source_fingerprint": info.get("source_fingerprint"),
            "context_length": self.context_,
        }

    def close(self) -> None:
        self.session_ = None
        self.tokenizer_ = None


@hookimpl
def audit_sdk_register_adapters(register: RegisterAdapter) -> None:
    register(OnnxAdapter)


@hookimpl
def audit_sdk_register_commands(register: RegisterCommand) -> None:
    from .onnx_export_command import ExportOnnxCommand

    register(ExportOnnxCommand)
