"""GDRT's building blocks against their equations: relevance without the history, groups,
the two Group DRO update rules, IFairLRS weights, and MGU/DGU with user-resampled CIs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from audit_sdk.adapters.tinyrec.gdrt_data import (  # noqa: E402
    SpanExample,
    assign_groups,
    build_examples,
    example_batches,
    relevance_scores,
)
from audit_sdk.adapters.tinyrec.group_dro import (  # noqa: E402
    GroupWeightedCrossEntropy,
    KLGroupDRO,
    OnlineGroupDRO,
    ifairlrs_weights,
)
from audit_sdk.adapters.tinyrec.objectives import TargetLosses, TrainingBatch  # noqa: E402
from audit_sdk.adapters.tinyrec.training_data import IGNORE_INDEX  # noqa: E402

from audit_sdk.metrics.popularity_groups import (  # noqa: E402
    group_counts,
    group_unfairness,
    paired_unfairness,
    popularity_groups,
)


def _tiny_model(seed: int = 0) -> Any:
    torch.manual_seed(seed)
    config = transformers.GPT2Config(vocab_size=40, n_embd=16, n_layer=1, n_head=2, n_positions=64)
    return transformers.GPT2LMHeadModel(config).eval()


def _batch(token_groups: list[list[int]]) -> tuple[TrainingBatch, int]:
    """A batch whose rows have the given target groups (one target token per entry)."""
    width = max(len(g) for g in token_groups) + 2
    n = len(token_groups)
    labels = np.full((n, width), IGNORE_INDEX)
    groups = np.full((n, width), -1)
    for r, gs in enumerate(token_groups):
        labels[r, 1 : 1 + len(gs)] = 5
        groups[r, 1 : 1 + len(gs)] = gs
    ids = np.ones((n, width), dtype=np.int64)
    batch = TrainingBatch(ids, np.ones_like(ids), labels, tuple("u" * n), "recommendation", groups)
    return batch, int((labels != IGNORE_INDEX).sum())


def _losses(values: list[float], batch: TrainingBatch, *, grad: bool = False) -> TargetLosses:
    rows = torch.from_numpy(np.nonzero(batch.labels != IGNORE_INDEX)[0])
    return TargetLosses(torch.tensor(values, requires_grad=grad), rows, len(batch))


def test_online_group_dro_follows_exponentiated_gradient() -> None:
    batch, _ = _batch([[0, 0, 1], [2]])
    token_loss = [1.0, 3.0, 2.0, 4.0]  # group means: 2, 2, 4
    objective = OnlineGroupDRO(n_groups=3, eta=0.5)
    q = np.full(3, 1 / 3)
    for _ in range(3):
        loss = objective.reduce(_losses(token_loss, batch), None, batch)
        q = q * np.exp(0.5 * np.array([2.0, 2.0, 4.0]))
        q /= q.sum()
        assert np.allclose(objective.q, q)
        assert float(loss) == pytest.approx(float(q @ np.array([2.0, 2.0, 4.0])), rel=1e-6)
    # the worst group gains weight; the curve records losses and weights per step
    assert objective.q[2] > objective.q[0]
    assert len(objective.curve) == 3 and objective.curve[-1].losses == (2.0, 2.0, 4.0)


def test_online_group_dro_keeps_absent_groups_weight() -> None:
    batch, _ = _batch([[0, 0]])
    objective = OnlineGroupDRO(n_groups=2, eta=1.0)
    objective.reduce(_losses([1.0, 1.0], batch), None, batch)
    q = np.array([np.e, 1.0]) / (np.e + 1.0)
    assert np.allclose(objective.q, q)
    assert np.isnan(objective.curve[0].losses[1])


def test_kl_group_dro_is_tau_log_sum_exp_with_softmax_gradient() -> None:
    batch, _ = _batch([[0, 1], [1, 2]])
    values = [1.0, 2.0, 4.0, 0.5]  # group means 1, 3, 0.5
    prior = [0.2, 0.5, 0.3]
    tau = 0.7
    objective = KLGroupDRO(n_groups=3, tau=tau, prior=prior)
    losses = _losses(values, batch, grad=True)
    loss = objective.reduce(losses, None, batch)
    group = np.array([1.0, 3.0, 0.5])
    expected = tau * np.log(np.sum(np.array(prior) * np.exp(group / tau)))
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    loss.backward()
    # d loss / d L_g = softmax(log p + L / tau)_g, spread over the group's tokens
    weights = np.array(prior) * np.exp(group / tau)
    weights /= weights.sum()
    per_token = np.array([weights[0], weights[1] / 2, weights[1] / 2, weights[2]])
    assert losses.token_loss.grad is not None
    assert np.allclose(losses.token_loss.grad.numpy(), per_token, atol=1e-6)
    assert np.allclose(objective.curve[0].weights, weights)


def test_kl_group_dro_limits_mean_and_worst_group() -> None:
    batch, _ = _batch([[0, 1, 2]])
    values = [1.0, 2.0, 5.0]
    hot = KLGroupDRO(n_groups=3, tau=1e4)
    cold = KLGroupDRO(n_groups=3, tau=1e-3)
    assert float(hot.reduce(_losses(values, batch), None, batch)) == pytest.approx(
        np.mean(values), rel=1e-3
    )
    assert float(cold.reduce(_losses(values, batch), None, batch)) == pytest.approx(5.0, rel=1e-3)


def test_ce_mix_and_group_weighted_cross_entropy() -> None:
    batch, _ = _batch([[0, 1], [1]])
    values = [1.0, 2.0, 6.0]
    mixed = OnlineGroupDRO(n_groups=2, eta=1e-9, ce_mix=1.0)
    assert float(mixed.reduce(_losses(values, batch), None, batch)) == pytest.approx(3.0)
    uniform = GroupWeightedCrossEntropy(n_groups=2, weights=(1.0, 1.0))
    assert float(uniform.reduce(_losses(values, batch), None, batch)) == pytest.approx(3.0)
    weighted = GroupWeightedCrossEntropy(n_groups=2, weights=(3.0, 1.0))
    assert float(weighted.reduce(_losses(values, batch), None, batch)) == pytest.approx(
        (3 * 1 + 2 + 6) / 5
    )


def test_ifairlrs_weights_are_history_over_target_shares() -> None:
    history = np.array([0, 0, 1, 1, 1, 1, 2, 2])  # shares 1/4, 1/2, 1/4
    targets = np.array([0, 0, 0, 1])  # shares 3/4, 1/4, 0
    w = ifairlrs_weights(history, targets, 3)
    assert np.allclose(w, [(1 / 4) / (3 / 4), (1 / 2) / (1 / 4), 1.0])


def test_relevance_is_the_answer_log_prob_without_the_history() -> None:
    model = _tiny_model()
    examples = [
        SpanExample("a", (1, 2, 3), (10, 11, 12, 13), (20, 21)),
        SpanExample("b", (1, 2, 3), (14,), (22,)),
    ]
    token = relevance_scores(model, examples, pad_id=0)
    sample = relevance_scores(model, examples, granularity="sample", pad_id=0)
    for example, r, s in zip(examples, token, sample, strict=True):
        ids = torch.tensor([[*example.prefix, *example.answer]])
        with torch.no_grad():
            log_probs = torch.log_softmax(model(input_ids=ids).logits[0], dim=-1)
        n = len(example.prefix)
        reference = [float(log_probs[n - 1 + t, y]) for t, y in enumerate(example.answer)]
        assert np.allclose(r, reference, atol=1e-5)
        assert np.allclose(s, np.mean(reference), atol=1e-5)
    # the history matters to the full-context score, not to r
    full = relevance_scores(model, [SpanExample("a", (1, 2, 3), (), (20, 21))], pad_id=0)
    assert np.allclose(full[0], token[0], atol=1e-5)


def test_build_examples_cut_histories_into_answer_only_targets() -> None:
    histories = {"u1": list(range(10, 30)), "u2": [5, 6]}
    examples = build_examples(histories, [1, 2], answer_items=2, per_user=4, max_history=5)
    assert len(examples) == 4 and {e.user_id for e in examples} == {"u1"}
    for e in examples:
        assert len(e.answer) == 2 and 1 <= len(e.history) <= 5
        ids, labels = e.sequence()
        assert [t for t in labels if t != IGNORE_INDEX] == list(e.answer)
        assert ids[: len(e.prefix)] == [1, 2]
    assert build_examples(histories, [1, 2], per_user=4, seed=0) == build_examples(
        histories, [1, 2], per_user=4, seed=0
    )
    (batches,) = list(
        example_batches(examples, [np.array([0, 1])] * 4, batch_size=3, epochs=1, seed=0, pad_id=0)
    )
    assert [len(b) for b in batches] == [3, 1]
    assert (
        sorted(np.concatenate([b.target_groups() for b in batches]).tolist()) == [0] * 4 + [1] * 4
    )


def test_groups_by_quantile_and_kmeans_recover_planted_levels() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([-8.0, -4.0, -1.0])
    truth = rng.integers(3, size=300)
    flat = centres[truth] + rng.normal(0, 0.2, size=300)
    scores = [flat[i : i + 3] for i in range(0, 300, 3)]
    kmeans = assign_groups(scores, k=3, method="kmeans")
    assert np.array_equal(np.concatenate(kmeans.groups), truth)
    assert kmeans.mean_relevance[0] < kmeans.mean_relevance[1] < kmeans.mean_relevance[2]
    quantile = assign_groups(scores, k=4)
    assert max(quantile.sizes) - min(quantile.sizes) <= 1
    assert list(quantile.mean_relevance) == sorted(quantile.mean_relevance)
    assert [g["size"] for g in quantile.summary()] == list(quantile.sizes)


@pytest.mark.parametrize(
    ("scores", "k", "method", "message"),
    [
        ([np.array([1.0, 2.0])], 1, "quantile", "at least two groups"),
        ([np.zeros(5)], 3, "quantile", "have no examples"),
        ([np.zeros(5)], 2, "kmeans", "distinct value"),
        ([], 2, "quantile", "no training targets"),
    ],
)
def test_unrunnable_groupings_say_why(
    scores: list[np.ndarray], k: int, method: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        assign_groups(scores, k=k, method=method)


def test_mgu_dgu_match_hand_computation_and_vanish_for_mirrored_lists() -> None:
    train = pd.DataFrame(
        {"user_id": ["a", "a", "b", "b", "c"], "item_id": ["x", "y", "x", "z", "x"]}
    )
    groups = popularity_groups(train, n_groups=3)
    assert groups.to_dict() == {"x": 0, "y": 1, "z": 2}
    users = pd.Index(["a", "b", "c"])
    history = group_counts(train, groups, users, n_groups=3)  # shares 3/5, 1/5, 1/5
    recs = pd.DataFrame({"user_id": ["a", "b", "c"], "item_id": ["x", "x", "y"]})
    counts = group_counts(recs, groups, users, n_groups=3)  # shares 2/3, 1/3, 0
    result = group_unfairness(counts, history, rng=np.random.default_rng(0), n_resamples=200)
    gu = np.array([2 / 3 - 3 / 5, 1 / 3 - 1 / 5, -1 / 5])
    assert np.allclose(result.gu, gu)
    assert result.mgu.estimate == pytest.approx(np.abs(gu).mean())
    assert result.dgu.estimate == pytest.approx(gu.max() - gu.min())
    assert result.mgu.low <= result.mgu.estimate <= result.mgu.high
    mirrored = group_unfairness(history, history, rng=np.random.default_rng(0), n_resamples=50)
    assert mirrored.mgu.estimate == pytest.approx(0) and mirrored.mgu.high == pytest.approx(0)
    paired = paired_unfairness(
        history, counts, history, rng=np.random.default_rng(0), n_resamples=200
    )
    assert paired["mgu"].estimate == pytest.approx(-result.mgu.estimate)
    assert paired["mgu"].high <= 0  # mirroring the histories can only lower MGU


def test_paired_gu_interval_covers_planted_difference_over_seeds() -> None:
    """Users' lists drawn with known group probabilities: the paired 95% CI of MGU after -
    before covers the population difference in most seeds (resampling users)."""
    p_hist = np.array([0.4, 0.3, 0.2, 0.1, 0.0])
    p_before = np.array([0.7, 0.2, 0.1, 0.0, 0.0])
    p_after = np.array([0.5, 0.25, 0.15, 0.1, 0.0])
    true = np.abs(p_after - p_hist).mean() - np.abs(p_before - p_hist).mean()
    covered = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        hist = rng.multinomial(20, p_hist, size=300).astype(float)
        before = rng.multinomial(10, p_before, size=300).astype(float)
        after = rng.multinomial(10, p_after, size=300).astype(float)
        ci = paired_unfairness(after, before, hist, rng=rng, n_resamples=300)["mgu"]
        covered += ci.low <= true <= ci.high
    assert covered >= 34


def test_popularity_groups_hold_equal_shares_of_the_interactions() -> None:
    rng = np.random.default_rng(1)
    items = rng.zipf(1.6, size=20_000) % 500
    users = rng.integers(2_000, size=20_000)
    frame = pd.DataFrame({"user_id": users.astype(str), "item_id": items.astype(str)})
    frame = frame.drop_duplicates()
    groups = popularity_groups(frame, n_groups=5)
    per_item = frame.groupby("item_id")["user_id"].nunique()
    share = per_item.groupby(groups.reindex(per_item.index)).sum() / per_item.sum()
    largest = per_item.max() / per_item.sum()
    assert list(share.index) == [0, 1, 2, 3, 4]
    assert np.all(np.abs(share.to_numpy() - 0.2) <= largest + 1e-9)
    sizes = groups.value_counts().sort_index().to_numpy()
    assert sizes[0] < sizes[-1]  # the head is the fewest, most popular items


def test_user_group_gap_ci_and_its_paired_change_recover_a_planted_gap() -> None:
    from audit_sdk.plugins.mitigators.gdrt_evaluation import _user_group_fairness

    covered = 0
    seeds = range(30)
    for seed in seeds:
        rng = np.random.default_rng(seed)
        users = pd.Index([f"u{i}" for i in range(600)], name="user_id")
        groups = pd.DataFrame({"age": np.where(np.arange(600) % 3 == 0, "old", "young")}, users)
        old = (groups["age"] == "old").to_numpy()
        base = pd.Series(rng.normal(0.3, 0.1, 600), users)
        tuned = base + np.where(old, -0.2, 0.0) + rng.normal(0, 0.02, 600)  # planted gap +0.2
        out = _user_group_fairness(tuned, groups, other=base, seed=seed, n_resamples=400)["age"]
        low, high = out["gap_ci"]
        assert low <= out["gap"] <= high
        change = out["gap_change"]
        assert change["low"] > 0.1  # the planted widening is found
        covered += change["low"] <= 0.2 <= change["high"]
        same = _user_group_fairness(base, groups, other=base, seed=seed)["age"]["gap_change"]
        assert same["mean"] == 0.0 and same["low"] == same["high"] == 0.0  # none invented
    assert covered >= 26  # ~95% nominal over 30 seeds
