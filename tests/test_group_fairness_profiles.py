"""group_fairness on the downstream utility of profiles: per generator, by user group and by
GS-score quintile, against planted truth over seeds.

World: two generators; generator "biased" serves users over 50 and generalists (low GS)
worse (planted), generator "fair" serves everyone alike. The per-profile utility column is
given (as a logged audit would), so no encoder runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from audit_sdk.plugins.detectors.group_fairness import GroupFairnessDetector

from audit_sdk.config import AuditConfig
from audit_sdk.data.tables import Catalog, Dataset, Interactions, Users
from audit_sdk.interfaces import AuditContext, SubjectOutputs


def _context(seed: int, n_users: int = 200) -> AuditContext:
    rng = np.random.default_rng(seed)
    index = pd.Index([f"u{i}" for i in range(n_users)], name="user_id")
    users = pd.DataFrame(
        {
            "age_bucket": rng.choice(["18-29", "30-49", "50+"], n_users),
            "gs_score": rng.uniform(0, 1, n_users),
        },
        index=index,
    )
    rows = []
    for user, (bucket, gs) in users.iterrows():
        for window in ("30d", "1y"):
            for model in ("biased", "fair"):
                mean = 0.5
                if model == "biased":
                    mean -= 0.25 * (bucket == "50+") + 0.3 * (0.5 - gs)
                utility = float(np.clip(mean + rng.normal(0, 0.1), 0, 1))
                rows.append((user, window, model, f"profile of {user}", utility))
    profiles = pd.DataFrame(
        rows, columns=["user_id", "window", "model", "text", "downstream_ndcg@10"]
    )
    catalog = pd.DataFrame({"title": ["x"]}, index=pd.Index(["i0"], name="item_id"))
    plays = pd.DataFrame({"user_id": index, "item_id": "i0", "plays": 1.0})
    dataset = Dataset(
        name="w", interactions=Interactions(plays), catalog=Catalog(catalog), users=Users(users)
    )
    return AuditContext.from_tables(
        config=AuditConfig(seed=seed, stats={"bootstrap_resamples": 300}),
        dataset=dataset,
        train=dataset,
        test=dataset,
        user_table=users,
        group_columns=["age_bucket"],
        subject=SubjectOutputs(name="s", adapter="t", fingerprint="0" * 64, profiles=profiles),
    )


def _findings(seed: int) -> dict[tuple[str, str | None], object]:
    detector = GroupFairnessDetector(
        GroupFairnessDetector.Params(metrics=[], profile_metrics=["downstream_ndcg@10"])
    )
    return {(f.label, f.group_by): f for f in detector.detect(_context(seed))}


def test_planted_group_and_generalist_penalties_found_only_where_planted() -> None:
    hits = {"age": 0, "gs": 0, "fair_alarms": 0}
    seeds = range(12)
    for seed in seeds:
        found = _findings(seed)
        age = found["downstream_ndcg@10:min_max_ratio[biased]", "age_bucket"]
        gs = found["downstream_ndcg@10:min_max_ratio[biased]", "gs_quintile"]
        hits["age"] += age.status == "fail" and age.details["lowest_group"] == "50+"
        hits["gs"] += gs.ci_high < 0.9 and gs.details["lowest_group"] == "Q1 (generalists)"
        for attribute in ("age_bucket", "gs_quintile"):
            fair = found["downstream_ndcg@10:min_max_ratio[fair]", attribute]
            hits["fair_alarms"] += fair.status == "fail"
    assert hits["age"] == hits["gs"] == len(seeds)
    assert hits["fair_alarms"] == 0


def test_rows_are_users_with_their_windows_averaged() -> None:
    found = _findings(0)
    finding = found["downstream_ndcg@10:min_max_ratio[fair]", "gs_quintile"]
    assert sum(r.n for r in finding.groups) == 200  # users, not the 400 profiles
    assert next(r.group for r in finding.groups) == "Q1 (generalists)"
    assert "profiles by fair" in finding.explanation


def test_missing_profile_column_is_skipped_with_the_reason() -> None:
    detector = GroupFairnessDetector(
        GroupFairnessDetector.Params(metrics=[], profile_metrics=["rating"])
    )
    skipped = [f for f in detector.detect(_context(0)) if f.status == "skipped"]
    assert skipped and all("no profile column 'rating'" in f.explanation for f in skipped)


@pytest.mark.parametrize("bins", [3, 5])
def test_gs_bins_are_equal_sized(bins: int) -> None:
    detector = GroupFairnessDetector(
        GroupFairnessDetector.Params(
            metrics=[], profile_metrics=["downstream_ndcg@10"], gs_bins=bins
        )
    )
    finding = next(f for f in detector.detect(_context(1)) if f.group_by == "gs_quintile")
    sizes = [r.n for r in finding.groups]
    assert len(sizes) == bins and max(sizes) - min(sizes) <= 1
