"""A team audits logged outputs (profiles with genre shares and human ratings) without running
any model, and gets the same genre forest plot as a live audit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from audit_sdk.config import parse_config
from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world
from audit_sdk.runner import AuditRunner


def test_logged_profiles_with_shares_and_ratings_give_a_genre_forest_plot(tmp_path: Path) -> None:
    world = generate_world(SyntheticWorldParams(n_users=800, seed=3))
    frame = world.interactions.frame
    genre = frame["item_id"].map(world.catalog.primary_genre())
    shares = pd.crosstab(frame["user_id"], genre, normalize="index")
    rng = np.random.default_rng(0)
    listeners = shares["metal"][shares["metal"] > 0]
    heavy_metal = (shares["metal"] > listeners.median()).astype(float)
    rating = 3.5 - 1.0 * heavy_metal + rng.normal(0, 0.5, len(shares))  # planted: -1.0
    logged = pd.DataFrame(
        {
            "user_id": shares.index,
            "model": "acme-profiler-v2",
            "window": "all",
            "text": "A listener of many things.",
            "rating": rating.round(2).to_numpy(),
        }
    )
    for g in shares.columns:
        logged[f"share:{g}"] = shares[g].round(4).to_numpy()
    path = tmp_path / "logged.csv"
    logged.to_csv(path, index=False)

    cfg = parse_config(
        {
            "dataset": {"params": {"n_users": 800, "seed": 3}},
            "subject": {"adapter": "logged_outputs", "params": {"path": str(path)}},
            "baselines": [],
            "detectors": [
                {
                    "name": "causal_effects",
                    "params": {"families": ["genre"], "outcomes": ["rating"]},
                    "thresholds": {"ate:*": {"statistic": "ci_high", "fail_below": -0.3}},
                },
                {"name": "group_fairness"},
            ],
            "stats": {"bootstrap_resamples": 200},
            "outputs": {"formats": ["json", "html"]},
        }
    )
    report = AuditRunner(cfg, quiet=True, out_dir=tmp_path / "out").run().report
    (forest,) = [f for f in report.findings if f.detector == "causal_effects"]
    assert forest.chart == "forest"
    assert forest.group_by == "genre"
    rows = {r.group: r for r in forest.groups}
    assert rows["metal"].significant is True
    assert rows["metal"].ci_low < -1.0 < rows["metal"].ci_high
    assert forest.status == "fail"  # the planted harm is beyond the team's -0.3 limit
    # No recommendations were logged, so recommendation detectors say why they skipped.
    (skipped,) = [f for f in report.findings if f.detector == "group_fairness"]
    assert skipped.status == "skipped" and "recommend" in skipped.explanation
    html = (tmp_path / "out" / "report.html").read_text()
    assert "ate:rating" in html and "<svg" in html
