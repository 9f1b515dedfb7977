"""TinyRec: the embedded white-box LLM recommender and profile writer (a built-in plugin).

A small GPT-2-style causal LM trained from scratch on CPU (transformers + tokenizers) on two
tasks: next-item recommendation from a listening history, and writing a taste profile from a
two-step sample of (artist, track) pairs by imitating the template profile writer. It is saved
as a standard transformers model directory, which the ``huggingface`` adapter loads and the
ONNX export accepts; ``audit_sdk_tinyrec.json`` beside the weights maps item tokens to items.
Training runs a fixed number of steps and gives byte-identical weights for a seed at any
machine load (:mod:`.training_loop`); what it minimises is a pluggable
:class:`TrainingObjective` (:mod:`.objectives`).

The ``tinyrec`` adapter (:mod:`audit_sdk.adapters.tinyrec_adapter`) serves it and registers
the ``audit-sdk train-tinyrec`` command. Needs the ``llm`` extra (torch, transformers,
tokenizers); importing this package does not import torch.
"""

from __future__ import annotations

from ..local_model_files import (
    MANIFEST_NAME,
    TINYREC_FORMAT_VERSION,
    TinyRecManifest,
    read_manifest,
)
from .objectives import (
    CrossEntropyObjective,
    TrainingBatch,
    TrainingObjective,
    WeightedCrossEntropyObjective,
)
from .settings import SIZES, TinyRecSettings, TinyRecSize
from .training import TinyRecTrainingResult, train_tinyrec

__all__ = [
    "MANIFEST_NAME",
    "SIZES",
    "TINYREC_FORMAT_VERSION",
    "CrossEntropyObjective",
    "TinyRecManifest",
    "TinyRecSettings",
    "TinyRecSize",
    "TinyRecTrainingResult",
    "TrainingBatch",
    "TrainingObjective",
    "WeightedCrossEntropyObjective",
    "read_manifest",
    "train_tinyrec",
]
