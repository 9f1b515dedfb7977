"""TinyRec's held-out measurements: ranking quality beside the baselines, and profiles.

Recommendations: NDCG@10, recall@10 and hit@10 of every audited user's held-out items, for
TinyRec, popularity and random, each with a 95% bootstrap CI over users, and the paired
difference TinyRec - popularity (resampling users, so the pairing is kept). Profiles: the
token NLL of the template profile for held-out users, and how often greedy generation
reproduces it exactly.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from audit_sdk.stats.bootstrap import mean_ci

from ..catalog_ranking import ItemRanker
from .training_data import IGNORE_INDEX, ProfileExample, pad_batch, profile_sequences
from .training_loop import seed_from

__all__ = ["evaluate_profiles", "evaluate_recommendations", "next_token_logits_fn"]


def next_token_logits_fn(model: Any, tokenizer: Any, *, batch_size: int = 64) -> Any:
    import torch

    def next_token_logits(prompts: list[str]) -> np.ndarray:
        outs = []
        for start in range(0, len(prompts), batch_size):
            enc = tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True)
            mask = enc["attention_mask"]
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.no_grad():
                logits = model(
                    input_ids=enc["input_ids"], attention_mask=mask, position_ids=positions
                ).logits
            outs.append(logits[:, -1, :].float().numpy())
        return np.concatenate(outs, axis=0)

    return next_token_logits


def _interval(values: np.ndarray, *, seed: int, salt: str) -> dict[str, float]:
    ci = mean_ci(values, rng=np.random.default_rng(seed_from(seed, salt)), n_resamples=1000)
    return {"mean": ci.estimate, "low": ci.low, "high": ci.high, "n": float(ci.n)}


def evaluate_recommendations(
    split: Any,
    ranker: ItemRanker,
    histories: dict[str, list[str]],
    logits_fn: Any,
    *,
    k: int,
    seed: int,
) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, dict[str, float]]]:
    from audit_sdk.adapters.baseline_recommenders import PopularityRecommender, RandomRecommender

    from audit_sdk.metrics.ranking import ranking_metrics

    users = split.users
    test = split.test.interactions.frame
    recommendations = {"tinyrec": ranker.recommend(users, histories, logits_fn, k=k)}
    for name, cls in (("popularity", PopularityRecommender), ("random", RandomRecommender)):
        baseline = cls()
        baseline.fit(split.train)
        recommendations[name] = baseline.recommend(users, k=k)
    per_user = {
        name: ranking_metrics(recs, test, k=k).reindex(users)
        for name, recs in recommendations.items()
    }
    metric_names = [f"ndcg@{k}", f"recall@{k}", f"hit@{k}"]
    metrics = {
        name: {
            m: _interval(frame[m].to_numpy(dtype=float), seed=seed, salt=f"{name}:{m}")
            for m in metric_names
        }
        for name, frame in per_user.items()
    }
    paired = {
        m: _interval(
            per_user["tinyrec"][m].to_numpy(dtype=float)
            - per_user["popularity"][m].to_numpy(dtype=float),
            seed=seed,
            salt=f"paired:{m}",
        )
        for m in metric_names
    }
    return metrics, paired


def evaluate_profiles(
    model: Any,
    tokenizer: Any,
    examples: list[ProfileExample],
    *,
    eos_id: int,
    max_length: int,
    n_generate: int,
) -> dict[str, float]:
    """Held-out users' profile task: token NLL of the template profile, and for up to
    ``n_generate`` of them, greedy generation compared with the template profile."""
    import torch
    from transformers import GenerationConfig

    if not examples:
        return {}
    sequences, _ = profile_sequences(examples, tokenizer, eos_id=eos_id, max_length=max_length)
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(sequences), 16):
            ids, mask, labels = pad_batch(
                sequences[start : start + 16], pad_id=tokenizer.pad_token_id
            )
            logits = model(
                input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)
            ).logits
            target = torch.from_numpy(labels)
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(),
                target.reshape(-1),
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            )
            total += float(loss)
            count += int((target != IGNORE_INDEX).sum())
    prompt_lengths = [
        len(ids) for ids in tokenizer([e.prompt for e in examples], verbose=False)["input_ids"]
    ]
    chosen = [e for e, n in zip(examples, prompt_lengths, strict=True) if n + 120 <= max_length]
    chosen = chosen[:n_generate]
    config = GenerationConfig(
        max_new_tokens=120,
        do_sample=False,
        eos_token_id=eos_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    exact = 0
    started = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(chosen), 16):
            batch = chosen[start : start + 16]
            enc = tokenizer([e.prompt for e in batch], return_tensors="pt", padding=True)
            out = model.generate(**enc, generation_config=config)
            texts = tokenizer.batch_decode(
                out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True
            )
            exact += sum(t.strip() == e.profile for t, e in zip(texts, batch, strict=True))
    return {
        "profile_token_nll": total / max(count, 1),
        "profile_exact_match": exact / max(len(chosen), 1),
        "profile_users": float(len({e.user_id for e in examples})),
        "profile_generated": float(len(chosen)),
        "profile_generate_seconds": time.perf_counter() - started,
    }
