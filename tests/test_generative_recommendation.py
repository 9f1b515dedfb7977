"""Recommendations from a model that only writes text."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit_sdk.config import parse_config
from audit_sdk.generative_recommendation import parse_recommendation_lines
from audit_sdk.runner import AuditRunner

from . import generative_models


def test_answer_lines_are_cleaned() -> None:
    text = "1. Alpha\n2) Beta — Someone\n\n- Gamma\n* Delta by X\n10: Epsilon"
    assert parse_recommendation_lines(text) == [
        "Alpha",
        "Beta — Someone",
        "Gamma",
        "Delta by X",
        "Epsilon",
    ]


def test_a_text_only_subject_is_audited_with_a_hallucination_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world

    world = generate_world(SyntheticWorldParams(n_users=300, n_artists=60))
    plays = world.interactions.frame.groupby("item_id").size().sort_values(ascending=False)
    titles = world.catalog.frame["title"]
    top = [str(titles[i]) for i in plays.index[:30]]
    monkeypatch.setattr(generative_models, "POPULAR_TITLES", top)
    cfg = parse_config(
        {
            "dataset": {"params": {"n_users": 300, "n_artists": 60}},
            "subject": {
                "name": "text-model",
                "adapter": "callable",
                "params": {"target": "tests.generative_models:list_titles"},
            },
            "baselines": ["popularity"],
            "detectors": [{"name": "baseline_comparison"}],
            "stats": {"bootstrap_resamples": 100},
            "outputs": {"formats": ["json"]},
        }
    )
    result = AuditRunner(cfg, quiet=True, out_dir=tmp_path).run()
    context = result.context
    assert context is not None
    recs = context.subject.recommendations
    assert recs is not None and len(recs)
    # Every user got titles from the list, minus what they already played, in list order.
    assert recs.groupby("user_id")["rank"].max().max() == 10
    assert set(recs["item_id"]) <= set(plays.index[:30])
    rates = context.user_table["hallucination_rate"]
    assert rates.notna().all()
    assert rates.round(6).eq(round(1 / 31, 6)).all()  # one invented line out of 31
    (finding,) = [f for f in result.report.findings if f.metric == "ndcg@10:vs_popularity"]
    assert finding.status in {"pass", "warn"} and finding.estimate is not None
