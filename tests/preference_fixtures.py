"""Small real models for the preference tests: a word-level tokenizer and a one-layer GPT-2
saved as a transformers directory (seconds to build), and a lexical text encoder."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

WORDS = "a b c d e f g h i j k l m n o p q r s t".split()


def tiny_tokenizer():  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>")


def tiny_gpt2(seed: int = 0):  # type: ignore[no-untyped-def]
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(WORDS) + 2,
        n_embd=16,
        n_layer=1,
        n_head=2,
        n_positions=64,
        bos_token_id=1,
        eos_token_id=1,
        pad_token_id=0,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    return GPT2LMHeadModel(config)


def save_tiny_writer(path: Path, seed: int = 0) -> Path:
    tiny_gpt2(seed).save_pretrained(str(path))
    tiny_tokenizer().save_pretrained(str(path))
    return path


def embed(texts: Sequence[str]) -> np.ndarray:
    """Bag of words hashed into 256 dimensions, unit length: a lexical bi-encoder, so a
    profile that names an item's artist or genre scores that item higher."""
    out = np.zeros((len(texts), 256))
    for row, text in enumerate(texts):
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            out[row, int(hashlib.md5(word.encode()).hexdigest()[:6], 16) % 256] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)
