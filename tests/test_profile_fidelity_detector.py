"""profile_fidelity on logged profiles: typed columns, missing metrics, several generators."""

from __future__ import annotations

import numpy as np
import pandas as pd
from audit_sdk.plugins.detectors.profile_fidelity import (
    ProfileFidelityDetector,
    ProfileFidelityParams,
)

from audit_sdk.interfaces import SubjectOutputs
from audit_sdk.report_model import Finding

from .causal_worlds import audit_context, with_tables


def _context(profiles: pd.DataFrame, subject: str = "subject"):  # type: ignore[no-untyped-def]
    context = audit_context(300, seed=1, logged=True)
    outputs = SubjectOutputs(
        name=subject, adapter="logged_outputs", fingerprint="0", profiles=profiles
    )
    return with_tables(context, subject=outputs)


def _profiles(models: dict[str, float]) -> pd.DataFrame:
    """One row per (user, window, model); artist_recall has the given mean per model."""
    base = audit_context(300, seed=1, logged=True).subject.profiles
    assert base is not None
    rng = np.random.default_rng(0)
    parts = []
    for model, mean in models.items():
        part = base[["user_id", "window"]].copy()
        part["model"] = model
        part["artist_recall"] = np.clip(mean + 0.1 * rng.standard_normal(len(part)), 0, 1)
        part["genre_recall"] = 0.5
        part["hallucination_rate"] = np.nan  # no profile names a catalog artist
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _detect(context, **params) -> list[Finding]:  # type: ignore[no-untyped-def]
    return ProfileFidelityDetector(ProfileFidelityParams(**params)).detect(context)


def test_numbers_logged_as_text_are_numbers_and_text_is_a_clear_skip() -> None:
    profiles = _profiles({"subject": 0.6})
    profiles["artist_recall"] = profiles["artist_recall"].map(lambda v: f"{v:.3f}")  # strings
    profiles["genre_recall"] = "high"
    findings = _detect(_context(profiles), metrics=["artist_recall", "genre_recall"])
    recall = next(f for f in findings if f.metric == "artist_recall" and f.group_by == "model")
    assert recall.estimate is not None and abs(recall.estimate - 0.6) < 0.05
    (genre,) = [f for f in findings if f.metric == "genre_recall"]
    assert genre.status == "skipped"
    assert "column 'genre_recall' of the profiles is not numeric" in genre.explanation
    assert "'high'" in genre.explanation


def test_profiles_naming_no_catalog_artist_skip_only_that_metric() -> None:
    findings = _detect(_context(_profiles({"subject": 0.6})))
    (hallucination,) = [f for f in findings if f.metric == "hallucination_rate"]
    assert hallucination.status == "skipped"
    assert "no profile names a catalog artist" in hallucination.explanation
    assert any(f.metric == "artist_recall" and f.status != "skipped" for f in findings)


def test_several_generators_are_compared_not_pooled() -> None:
    findings = _detect(
        _context(_profiles({"A": 0.6, "B": 0.4}), subject="A"), metrics=["artist_recall"]
    )
    by_model = next(f for f in findings if f.metric == "artist_recall" and f.group_by == "model")
    assert by_model.explanation.startswith("generator A: ")
    assert by_model.details["generator"] == "A"
    (difference,) = [f for f in findings if f.metric == "artist_recall:difference"]
    (row,) = difference.groups
    assert row.group == "B - A"
    assert row.ci_low is not None and row.ci_high is not None
    assert -0.25 < row.ci_low < row.ci_high < -0.15
    assert row.estimate is not None and abs(row.estimate + 0.2) < 0.03
    metrics = {f.label for f in findings}
    assert {"artist_recall[A]", "artist_recall[B]"} <= metrics
    assert {"artist_recall:min_max_ratio[A]", "artist_recall:min_max_ratio[B]"} <= metrics
    windows = [f for f in findings if f.group_by == "window"]
    assert sorted(f.details["generator"] for f in windows) == ["A", "B"]
    assert all(f.explanation.startswith(f"{f.details['generator']}: ") for f in windows)


def test_subject_missing_from_a_multi_model_log_shows_the_worst_and_says_so() -> None:
    findings = _detect(_context(_profiles({"A": 0.6, "B": 0.4})), metrics=["artist_recall"])
    by_model = next(f for f in findings if f.metric == "artist_recall" and f.group_by == "model")
    assert by_model.explanation.startswith("generator B: ")
    assert "the subject 'subject' is not in the log: worst shown" in by_model.explanation
