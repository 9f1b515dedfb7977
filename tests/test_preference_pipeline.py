"""Exploration, task utility, preference pairs and the paired before/after of
audit_sdk.preference, on the synthetic world and on planted truths."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit_sdk.generation_cache import GenerationCache
from audit_sdk.interfaces.adapter import GenerationParams, GeneratorAdapter
from audit_sdk.preference import (
    draw_seed,
    draw_task_candidates,
    explore_profiles,
    hold_out_recent,
    make_preference_pairs,
    paired_change,
    score_with_encoder,
    score_with_model,
    write_pairs_jsonl,
)
from audit_sdk.preference.task_utility import TokenScores
from audit_sdk.services import GenerationService

from .preference_fixtures import embed
from .tinyrec_fixtures import tiny_world


class Encoder:
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return embed(texts)


class EchoSeedWriter(GeneratorAdapter):
    """Writes one of three profiles chosen by the sampling seed: a real generator whose output
    depends on the draw, as a sampled LLM's does."""

    name = "echo_seed"
    capabilities = frozenset({"generate"})

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def generate(self, prompts: Sequence[str], *, params: GenerationParams) -> list[str]:
        self.calls += len(prompts)
        return [f"{p.splitlines()[-1][:20]} draw {params.seed % 3}" for p in prompts]

    def fingerprint(self) -> str:
        return "echo-seed-1"


def test_hold_out_recent_keeps_the_latest_events_apart() -> None:
    world = tiny_world()
    split = hold_out_recent(world, targets=1, recent=3, min_older=5)
    frame = world.interactions.frame.sort_values(["user_id", "timestamp"], kind="stable")
    eligible = frame.groupby("user_id").size()
    eligible = eligible[eligible >= 9].index.astype(str)
    assert sorted(split.users) == sorted(eligible)
    for user in split.users[:20]:
        events = frame[frame["user_id"] == user]
        assert split.targets[user] == events["item_id"].iloc[-1]
        recent = split.recent[split.recent["user_id"] == user].sort_values("position")
        assert recent["item_id"].tolist() == events["item_id"].iloc[-4:-1].tolist()
        older = split.older.interactions.frame
        assert len(older[older["user_id"] == user]) == len(events) - 4
        latest_older = older[older["user_id"] == user]["timestamp"].max()
        assert latest_older <= events["timestamp"].iloc[-4]


def test_several_targets_are_the_latest_events_and_context_comes_before() -> None:
    world = tiny_world()
    split = hold_out_recent(world, targets=3, recent=2, min_older=5)
    frame = world.interactions.frame.sort_values(["user_id", "timestamp"], kind="stable")
    targets = split.target_items()
    assert list(targets) == split.users
    for user in split.users[:20]:
        events = frame[frame["user_id"] == user]["item_id"].astype(str).tolist()
        assert targets[user] == events[-3:]
        assert split.targets[user] == events[-1]
        recent = split.recent[split.recent["user_id"] == user].sort_values("position")
        assert recent["item_id"].tolist() == events[-5:-3]
    with pytest.raises(ValueError, match="targets must be >= 1"):
        hold_out_recent(world, targets=0)


def test_exploration_draws_distinct_seeds_through_the_cache(tmp_path: Path) -> None:
    world = tiny_world()
    split = hold_out_recent(world, targets=1, recent=2, users=[f"u{i:05d}" for i in range(1, 9)])
    writer = EchoSeedWriter()
    with GenerationCache(tmp_path / "gen.sqlite") as cache:
        service = GenerationService(cache=cache)
        first = explore_profiles(split, {"w": writer}, service=service, n_profiles=4, seed=2)
        calls = writer.calls
        again = explore_profiles(split, {"w": writer}, service=service, n_profiles=4, seed=2)
    assert len(first) == 4 * len(split.users)
    assert sorted(first["seed"].unique()) == [draw_seed(2, d) for d in range(4)]
    # each draw is its own cache entry: none collapsed, and a rerun generates nothing
    assert calls == len(first)
    assert writer.calls == calls and again["cached"].all()
    per_user = first.groupby("user_id")["text"].nunique()
    assert (per_user == 3).all()  # seeds 2000..2003 -> draws 2, 0, 1, 2


def test_candidates_exclude_what_the_user_played() -> None:
    world = tiny_world()
    split = hold_out_recent(world, targets=1, recent=2)
    frame = world.interactions.frame
    candidates = draw_task_candidates(
        split,
        items=world.catalog.frame.index,
        played=frame,
        rng=np.random.default_rng(0),
        negatives=20,
    )
    for user, items in list(candidates.items())[:30]:
        assert items[0] == split.targets[user]
        played = set(frame.loc[frame["user_id"] == user, "item_id"])
        assert not (set(items[1:]) & played) and len(set(items[1:])) == 20


def _task(world, *, targets: int = 1, recent: int = 2):  # type: ignore[no-untyped-def]
    split = hold_out_recent(world, targets=targets, recent=recent)
    texts = world.catalog.frame["title"] + " by " + world.catalog.frame["artist"]
    candidates = draw_task_candidates(
        split,
        items=world.catalog.frame.index,
        played=world.interactions.frame,
        rng=np.random.default_rng(1),
        negatives=30,
    )
    return split, texts, candidates


def test_a_profile_naming_the_targets_artist_ranks_it_higher() -> None:
    """The bi-encoder task: a profile naming the target's artist beats one naming nothing."""
    world = tiny_world()
    split, texts, candidates = _task(world)
    artist = world.catalog.frame["artist"]
    rows = []
    for user, target in split.targets.items():
        rows.append({"user_id": user, "text": f"Loves {artist[target]} above all."})
        rows.append({"user_id": user, "text": "Listens to music."})
    explored = pd.DataFrame(rows)
    scored = score_with_encoder(explored, split, candidates, item_text=texts, encoder=Encoder())
    naming = scored.iloc[0::2]["ndcg@10"].to_numpy()
    vague = scored.iloc[1::2]["ndcg@10"].to_numpy()
    assert naming.mean() > vague.mean() + 0.1
    assert set(np.unique(scored["hit@10"])) <= {0.0, 1.0}
    ranks = scored["target_rank"].to_numpy()
    np.testing.assert_allclose(
        scored["ndcg@10"], np.where(ranks <= 10, 1 / np.log2(ranks + 1), 0.0)
    )


def test_utility_averages_over_targets_each_ranked_against_the_negatives() -> None:
    """Three targets: a profile naming the artist of exactly one of them scores the mean of
    that target's NDCG and the other two's; the targets never compete with each other."""
    world = tiny_world()
    split, texts, candidates = _task(world, targets=3, recent=0)
    user = split.users[0]
    assert list(candidates[user][:3]) == split.target_items()[user]
    explored = pd.DataFrame([{"user_id": user, "text": "music"}])
    scored = score_with_encoder(explored, split, candidates, item_text=texts, encoder=Encoder())
    vectors = Encoder().embed([texts[i] for i in candidates[user]] + ["music"])
    scores = vectors[:-1] @ vectors[-1]
    ranks = [int((scores[3:] > scores[j]).sum()) + 1 for j in range(3)]
    expected = np.mean([1 / np.log2(r + 1) if r <= 10 else 0.0 for r in ranks])
    assert scored["ndcg@10"].iloc[0] == pytest.approx(expected)
    assert scored["target_rank"].iloc[0] == pytest.approx(np.mean(ranks))


def test_with_score_fusion_a_profiles_length_does_not_set_its_weight() -> None:
    """Read as one text, a profile's length sets its weight against the recent items in the
    query (the real bi-encoder then favours short profiles: module docstring); with the
    cosines added (the default) a profile said five times ranks exactly as said once."""
    world = tiny_world()
    split, texts, candidates = _task(world, recent=3)
    artist = world.catalog.frame["artist"]
    once = {u: f"fan of {artist[candidates[u][3]]}" for u in split.users}  # a negative's artist
    rows = [
        {"user_id": u, "text": t} for u in split.users for t in (once[u], " ".join([once[u]] * 5))
    ]
    explored = pd.DataFrame(rows)
    by_text = score_with_encoder(
        explored, split, candidates, item_text=texts, encoder=Encoder(), fusion="text"
    )
    by_scores = score_with_encoder(explored, split, candidates, item_text=texts, encoder=Encoder())
    np.testing.assert_allclose(
        by_scores.iloc[0::2]["target_rank"].to_numpy(), by_scores.iloc[1::2]["target_rank"]
    )
    # said five times, the misleading artist outweighs the recent items: the target falls
    assert by_text.iloc[1::2]["target_rank"].mean() > by_text.iloc[0::2]["target_rank"].mean() + 1
    with pytest.raises(ValueError, match="fusion"):
        score_with_encoder(
            explored,
            split,
            candidates,
            item_text=texts,
            encoder=Encoder(),
            fusion="x",  # type: ignore[arg-type]
        )


class LexicalScorer:
    """A ``score`` model: log-probability grows with the words a continuation shares with the
    prompt (any adapter with ``score`` plugs in the same way)."""

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[TokenScores]:
        out = []
        for prompt, text in zip(prompts, continuations, strict=True):
            words = set(prompt.lower().split())
            shared = sum(w in words for w in text.lower().split())
            out.append(TokenScores([0], [float(shared) - 5.0]))
        return out


def test_a_score_model_can_be_the_downstream_recommender() -> None:
    world = tiny_world()
    split, texts, candidates = _task(world)
    artist = world.catalog.frame["artist"]
    users = split.users[:15]
    explored = pd.DataFrame(
        [{"user_id": u, "text": f"fan of {artist[split.targets[u]]}"} for u in users]
        + [{"user_id": u, "text": "no idea"} for u in users]
    )
    scored = score_with_model(explored, split, candidates, item_text=texts, scorer=LexicalScorer())
    assert scored["ndcg@10"].iloc[:15].mean() > scored["ndcg@10"].iloc[15:].mean()


def test_pairs_respect_the_margin_and_export_as_trl_reads_them(tmp_path: Path) -> None:
    scored = pd.DataFrame(
        {
            "user_id": ["a"] * 4 + ["b"] * 3 + ["c"] * 2,
            "prompt": ["pa"] * 4 + ["pb"] * 3 + ["pc"] * 2,
            "text": ["a1", "a2", "a3", "a4", "b1", "b2", "b3", "c1", "c1"],
            "ndcg@10": [0.2, 0.9, 0.5, 0.0, 0.30, 0.35, 0.32, 1.0, 0.0],
        }
    )
    pairs = make_preference_pairs(scored, min_margin=0.1, pairs_per_user=2)
    # a: (a2, a4) and (a3, a1); b: best-worst 0.05 < margin; c: same text twice
    assert [(p.user_id, p.chosen, p.rejected) for p in pairs] == [
        ("a", "a2", "a4"),
        ("a", "a3", "a1"),
    ]
    assert make_preference_pairs(scored, min_margin=1.01) == []
    path = write_pairs_jsonl(pairs, tmp_path / "pairs.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[0]["prompt"] == "pa" and rows[0]["chosen"] == "a2" and rows[0]["rejected"] == "a4"
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    loaded = datasets.load_dataset("json", data_files=str(path), split="train")
    assert {"prompt", "chosen", "rejected"} <= set(loaded.column_names)


def test_paired_change_recovers_a_planted_gain_for_one_group() -> None:
    """Planted: +0.10 for group 'g1', 0 for 'g0'; the CI covers the truth in ~95% of worlds
    and the gap change (g1 starts behind by 0.05) is found."""
    covered, found_gain, null_group_ok = 0, 0, 0
    seeds = range(40)
    for seed in seeds:
        rng = np.random.default_rng(seed)
        n = 400
        users = [f"u{i}" for i in range(n)]
        group = np.where(np.arange(n) < n // 2, "g0", "g1")
        before = rng.normal(0.5, 0.2, n) - 0.05 * (group == "g1")
        after = before + 0.10 * (group == "g1") + rng.normal(0, 0.05, n)
        change = paired_change(
            pd.Series(before, index=users),
            pd.Series(after, index=users),
            metric="m",
            groups=pd.DataFrame({"grp": group}, index=users),
            rng=np.random.default_rng(100 + seed),
            n_resamples=300,
        )
        covered += change.low <= 0.05 <= change.high
        g0, g1 = change.groups
        found_gain += g1.low > 0
        null_group_ok += g0.low <= 0 <= g0.high
        assert change.gaps["grp"]["gap_before"] == pytest.approx(
            abs(before[group == "g0"].mean() - before[group == "g1"].mean())
        )
    assert covered >= 0.85 * len(seeds)
    assert found_gain == len(seeds)
    assert null_group_ok >= 0.85 * len(seeds)
