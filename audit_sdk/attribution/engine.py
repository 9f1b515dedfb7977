"""The batched feature-ablation attribution engine (arXiv 2510.10978's diagnosis).

For every prompt ``x`` with spans ``s_1..s_S`` and its target ``y_1..y_T``, the engine scores
``1 + S`` sequences: the full prompt and the prompt with each span ablated (removed, or
replaced by a baseline), each followed by the target, and reads off
``log P(y_t | ., y_<t)`` for every target token. ``log P(y_t | x)`` (the answer prefix
``y_<t`` removed) comes from the full prompt's forward pass at no extra cost: it is the
distribution after the prompt's last token. The attributions ``A_s(t)`` and
``A_prefix(t)`` are defined in :mod:`audit_sdk.attribution.results`.

Two paths, the same numbers:

* **tokens** (adapters that implement :class:`~.token_scoring.TokenScorer`: ``huggingface``,
  ``tinyrec``, ``onnx``): the prompt is tokenized once with character offsets, each span's
  tokens are dropped (or replaced by the baseline's tokens) and all ``(1 + S) x prompts``
  sequences go through the model together, sorted by length into shared left-padded
  batches with position ids that skip the padding.
* **text** (any other adapter with ``score``, e.g. an OpenAI-compatible endpoint with
  ``echo`` and ``logprobs``): the ablated prompt texts are scored through ``score``;
  ``log P(y_t | x)`` by scoring each target token's text alone after the prompt, when the
  adapter reports the target tokens' character offsets.

Removing a span's tokens and removing its text agree whenever the tokenizer splits at the
span's edges (TinyRec's item tokens always do; a BPE may merge across an edge, which is why
the token path is the definition and the text path its remote approximation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from audit_sdk.errors import MissingCapabilityError
from audit_sdk.interfaces import GeneratorAdapter, Tokenization

from .results import AttributionResult, PromptAttribution
from .spans import AttributionInputError, SpannedPrompt
from .token_positions import span_token_positions
from .token_scoring import TokenScorer

__all__ = ["attribute"]

Baseline = str | Mapping[str, str] | None


def attribute(
    model: GeneratorAdapter,
    prompts: Sequence[SpannedPrompt],
    targets: Sequence[str],
    *,
    spans: Sequence[str] | None = None,
    baseline: Baseline = None,
    max_batch_tokens: int = 8192,
) -> AttributionResult:
    """Feature-ablation attribution of each prompt's spans to its target's tokens.

    :param model: an adapter with the ``score`` capability (``tokenize`` too for the batched
        token path; the local causal-LM adapters have both).
    :param prompts: prompts with named spans (:class:`~.spans.PromptTemplate`,
        :func:`~.recommendation_spans.spanned_recommendation_prompt`).
    :param targets: one continuation per prompt (e.g. the recommended item's title line).
    :param spans: names of the spans to ablate (default: every span of each prompt); a
        name a prompt lacks is an error naming the prompt.
    :param baseline: what an ablated span becomes: None or ``""`` removes it; a string
        replaces every span with it; a mapping ``{field or span name: text}`` per span
        (unlisted spans are removed).
    :param max_batch_tokens: padded tokens per forward pass (token path).

    Scoring a prompt with a span removed: ``attribute(model, prompts, targets,
    spans=["task"]).ablated_target_logprobs("task")`` is ``log P(target | prompt without
    task)`` per prompt, and ``.target_logprobs()`` the full prompt's. To remove a whole
    field at once (the history), merge its spans first: ``[p.merged("history") for p in
    prompts]`` with ``spans=["history"]``.
    """
    prompts, targets = list(prompts), list(targets)
    if len(prompts) != len(targets):
        raise AttributionInputError(
            f"attribute() got {len(prompts)} prompts and {len(targets)} targets; pass one "
            f"target per prompt."
        )
    for prompt, target in zip(prompts, targets, strict=True):
        if not target:
            raise AttributionInputError(
                f"prompt {prompt.prompt_id!r}: the target is empty; give the continuation "
                f"whose log-probability to attribute."
            )
    names = [_chosen_spans(p, spans) for p in prompts]
    if not model.supports("score"):
        raise MissingCapabilityError(
            f"adapter {model.name!r} cannot score text (no 'score' capability), so prompt "
            f"attribution cannot run on it."
        )
    if not prompts:
        return AttributionResult((), _describe(baseline), "none")
    if isinstance(model, TokenScorer) and model.supports("tokenize"):
        return _attribute_tokens(model, prompts, targets, names, baseline, max_batch_tokens)
    return _attribute_text(model, prompts, targets, names, baseline)


def _describe(baseline: Baseline) -> str | None:
    if baseline is None or baseline == "":
        return None
    if isinstance(baseline, str):
        return baseline
    return ", ".join(f"{k}={v!r}" for k, v in baseline.items())


def _chosen_spans(prompt: SpannedPrompt, spans: Sequence[str] | None) -> list[str]:
    if spans is None:
        return [s.name for s in prompt.spans]
    for name in spans:
        prompt.span(name)  # raises, naming the prompt and its spans
    return list(spans)


def _baseline_text(prompt: SpannedPrompt, name: str, baseline: Baseline) -> str:
    if baseline is None or isinstance(baseline, str):
        return baseline or ""
    if name in baseline:
        return baseline[name]
    return baseline.get(prompt.span(name).field, "")


def _content_ids(tokenization: Tokenization) -> list[int]:
    """Token ids without the tokenizer's special tokens (those with no characters)."""
    return [
        token
        for token, (start, end) in zip(tokenization.token_ids, tokenization.offsets, strict=True)
        if end > start
    ]


def _attribute_tokens(
    model: TokenScorer,
    prompts: list[SpannedPrompt],
    targets: list[str],
    names: list[list[str]],
    baseline: Baseline,
    max_batch_tokens: int,
) -> AttributionResult:
    adapter = model
    assert isinstance(adapter, GeneratorAdapter)
    prompt_tokens = adapter.tokenize([p.text for p in prompts])
    target_ids = [_content_ids(t) for t in adapter.tokenize(targets)]
    replacement_texts = sorted(
        {_baseline_text(p, n, baseline) for p, ns in zip(prompts, names, strict=True) for n in ns}
        - {""}
    )
    replacement_ids: dict[str, list[int]] = {"": []}
    if replacement_texts:
        for text, t in zip(replacement_texts, adapter.tokenize(replacement_texts), strict=True):
            replacement_ids[text] = _content_ids(t)
    context = model.context_length()
    sequences: list[list[int]] = []
    sequence_targets: list[list[int]] = []
    for prompt, tokens, target, target_text, chosen in zip(
        prompts, prompt_tokens, target_ids, targets, names, strict=True
    ):
        if not target:
            raise AttributionInputError(
                f"prompt {prompt.prompt_id!r}: the target {target_text!r} tokenizes to nothing."
            )
        if context is not None and len(tokens.token_ids) + len(target) > context:
            raise AttributionInputError(
                f"prompt {prompt.prompt_id!r}: the prompt ({len(tokens.token_ids)} tokens) and "
                f"the target ({len(target)} tokens) do not fit the model's context of "
                f"{context} tokens; shorten the prompt or the target."
            )
        positions = span_token_positions(prompt, tokens, spans=chosen)
        ids = np.asarray(tokens.token_ids, dtype=np.int64)
        sequences.append(tokens.token_ids)
        sequence_targets.append(target)
        for name in chosen:
            replaced = replacement_ids[_baseline_text(prompt, name, baseline)]
            where = positions[name]
            ablated = [*ids[: where[0]], *replaced, *np.delete(ids, where)[where[0] :]]
            sequences.append([int(t) for t in ablated])
            sequence_targets.append(target)
    scores = model.score_token_ids(sequences, sequence_targets, max_batch_tokens=max_batch_tokens)
    out: list[PromptAttribution] = []
    cursor = 0
    for prompt, target_text, target, chosen in zip(
        prompts, targets, target_ids, names, strict=True
    ):
        full = scores[cursor]
        ablated = [scores[cursor + 1 + j].in_context for j in range(len(chosen))]
        cursor += 1 + len(chosen)
        out.append(
            PromptAttribution(
                prompt=prompt,
                target=target_text,
                target_token_ids=tuple(target),
                span_names=tuple(chosen),
                full=full.in_context,
                ablated=np.stack(ablated, axis=1) if ablated else np.zeros((len(target), 0)),
                prefix_ablated=full.from_prompt,
            )
        )
    return AttributionResult(tuple(out), _describe(baseline), "tokens")


def _attribute_text(
    model: GeneratorAdapter,
    prompts: list[SpannedPrompt],
    targets: list[str],
    names: list[list[str]],
    baseline: Baseline,
) -> AttributionResult:
    if model.supports("tokenize"):
        for prompt, tokens, chosen in zip(
            prompts, model.tokenize([p.text for p in prompts]), names, strict=True
        ):
            span_token_positions(prompt, tokens, spans=chosen)
    else:
        for prompt, chosen in zip(prompts, names, strict=True):
            for name in chosen:
                span = prompt.span(name)
                if span.end <= span.start:
                    raise AttributionInputError(
                        f"prompt {prompt.prompt_id!r}, span {name!r} is empty, so it "
                        f"tokenizes to nothing; give it some text or leave it out."
                    )
    full = model.score([p.text for p in prompts], targets)
    texts: list[str] = []
    conts: list[str] = []
    for prompt, target, chosen in zip(prompts, targets, names, strict=True):
        for name in chosen:
            texts.append(prompt.without(name, baseline=_baseline_text(prompt, name, baseline)))
            conts.append(target)
    ablated_scores = model.score(texts, conts) if texts else []
    prefix_texts: list[str] = []
    prefix_conts: list[str] = []
    have_offsets = all(s.offsets is not None for s in full)
    if have_offsets:
        for prompt, target, score in zip(prompts, targets, full, strict=True):
            assert score.offsets is not None
            for start, end in score.offsets[1:]:
                prefix_texts.append(prompt.text)
                prefix_conts.append(target[start:end])
    prefix_scores = model.score(prefix_texts, prefix_conts) if prefix_texts else []
    out: list[PromptAttribution] = []
    cursor = prefix_cursor = 0
    for prompt, target, score, chosen in zip(prompts, targets, full, names, strict=True):
        n = len(score.logprobs)
        if n == 0:
            raise AttributionInputError(
                f"prompt {prompt.prompt_id!r}: the adapter scored no token of the target "
                f"{target!r}."
            )
        columns = []
        for name in chosen:
            ablated = ablated_scores[cursor]
            cursor += 1
            if len(ablated.logprobs) != n:
                raise AttributionInputError(
                    f"prompt {prompt.prompt_id!r}, span {name!r}: the target has {n} tokens "
                    f"after the full prompt but {len(ablated.logprobs)} after the ablated "
                    f"one (the tokenizer merged the target with the prompt's end); end the "
                    f"prompt with a separator such as a newline."
                )
            columns.append(ablated.logprobs)
        prefix: np.ndarray | None = None
        if have_offsets:
            prefix = np.empty(n)
            prefix[0] = score.logprobs[0]
            for t in range(1, n):
                single = prefix_scores[prefix_cursor]
                prefix_cursor += 1
                prefix[t] = single.logprobs[0] if single.logprobs else np.nan
        out.append(
            PromptAttribution(
                prompt=prompt,
                target=target,
                target_token_ids=tuple(score.token_ids),
                span_names=tuple(chosen),
                full=np.asarray(score.logprobs, dtype=float),
                ablated=np.asarray(columns, dtype=float).T.reshape(n, len(chosen)),
                prefix_ablated=prefix,
            )
        )
    notes = () if have_offsets else ("the adapter gave no target token offsets: no prefix group",)
    return AttributionResult(tuple(out), _describe(baseline), "text", notes)
