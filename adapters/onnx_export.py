"""Export a local transformers causal LM to ONNX, with a KV cache (``audit-sdk export-onnx``).

The exported graph is one decoder step, usable both for a whole prompt and for each generated
token::

    inputs:  input_ids (batch, new), attention_mask (batch, past + new),
             logit_positions (k,)  -- which of the new positions get logits,
             past_key_<i>, past_value_<i> (batch, kv_heads, past, head_dim) per layer
    outputs: logits (batch, k, vocab), present_key_<i>, present_value_<i>
             (batch, kv_heads, past + new, head_dim)

A prompt runs with an empty past (``past = 0``); each further token feeds back the presents.
Position ids are the running count of attended tokens (``cumsum(attention_mask) - 1``), and
the attention mask is built inside the graph as an explicit causal-and-padding mask, so
left-padded batches give each row the same numbers as it would alone. It is exported with
PyTorch's TorchScript-based exporter (``dynamo=False``), which needs no extra package, in
float32. Supported: decoder-only models with a standard full-attention KV cache (GPT-2, Llama,
Mistral without sliding windows, Qwen2, Phi...); the export checks its own output against
transformers before it is published.

The output directory holds ``model.onnx``, the model's ``config.json``, generation config and
tokenizer files, TinyRec's item map when the source has one (so the ``onnx`` adapter can serve
``recommend``), and ``audit_sdk_onnx.json`` (graph layout, source fingerprint, versions).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from audit_sdk.atomic_io import atomic_write_text
from audit_sdk.errors import AdapterError

from .local_model_files import (
    TOKENIZER_FILES,
    check_causal_lm_config,
    check_model_directory,
    check_tokenizer_files,
    directory_fingerprint,
    offline,
    quiet_transformers,
    read_model_config,
)

__all__ = ["ONNX_MANIFEST_NAME", "ONNX_MODEL_NAME", "export_onnx"]

ONNX_MODEL_NAME = "model.onnx"
ONNX_MANIFEST_NAME = "audit_sdk_onnx.json"
ONNX_FORMAT_VERSION = 1
PARITY_TOLERANCE = 1e-3
_COPIED = ("config.json", "generation_config.json", "audit_sdk_tinyrec.json", *TOKENIZER_FILES)


def _decoder_step_module(model: Any, n_layers: int) -> Any:
    import torch
    from transformers import DynamicCache

    class DecoderStep(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            logit_positions: torch.Tensor,
            *past: torch.Tensor,
        ) -> tuple[torch.Tensor, ...]:
            new = input_ids.shape[1]
            total = attention_mask.shape[1]
            past_length = total - new
            positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)[:, past_length:]
            query = torch.arange(new, device=input_ids.device)[:, None] + past_length
            key = torch.arange(total, device=input_ids.device)[None, :]
            allowed = (key <= query)[None, None, :, :] & attention_mask[:, None, None, :].bool()
            mask = torch.zeros(allowed.shape, dtype=torch.float32, device=input_ids.device)
            mask = mask.masked_fill(~allowed, torch.finfo(torch.float32).min)
            cache = DynamicCache(
                ddp_cache_data=[(past[2 * i], past[2 * i + 1]) for i in range(n_layers)],
                config=self.model.config,
            )
            out = self.model(
                input_ids=input_ids,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=logit_positions,
            )
            presents: list[torch.Tensor] = []
            for layer in out.past_key_values.layers:
                presents += [layer.keys, layer.values]
            return (out.logits, *presents)

    return DecoderStep().eval()


def _cache_layout(model: Any) -> tuple[int, int, int]:
    """(layers, kv heads, head dim), read from a real forward pass."""
    import torch

    with torch.no_grad():
        ids = torch.tensor([[1, 2]])
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True)
    layers = list(out.past_key_values.layers)
    keys = layers[0].keys
    return len(layers), int(keys.shape[1]), int(keys.shape[3])


def export_onnx(
    model_dir: str | Path,
    out_dir: str | Path,
    *,
    opset: int = 17,
    overwrite: bool = False,
) -> Path:
    """Export the causal LM in ``model_dir`` to ``out_dir`` (see the module docstring).

    The export is checked before it is published: next-token log-probabilities of a
    left-padded test batch, with and without a cache, must match transformers within
    ``1e-3``. The directory appears complete or not at all.

    :returns: the path of ``model.onnx``.
    """
    offline()
    source = check_model_directory(model_dir, adapter="onnx export")
    config_data = read_model_config(source, adapter="onnx export")
    architecture = check_causal_lm_config(config_data, source, adapter="onnx export")
    check_tokenizer_files(source, adapter="onnx export")
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not overwrite:
        raise AdapterError(f"{out_dir} already exists; choose a new directory or pass overwrite.")
    try:
        import onnxruntime  # noqa: F401
        import torch
        from transformers import AutoModelForCausalLM
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise AdapterError(
            f"ONNX export needs torch, transformers and onnxruntime ({exc.name} is missing): "
            f"pip install 'audit-sdk[llm,onnx]'."
        ) from None

    with quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(
            str(source), local_files_only=True, dtype=torch.float32
        ).eval()
    n_layers, kv_heads, head_dim = _cache_layout(model)
    step = _decoder_step_module(model, n_layers)
    past_names = [f"past_{kind}_{i}" for i in range(n_layers) for kind in ("key", "value")]
    present_names = [name.replace("past_", "present_") for name in past_names]
    axes: dict[str, dict[int, str]] = {
        "input_ids": {0: "batch", 1: "new"},
        "attention_mask": {0: "batch", 1: "total"},
        "logit_positions": {0: "kept"},
        "logits": {0: "batch", 1: "kept"},
    }
    axes.update({name: {0: "batch", 2: "past"} for name in past_names})
    axes.update({name: {0: "batch", 2: "total"} for name in present_names})
    example_ids = torch.tensor([[5, 6, 7], [8, 9, 10]])
    example_mask = torch.tensor([[1, 1, 1, 1, 1], [0, 1, 1, 1, 1]])
    example_past = [torch.zeros(2, kv_heads, 2, head_dim) for _ in past_names]
    example_positions = torch.tensor([0, 2])

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter's deprecation notice and tracer warnings about
            # shape-dependent Python values: the graph is verified numerically below.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                step,
                (example_ids, example_mask, example_positions, *example_past),
                str(tmp_dir / ONNX_MODEL_NAME),
                input_names=["input_ids", "attention_mask", "logit_positions", *past_names],
                output_names=["logits", *present_names],
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False,
            )
        for name in _COPIED:
            if (source / name).is_file():
                shutil.copy2(source / name, tmp_dir / name)
        worst = _parity_error(model, tmp_dir / ONNX_MODEL_NAME, past_names, kv_heads, head_dim)
        if not worst <= PARITY_TOLERANCE:
            raise AdapterError(
                f"ONNX export of {source}: next-token log-probabilities differ from "
                f"transformers by {worst:.2e} (> {PARITY_TOLERANCE}); the {architecture} is not "
                f"supported by this exporter."
            )
        manifest = {
            "format": "audit-sdk-onnx",
            "format_version": ONNX_FORMAT_VERSION,
            "architecture": architecture,
            "model_type": config_data.get("model_type"),
            "n_layers": n_layers,
            "kv_heads": kv_heads,
            "head_dim": head_dim,
            "inputs": ["input_ids", "attention_mask", "logit_positions", *past_names],
            "outputs": ["logits", *present_names],
            "opset": opset,
            "dtype": "float32",
            "parity_max_abs_logprob_error": worst,
            "source": str(source.resolve()),
            "source_fingerprint": directory_fingerprint(
                source,
                [f.name for f in source.iterdir() if f.suffix in (".safetensors", ".bin")]
                + list(_COPIED),
            ),
            "torch_version": torch.__version__,
        }
        atomic_write_text(tmp_dir / ONNX_MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp_dir.replace(out_dir)
    except AdapterError:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    except Exception as exc:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise AdapterError(
            f"ONNX export of {source} ({architecture}) failed: {type(exc).__name__}: {exc}"
        ) from None
    return out_dir / ONNX_MODEL_NAME


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    peak = x.max(axis=-1, keepdims=True)
    return x - peak - np.log(np.exp(x - peak).sum(axis=-1, keepdims=True))


def _parity_error(
    model: Any, onnx_path: Path, past_names: list[str], kv_heads: int, head_dim: int
) -> float:
    """Largest |log-prob difference| between transformers and the export on a left-padded
    batch: all positions of a prompt in one pass, then two cached single-token steps."""
    import onnxruntime as ort
    import torch

    vocab = int(model.config.vocab_size)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocab, size=(3, 9)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[0, :4] = 0
    mask[2, :1] = 0
    with torch.no_grad():
        t_mask = torch.from_numpy(mask)
        reference = model(
            input_ids=torch.from_numpy(ids),
            attention_mask=t_mask,
            position_ids=(t_mask.cumsum(-1) - 1).clamp(min=0),
        ).logits.numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    prefix = 7
    feeds: dict[str, np.ndarray] = {
        "input_ids": ids[:, :prefix],
        "attention_mask": mask[:, :prefix],
        "logit_positions": np.arange(prefix, dtype=np.int64),
    }
    feeds.update({n: np.zeros((3, kv_heads, 0, head_dim), np.float32) for n in past_names})
    outputs = session.run(None, feeds)
    got = [outputs[0]]
    past = outputs[1:]
    for column in range(prefix, ids.shape[1]):
        feeds = {
            "input_ids": ids[:, column : column + 1],
            "attention_mask": mask[:, : column + 1],
            "logit_positions": np.zeros(1, dtype=np.int64),
        }
        feeds.update(dict(zip(past_names, past, strict=True)))
        outputs = session.run(None, feeds)
        got.append(outputs[0])
        past = outputs[1:]
    onnx_logits = np.concatenate(got, axis=1)
    valid = mask.astype(bool)
    diff = np.abs(_log_softmax(onnx_logits) - _log_softmax(reference))
    return float(diff[valid].max())
