"""TinyRec: the embedded white-box LLM recommender and profile writer.

A small GPT-2-style causal LM trained from scratch on CPU (transformers + tokenizers) on two
tasks: next-item recommendation from a listening history, and writing a taste profile from a
two-step sample of (artist, track) pairs by imitating the template profile writer. It is saved
as a standard transformers model directory, which the ``huggingface`` adapter loads and the
ONNX export accepts; ``audit_sdk_tinyrec.json`` beside the weights maps item tokens to items.

Needs the ``llm`` extra (torch, transformers, tokenizers); importing this package does not
import torch.
"""

from __future__ import annotations

from audit_sdk.tinyrec.model_files import (
    MANIFEST_NAME,
    TINYREC_FORMAT_VERSION,
    TinyRecManifest,
    read_manifest,
)
from audit_sdk.tinyrec.training import (
    SIZES,
    TinyRecSettings,
    TinyRecSize,
    TinyRecTrainingResult,
    train_tinyrec,
)

__all__ = [
    "MANIFEST_NAME",
    "SIZES",
    "TINYREC_FORMAT_VERSION",
    "TinyRecManifest",
    "TinyRecSettings",
    "TinyRecSize",
    "TinyRecTrainingResult",
    "read_manifest",
    "train_tinyrec",
]
