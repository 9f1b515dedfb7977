"""The built-in demo audit: the synthetic music world, with one planted bias to find.

The demo world plants a known quality penalty on users aged 55 and over (half of their
listening is erratic, so any recommender serves them worse), so the demo report shows what
a real finding looks like, and ``audit-sdk gate`` has something to fail on.
"""

from __future__ import annotations

from audit_sdk.config import AuditConfig, parse_config

__all__ = ["DEMO_CONFIG", "demo_config"]

DEMO_CONFIG: dict[str, object] = {
    "title": "audit-sdk demo: item-kNN on the synthetic music world",
    "seed": 0,
    "dataset": {
        "loader": "synthetic",
        "params": {
            "seed": 0,
            "n_users": 2000,
            "quality_penalty": [{"attribute": "age_group", "value": "55+", "strength": 0.5}],
        },
    },
    "subject": {"adapter": "item_knn", "k": 10},
    "baselines": ["popularity", "item_knn", "random"],
    "groups": {"intersections": [["age_bucket", "country"]]},
}


def demo_config() -> AuditConfig:
    return parse_config(DEMO_CONFIG, source="(built-in demo config)")
