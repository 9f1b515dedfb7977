"""What the local causal-LM adapters share: prompts to token batches, scoring, tokenizing,
recommendations from an item map, fingerprints and descriptions.

A backend (transformers in :mod:`.huggingface_adapter`, ONNX Runtime in :mod:`.onnx_adapter`)
supplies four things: loading, logits at chosen positions of a left-padded batch, batched
generation of token ids, and what to call the model in reports.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from audit_sdk.attribution.token_scoring import TargetLogprobs
from audit_sdk.errors import AdapterError
from audit_sdk.interfaces import (
    Capability,
    GenerationParams,
    GeneratorAdapter,
    Tokenization,
    TokenScores,
)
from audit_sdk.user_histories import user_histories

from .catalog_ranking import ItemRanker
from .local_model_files import (
    MANIFEST_NAME,
    check_model_directory,
    directory_fingerprint,
    load_tokenizer,
    read_manifest,
)
from .token_sampling import prompt_generators

__all__ = ["SMALL_MODEL_PARAMETERS", "LocalCausalLM"]


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis of float32 logits (torch's kernel when torch is
    installed, several times faster than numpy's; float32 is within 1e-6 of float64 here)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - the onnx extra without the llm extra
        values = np.asarray(logits, dtype=np.float64)
        peak = values.max(axis=-1, keepdims=True)
        return values - (peak + np.log(np.exp(values - peak).sum(axis=-1, keepdims=True)))
    tensor = torch.as_tensor(np.ascontiguousarray(logits, dtype=np.float32))
    return torch.log_softmax(tensor, dim=-1).numpy()


# Below this size a forward pass is too small to split across threads: on two cores one thread
# writes TinyRec's profiles about as fast as two, and three times faster when another process
# competes for the cores (measured: 53.6 vs 17.6 profiles/s).
SMALL_MODEL_PARAMETERS = 20_000_000


class LocalCausalLM(GeneratorAdapter):
    """Base of the adapters that run a causal LM in this process. Not registered itself."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {"generate", "score", "tokenize", "recommend"}
    )

    # -- backend hooks ----------------------------------------------------------------------
    def _model_dir(self) -> Path:
        """The model directory (``params.model_dir``, checked); TinyRec resolves (and trains)
        its own."""
        return check_model_directory(self.params.model_dir, adapter=self.name)  # type: ignore[attr-defined]

    @abstractmethod
    def _check_files(self, path: Path) -> None:
        """Raise a clear :class:`AdapterError` if the directory cannot be this backend's model
        (checked before anything loads)."""

    @abstractmethod
    def _load_backend(self, path: Path) -> None:
        """Load weights into ``self``; the tokenizer is already loaded."""

    @abstractmethod
    def _logits(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, *, last_only: bool
    ) -> np.ndarray:
        """Float32 logits (n, t or 1, vocab) of a left-padded batch."""

    @abstractmethod
    def _generate_batch(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        generators: list[np.random.Generator],
        params: GenerationParams,
    ) -> list[list[int]]:
        """New token ids per row (without the prompt), stopping at end-of-text."""

    @abstractmethod
    def _fingerprint_files(self, path: Path) -> list[str]:
        """File names whose content identifies the model."""

    @abstractmethod
    def _backend_description(self) -> dict[str, Any]: ...

    # -- loading ----------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if getattr(self, "tokenizer_", None) is not None:
            return
        path = self._model_dir()
        self._check_files(path)
        tokenizer = load_tokenizer(path, adapter=self.name)
        self.manifest_ = read_manifest(path)
        self._load_backend(path)
        self.tokenizer_ = tokenizer
        self.path_ = path

    def supports(self, capability: Capability) -> bool:
        if capability == "recommend":
            return self._has_item_map()
        return capability in self.capabilities

    def _has_item_map(self) -> bool:
        try:
            return (self._model_dir() / MANIFEST_NAME).is_file()
        except AdapterError:
            return False

    @property
    def batch_size(self) -> int:
        return int(getattr(self.params, "batch_size", 16))

    # -- prompts -> batches -----------------------------------------------------------------
    def _context_length(self) -> int | None:
        return None

    def _encode_prompts(self, prompts: Sequence[str], *, reserve: int) -> list[list[int]]:
        """Token ids of each prompt (with the tokenizer's special tokens), checked to fit the
        model's context with ``reserve`` tokens to spare."""
        encoded = self.tokenizer_(list(prompts), add_special_tokens=True, verbose=False)[
            "input_ids"
        ]
        limit = getattr(self.params, "max_prompt_tokens", None)
        context = self._context_length()
        out: list[list[int]] = []
        for index, ids in enumerate(encoded):
            ids = list(ids)
            if limit is not None and len(ids) > limit:
                ids = ids[-limit:]
            if context is not None and len(ids) + reserve > context:
                raise AdapterError(
                    f"adapter {self.name!r}: prompt {index + 1} of {len(encoded)} has "
                    f"{len(ids)} tokens and {reserve} more are asked for, but the model's "
                    f"context is {context} tokens. Shorten the prompt template, lower "
                    f"max_new_tokens, or set params.max_prompt_tokens to keep only the end of "
                    f"long prompts."
                )
            out.append(ids)
        return out

    def _left_pad(self, sequences: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(s) for s in sequences)
        pad = int(self.tokenizer_.pad_token_id)
        ids = np.full((len(sequences), width), pad, dtype=np.int64)
        mask = np.zeros((len(sequences), width), dtype=np.int64)
        for row, seq in enumerate(sequences):
            if len(seq):
                ids[row, width - len(seq) :] = seq
                mask[row, width - len(seq) :] = 1
        return ids, mask

    def _batches_by_length(self, lengths: Sequence[int]) -> list[list[int]]:
        order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
        size = self.batch_size
        return [order[start : start + size] for start in range(0, len(order), size)]

    # -- capabilities -----------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], *, params: GenerationParams) -> list[str]:
        """Batched generation; each prompt's output depends only on it, the model and
        ``params`` (see :mod:`.token_sampling`). Returns the continuation without the prompt,
        special tokens removed, surrounding whitespace stripped."""
        self._ensure_loaded()
        prompts = list(prompts)
        if not prompts:
            return []
        encoded = self._encode_prompts(prompts, reserve=params.max_new_tokens)
        generators = prompt_generators(prompts, params.seed)
        outputs: list[str] = [""] * len(prompts)
        for batch in self._batches_by_length([len(e) for e in encoded]):
            ids, mask = self._left_pad([encoded[i] for i in batch])
            new_ids = self._generate_batch(ids, mask, [generators[i] for i in batch], params)
            texts = self.tokenizer_.batch_decode(new_ids, skip_special_tokens=True)
            for i, text in zip(batch, texts, strict=True):
                outputs[i] = text.strip()
        return outputs

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[TokenScores]:
        """Log-probability of each continuation token given the prompt and the continuation
        tokens before it. Prompt and continuation are tokenized separately (the prompt with
        the tokenizer's special tokens, the continuation without) and concatenated."""
        self._ensure_loaded()
        prompts, continuations = list(prompts), list(continuations)
        if len(prompts) != len(continuations):
            raise AdapterError(
                f"adapter {self.name!r}: score() got {len(prompts)} prompts and "
                f"{len(continuations)} continuations; pass one continuation per prompt."
            )
        if not prompts:
            return []
        cont_ids = [
            list(ids)
            for ids in self.tokenizer_(continuations, add_special_tokens=False, verbose=False)[
                "input_ids"
            ]
        ]
        prompt_ids = self._encode_prompts(prompts, reserve=0)
        full = [p + c for p, c in zip(prompt_ids, cont_ids, strict=True)]
        context = self._context_length()
        results: list[TokenScores | None] = [None] * len(prompts)
        for batch in self._batches_by_length([len(f) for f in full]):
            for i in batch:
                if context is not None and len(full[i]) > context:
                    raise AdapterError(
                        f"adapter {self.name!r}: prompt + continuation {i + 1} has "
                        f"{len(full[i])} tokens; the model's context is {context}."
                    )
            ids, mask = self._left_pad([full[i] for i in batch])
            logits = self._logits(ids, mask, last_only=False)
            width = ids.shape[1]
            for row, i in enumerate(batch):
                n_cont = len(cont_ids[i])
                if n_cont == 0:
                    results[i] = TokenScores([], [])
                    continue
                # Token at column c is predicted by the logits at column c - 1.
                cols = np.arange(width - n_cont, width)
                rows_logits = logits[row, cols - 1].astype(np.float64)
                peak = rows_logits.max(axis=-1, keepdims=True)
                log_norm = peak[:, 0] + np.log(np.exp(rows_logits - peak).sum(axis=-1))
                targets = np.asarray(cont_ids[i], dtype=np.int64)
                logprobs = rows_logits[np.arange(n_cont), targets] - log_norm
                results[i] = TokenScores(cont_ids[i], [float(x) for x in logprobs])
        return [r if r is not None else TokenScores([], []) for r in results]

    def context_length(self) -> int | None:
        """The most tokens one sequence may have (None when the config does not say)."""
        self._ensure_loaded()
        return self._context_length()

    def _tail_logits(self, input_ids: np.ndarray, attention_mask: np.ndarray, keep: int) -> Any:
        """Logits (n, keep, vocab) at the last ``keep`` columns of a left-padded batch."""
        return self._logits(input_ids, attention_mask, last_only=False)[:, -keep:, :]

    def score_token_ids(
        self,
        prompts: Sequence[Sequence[int]],
        targets: Sequence[Sequence[int]],
        *,
        max_batch_tokens: int = 8192,
    ) -> list[TargetLogprobs]:
        """Target log-probabilities of token sequences (the attribution engine's
        :class:`~audit_sdk.attribution.TokenScorer`): ``log P(y_t | x, y_<t)`` and
        ``log P(y_t | x)`` for every target token, from one forward pass per sequence.

        Sequences are sorted by length and packed into left-padded batches of at most
        ``max_batch_tokens`` padded tokens; position ids skip the padding, so a row's scores
        do not depend on its batch. Only the last ``T + 1`` columns' logits are kept."""
        self._ensure_loaded()
        if len(prompts) != len(targets):
            raise AdapterError(
                f"adapter {self.name!r}: score_token_ids() got {len(prompts)} prompts and "
                f"{len(targets)} targets."
            )
        full = [[*p, *t] for p, t in zip(prompts, targets, strict=True)]
        context = self._context_length()
        for index, sequence in enumerate(full):
            if context is not None and len(sequence) > context:
                raise AdapterError(
                    f"adapter {self.name!r}: sequence {index + 1} of {len(full)} has "
                    f"{len(sequence)} tokens; the model's context is {context}."
                )
        results: list[TargetLogprobs | None] = [None] * len(full)
        order = sorted(range(len(full)), key=lambda i: (len(full[i]), i))
        start = 0
        while start < len(order):
            stop = start + 1
            while (
                stop < len(order)
                and len(full[order[stop]]) * (stop - start + 1) <= max_batch_tokens
            ):
                stop += 1
            batch = order[start:stop]
            start = stop
            ids, mask = self._left_pad([full[i] for i in batch])
            keep = max(len(targets[i]) for i in batch) + 1
            logprobs = _log_softmax(self._tail_logits(ids, mask, keep))
            for row, i in enumerate(batch):
                target = np.asarray(targets[i], dtype=np.int64)
                n = len(target)
                # Column c of the kept tail predicts the token at column c + 1.
                cols = np.arange(keep - n - 1, keep - 1)
                in_context = logprobs[row, cols, target]
                from_prompt = logprobs[row, keep - n - 1, target]
                results[i] = TargetLogprobs(
                    np.asarray(in_context, dtype=np.float64),
                    np.asarray(from_prompt, dtype=np.float64),
                )
        return [r for r in results if r is not None]

    def tokenize(self, texts: Sequence[str]) -> list[Tokenization]:
        """Token ids as the model sees each text (special tokens included, with an empty
        ``(0, 0)`` span) and each token's character span in the text."""
        self._ensure_loaded()
        if not getattr(self.tokenizer_, "is_fast", False):
            raise AdapterError(
                f"adapter {self.name!r}: character offsets need a fast tokenizer "
                f"(tokenizer.json) in {self.path_}; convert it with "
                f"PreTrainedTokenizerFast and save_pretrained."
            )
        if not texts:
            return []
        encoded = self.tokenizer_(list(texts), return_offsets_mapping=True)
        return [
            Tokenization(list(ids), [(int(a), int(b)) for a, b in offsets])
            for ids, offsets in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True)
        ]

    # -- recommend (TinyRec item maps) ------------------------------------------------------
    def fit(self, train: Any) -> None:
        """Keep the training users' histories: ``recommend`` builds each user's prompt from
        them, with the item map's history order. A no-op for models without an item map."""
        if not self._has_item_map():
            return
        self._ensure_loaded()
        assert self.manifest_ is not None
        catalog = set(map(str, train.catalog.frame.index))
        if catalog.isdisjoint(self.manifest_.item_tokens.values()):
            trained_on = self.manifest_.dataset.get("name", "another dataset")
            raise AdapterError(
                f"adapter {self.name!r}: the item map in {self.path_} shares no item with the "
                f"catalog of {train.name!r} (the model was trained on {trained_on!r}). Use a "
                f"TinyRec trained on this dataset (audit-sdk train-tinyrec, or the tinyrec "
                f"adapter without model_dir)."
            )
        self.histories_ = user_histories(train.interactions, order=self.manifest_.history_order)
        self.allowed_items_: set[str] | None = catalog

    def _ranker(self) -> ItemRanker:
        assert self.manifest_ is not None
        texts = {t: self.tokenizer_.convert_ids_to_tokens(t) for t in self.manifest_.item_tokens}
        return ItemRanker(
            self.manifest_, texts, allowed_items=getattr(self, "allowed_items_", None)
        )

    def recommend(self, user_ids: Sequence[str], *, k: int) -> pd.DataFrame:
        """Top-``k`` unseen items per user from the next-token distribution over item tokens
        after the user's recommendation prompt (:mod:`audit_sdk.adapters.catalog_ranking`)."""
        self._ensure_loaded()
        if self.manifest_ is None:
            raise self._missing("recommend")
        if not hasattr(self, "histories_"):
            raise AdapterError(
                f"adapter {self.name!r}: call fit(train) before recommend(): the prompts are "
                f"built from the users' training histories."
            )

        def next_token_logits(prompts: list[str]) -> np.ndarray:
            encoded = self._encode_prompts(prompts, reserve=1)
            ids, mask = self._left_pad(encoded)
            return self._logits(ids, mask, last_only=True)[:, -1, :]

        return self._ranker().recommend(
            user_ids, self.histories_, next_token_logits, k=k, batch_size=self.batch_size
        )

    # -- identity ---------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """sha256 of the files that define the model: weights, config, tokenizer, item map."""
        cached = getattr(self, "fingerprint_", None)
        if cached is None:
            path = self._model_dir()
            cached = directory_fingerprint(path, self._fingerprint_files(path))
            self.fingerprint_ = cached
        return str(cached)

    def describe(self) -> dict[str, Any]:
        self._ensure_loaded()
        info: dict[str, Any] = {
            "adapter": self.name,
            "location": str(self.path_),
            "fingerprint": self.fingerprint(),
            "vocab_size": len(self.tokenizer_),
            **self._backend_description(),
        }
        if self.manifest_ is not None:
            info["tinyrec"] = {
                "dataset": self.manifest_.dataset.get("name"),
                "item_tokens": len(self.manifest_.item_tokens),
                "size": self.manifest_.training.get("size"),
                "heldout_metrics": self.manifest_.metrics.get("recommendation", {}),
            }
        return info
