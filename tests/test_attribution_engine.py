"""Feature-ablation attribution: named spans, the batched engine against the adapter's own
scoring and against captum's FeatureAblation, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from audit_sdk.attribution import (
    PREFIX_SPAN,
    AttributionInputError,
    PromptTemplate,
    attribute,
    span_token_positions,
    spanned_recommendation_prompt,
)
from audit_sdk.recommendation_prompts import recommendation_prompt

from .attribution_fixtures import history_prompts, tiny_adapter


@pytest.fixture(scope="module")
def adapter():
    model = tiny_adapter()
    yield model
    model.close()


def test_template_spans_cover_their_values() -> None:
    template = PromptTemplate(
        "{task}Candidates: {candidates}\nHistory:\n{history}{answer_prefix}",
        roles={"candidates": "other"},
    )
    prompt = template.fill(
        {
            "task": "Pick one.\n",
            "candidates": "A, B",
            "history": ["Muse\n", "Blur\n"],
            "answer_prefix": "Answer:",
        },
        prompt_id="u1",
    )
    assert [s.name for s in prompt.spans] == [
        "task",
        "candidates",
        "history[0]",
        "history[1]",
        "answer_prefix",
    ]
    assert prompt.span_text("history[1]") == "Blur\n"
    assert prompt.span("history[1]").position == 1
    assert prompt.span("answer_prefix").role == "auxiliary"
    assert prompt.without("candidates") == "Pick one.\nCandidates: \nHistory:\nMuse\nBlur\nAnswer:"
    merged = prompt.merged("history")
    assert merged.span_text("history") == "Muse\nBlur\n"


def test_the_recommendation_prompt_is_the_sdks() -> None:
    titles = ["Radiohead", "Muse", "Coldplay"]
    prompt = spanned_recommendation_prompt(titles, unit="artist", order="chronological")
    assert prompt.text == recommendation_prompt(titles, unit="artist", order="chronological")
    assert prompt.span_text("task").startswith("Recommend the next artist")
    assert [prompt.span_text(f"history[{i}]") for i in range(3)] == [f"{t}\n" for t in titles]


def test_bad_templates_name_the_prompt_and_span() -> None:
    template = PromptTemplate("{task}{history}", name="mine")
    with pytest.raises(AttributionInputError, match=r"prompt 'u7'.*no span 'histroy'"):
        template.fill({"task": "x", "histroy": ["a"]}, prompt_id="u7")
    with pytest.raises(AttributionInputError, match=r"field \{notes\} has no role"):
        PromptTemplate("{task}{notes}").fill({"task": "x", "notes": "y"})
    prompt = template.fill({"task": "x", "history": ["a"]}, prompt_id="u7")
    with pytest.raises(AttributionInputError, match=r"prompt 'u7' has no span 'profile'"):
        prompt.span("profile")


def test_item_spans_are_their_item_tokens(adapter) -> None:
    prompts, _ = history_prompts(2)
    tokens = adapter.tokenize([prompts[0].text])[0]
    positions = span_token_positions(prompts[0], tokens)
    n = len(tokens.token_ids)
    # TinyRec: one token per history line, at the end of the prompt.
    assert [positions[f"history[{i}]"].tolist() for i in range(3)] == [[n - 3], [n - 2], [n - 1]]
    assert positions["task"][0] == 1  # after <|bos|>, which belongs to no span


def test_a_span_that_tokenizes_to_nothing_is_named(adapter) -> None:
    prompt = PromptTemplate("{task}{profile}{history}").fill(
        {"task": "Recommend.\n", "profile": "", "history": ["x\n"]}, prompt_id="u3"
    )
    with pytest.raises(AttributionInputError, match=r"prompt 'u3', span 'profile'.*nothing"):
        attribute(adapter, [prompt], ["y\n"])


def test_engine_equals_scoring_each_ablated_text(adapter) -> None:
    prompts, targets = history_prompts(5)
    result = attribute(adapter, prompts, targets, max_batch_tokens=64)
    for p, target, attr in zip(prompts, targets, result.prompts, strict=True):
        full = adapter.score([p.text], [target])[0]
        np.testing.assert_allclose(attr.full, full.logprobs, atol=1e-5)
        for j, span in enumerate(attr.span_names):
            ablated = adapter.score([p.without(span)], [target])[0]
            np.testing.assert_allclose(attr.ablated[:, j], ablated.logprobs, atol=1e-5)
        # log P(y_t | x): each target token scored alone after the prompt.
        for t, line in enumerate(target.splitlines(keepends=True)):
            alone = adapter.score([p.text], [line])[0].logprobs[0]
            assert attr.prefix_ablated is not None
            assert abs(attr.prefix_ablated[t] - alone) < 1e-5
        assert attr.span_attributions()[PREFIX_SPAN] == pytest.approx(
            float(attr.full[1] - attr.prefix_ablated[1]), abs=1e-9
        )


def test_batching_does_not_change_attributions(adapter) -> None:
    prompts, targets = history_prompts(6)
    # Different histories lengths in one batch: left padding with position ids.
    prompts[2] = spanned_recommendation_prompt(
        [prompts[2].span_text(f"history[{i}]").strip() for i in range(3)][:1],
        unit="track",
        order="chronological",
        prompt_id="short",
    )
    one = attribute(adapter, prompts, targets, max_batch_tokens=1)
    shared = attribute(adapter, prompts, targets, max_batch_tokens=100_000)
    for a, b in zip(one.prompts, shared.prompts, strict=True):
        np.testing.assert_allclose(a.token_attributions, b.token_attributions, atol=1e-5)


def test_a_baseline_replaces_the_span(adapter) -> None:
    prompts, targets = history_prompts(2)
    result = attribute(adapter, prompts, targets, baseline={"history": "unknown\n"})
    p, attr = prompts[0], result.prompts[0]
    j = attr.span_names.index("history[1]")
    replaced = adapter.score([p.without("history[1]", baseline="unknown\n")], [targets[0]])[0]
    np.testing.assert_allclose(attr.ablated[:, j], replaced.logprobs, atol=1e-5)
    removed = attr.span_names.index("task")  # not in the mapping: removed
    without = adapter.score([p.without("task")], [targets[0]])[0]
    np.testing.assert_allclose(attr.ablated[:, removed], without.logprobs, atol=1e-5)


def test_ablated_scores_for_a_removed_history(adapter) -> None:
    prompts, targets = history_prompts(3)
    merged = [p.merged("history") for p in prompts]
    result = attribute(adapter, merged, targets, spans=["history"])
    expected = [
        sum(adapter.score([p.without("history")], [t])[0].logprobs)
        for p, t in zip(merged, targets, strict=True)
    ]
    np.testing.assert_allclose(result.ablated_target_logprobs("history"), expected, atol=1e-5)


def test_a_target_longer_than_the_context_is_named(adapter) -> None:
    prompts, _ = history_prompts(1)
    long_target = "".join(f"{prompts[0].span_text('history[0]')}" for _ in range(600))
    with pytest.raises(AttributionInputError, match=r"prompt 'user0'.*context of 512 tokens"):
        attribute(adapter, prompts, [long_target])


def test_an_unknown_span_to_ablate_is_named(adapter) -> None:
    prompts, targets = history_prompts(1)
    with pytest.raises(AttributionInputError, match=r"prompt 'user0' has no span 'profile'"):
        attribute(adapter, prompts, targets, spans=["profile"])


def test_captum_feature_ablation_agrees(adapter) -> None:
    """captum 0.9's LLMAttribution + FeatureAblation over a TextTemplateInput (every span a
    template value, removal as the baseline "") is the reference: the same per-token
    attributions within 1e-4. captum decodes token by token; its KV-cached path
    (use_cached_outputs=True) scores tokens after the first differently under
    transformers 5, so the reference runs without the cache, one full forward per token."""
    captum_attr = pytest.importorskip("captum.attr")
    prompts, targets = history_prompts(2)
    result = attribute(adapter, prompts, targets)
    adapter._ensure_loaded()
    reference = captum_attr.LLMAttribution(
        captum_attr.FeatureAblation(adapter.model_), adapter.tokenizer_
    )
    for p, target, attr in zip(prompts, targets, result.prompts, strict=True):
        values = [p.span_text(s.name) for s in p.spans]
        inp = captum_attr.TextTemplateInput("{}" * len(values), values=values)
        out = reference.attribute(inp, target=target, use_cached_outputs=False)
        token_attr = out.token_attr.detach().cpu().numpy()
        assert token_attr.shape == attr.token_attributions.shape
        np.testing.assert_allclose(attr.token_attributions, token_attr, atol=1e-4)
        np.testing.assert_allclose(
            attr.token_attributions.sum(axis=0), out.seq_attr.detach().cpu().numpy(), atol=1e-4
        )
