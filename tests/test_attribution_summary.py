"""The aggregate estimators against planted attributions: the auxiliary share's bootstrap CI
covers the planted share at about its nominal rate over many seeds, the recency curve and
the per-group shares recover what was planted."""

from __future__ import annotations

import numpy as np

from audit_sdk.attribution import (
    AttributionResult,
    PromptAttribution,
    spanned_recommendation_prompt,
    summarize_attribution,
)


def _planted(rng: np.random.Generator, n: int, *, aux_mean: float, item_means: list[float]):
    """Prompts whose ablations drop the 2-token target's log-probability by planted amounts:
    task ~ Exp(aux_mean) and history item i ~ Exp(item_means[i]), split over the tokens."""
    prompts = []
    for i in range(n):
        prompt = spanned_recommendation_prompt(
            ["a", "b", "c"],
            unit="track",
            order="chronological",
            prompt_id=f"p{i}",
            group="old" if i % 2 else "young",
        )
        drops = [rng.exponential(aux_mean), *(rng.exponential(m) for m in item_means)]
        ablated = -np.array([[d / 2 for d in drops]] * 2)  # (2 tokens, 4 spans)
        prompts.append(
            PromptAttribution(
                prompt=prompt,
                target="x\ny\n",
                target_token_ids=(1, 2),
                span_names=tuple(s.name for s in prompt.spans),
                full=np.zeros(2),
                ablated=ablated,
                prefix_ablated=np.zeros(2),  # the prefix changes nothing
            )
        )
    return AttributionResult(tuple(prompts), None, "planted")


def test_the_share_ci_covers_the_planted_share() -> None:
    truth = 2.0 / (2.0 + 3.0)  # aux mean 2, three items of mean 1
    covered = 0
    seeds = 120
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        result = _planted(rng, 80, aux_mean=2.0, item_means=[1.0, 1.0, 1.0])
        share = summarize_attribution(result, n_resamples=300, seed=seed).share
        covered += share.low <= truth <= share.high
    assert 0.88 <= covered / seeds <= 0.99, covered


def test_recency_and_groups_recover_the_plant() -> None:
    rng = np.random.default_rng(0)
    # the most recent item (history[2]) matters most
    result = _planted(rng, 400, aux_mean=1.0, item_means=[0.2, 0.5, 2.0])
    summary = summarize_attribution(result, n_resamples=400)
    for recency, planted in ((0, 2.0), (1, 0.5), (2, 0.2)):
        assert summary.recency[recency].low <= planted <= summary.recency[recency].high
    assert summary.recency[0].low > summary.recency[1].high
    truth = 1.0 / (1.0 + 2.7)
    for share, ratio in summary.groups.values():
        assert share.low <= truth <= share.high
        assert ratio.low <= truth / (1 - truth) <= ratio.high
    assert summary.fields["answer_prefix(y<t)"].estimate == 0.0
    top = summary.extreme_prompts(5)
    ratios = summary.magnitudes.ratio
    assert ratios[top[0]] == ratios.max()
