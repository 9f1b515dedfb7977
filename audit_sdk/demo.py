"""The built-in demo audit: TinyRec on the synthetic music world, with one planted bias.

The subject is TinyRec, the embedded LLM recommender: the first demo trains a demo-sized
model (about a minute on two cores) and caches it; later demos load it. TinyRec both
recommends and writes taste profiles, compared with the template writer it learned from.
The demo world plants a known quality penalty on users aged 55 and over (60% of their
listening is erratic, so any recommender serves them worse), so the report shows what a real
finding looks like, and ``audit-sdk gate`` has something to fail on.
"""

from __future__ import annotations

from audit_sdk.config import AuditConfig, parse_config

__all__ = ["DEMO_CONFIG", "demo_config"]

DEMO_CONFIG: dict[str, object] = {
    "title": "audit-sdk demo: TinyRec on the synthetic music world",
    "seed": 0,
    "dataset": {
        "loader": "synthetic",
        "params": {
            "seed": 0,
            "n_users": 2000,
            "quality_penalty": [{"attribute": "age_group", "value": "55+", "strength": 0.6}],
        },
    },
    "subject": {"name": "tinyrec", "adapter": "tinyrec", "params": {"size": "demo"}, "k": 10},
    "profiles": {"enabled": True, "max_users": 300},
    "baselines": ["popularity", "item_knn", "random"],
    "groups": {"intersections": [["age_bucket", "country"]]},
    # the default detectors, plus the generalist gap (GS-score quintiles; ~1 s at 2,000 users)
    # the bi-encoder of downstream utility: WordLlama's static embeddings (seconds on CPU;
    # MiniLM is the detector's default elsewhere)
    "models": {"encoder": {"adapter": "embedding", "params": {"backend": "wordllama"}}},
    "detectors": [
        {"name": name}
        for name in (
            "baseline_comparison",
            "popularity_bias",
            "profile_fidelity",
            "causal_effects",
            "generalist_gap",
        )
    ]
    # per-group recommendation quality, and the downstream utility (NDCG@10 of each profile's
    # held-out items) per age bucket, country and GS quintile (issue 10)
    + [{"name": "group_fairness", "params": {"profile_metrics": ["downstream_ndcg@10"]}}]
    + [{"name": "downstream_utility"}]
    # feature-ablation attribution of the recommendation prompt (issue 11): 48 users' prompts
    # of 8 history items, each span removed in turn (~2 s per subject on one core)
    + [{"name": "attribution", "params": {"max_users": 48, "max_history": 8}}]
    # sampling expansion (issue 13): the effect detector pairs each user's profiles before and
    # after the mitigation (fidelity and genre divergence; the demo runs no bi-encoder)
    + [{"name": "sampling_expansion_effect", "params": {"downstream": False}}],
    # generalists' (GS below the median) 365-day profiles re-written from up to 45 pairs
    "mitigators": [{"name": "sampling_expansion", "params": {"windows": ["365d"]}}],
}


def demo_config() -> AuditConfig:
    return parse_config(DEMO_CONFIG, source="(built-in demo config)")
