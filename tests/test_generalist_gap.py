"""generalist_gap: planted generalist penalties are found and covered, null worlds rarely
alarm, per generator and clustered rows, and bad input gives a clear record."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from audit_sdk.plugins.detectors.generalist_gap import GeneralistGapDetector

from audit_sdk.errors import AuditSDKError
from audit_sdk.interfaces import SubjectOutputs
from audit_sdk.report_model import Finding
from audit_sdk.testing import check_detector, make_context, make_host
from tests.causal_worlds import with_tables
from tests.generalist_worlds import GeneralistWorld, generalist_world

PLANTED = 0.8


def _by_metric(findings: list[Finding]) -> dict[str, Finding]:
    return {f.metric: f for f in findings}


def _true_gap(world: GeneralistWorld, finding: Finding) -> float:
    """Top-minus-bottom bin mean of the noiseless quality, in the finding's own bins."""
    first, last = finding.groups[0].extra, finding.groups[-1].extra
    gs, signal = world.gs, world.signal
    bottom = signal[(gs >= first["gs_low"]) & (gs <= first["gs_high"])].mean()
    top = signal[(gs >= last["gs_low"]) & (gs <= last["gs_high"])].mean()
    return float(top - bottom)


def _outcomes(seeds: range) -> dict[str, float]:
    detected = slope_covered = gap_covered = null_alarms = 0
    for seed in seeds:
        planted = generalist_world(seed, slope=PLANTED)
        found = _by_metric(GeneralistGapDetector().detect(planted.context))
        gap, slope = found["gs_gap:ndcg@10:quintile_gap"], found["gs_gap:ndcg@10:slope"]
        detected += gap.status == "fail"
        assert slope.ci_low is not None and slope.ci_high is not None
        slope_covered += slope.ci_low <= PLANTED <= slope.ci_high
        assert gap.ci_low is not None and gap.ci_high is not None
        gap_covered += gap.ci_low <= _true_gap(planted, gap) <= gap.ci_high
        null = generalist_world(seed, slope=0.0, activity=0.0)
        found = _by_metric(GeneralistGapDetector().detect(null.context))
        null_alarms += (
            found["gs_gap:ndcg@10:quintile_gap"].status == "fail"
            or found["gs_gap:ndcg@10:slope"].status == "warn"
        )
    n = len(seeds)
    return {
        "detected": detected / n,
        "slope_covered": slope_covered / n,
        "gap_covered": gap_covered / n,
        "null_alarms": null_alarms / n,
    }


def test_planted_penalty_found_and_covered_over_seeds() -> None:
    rates = _outcomes(range(8))
    assert rates["detected"] >= 7 / 8, rates
    assert rates["slope_covered"] >= 6 / 8, rates
    assert rates["null_alarms"] <= 2 / 8, rates


@pytest.mark.slow
def test_planted_penalty_coverage_and_false_alarms_over_50_seeds() -> None:
    rates = _outcomes(range(100, 150))
    print(rates)
    assert rates["detected"] >= 0.9, rates
    assert rates["slope_covered"] >= 0.9, rates
    assert rates["gap_covered"] >= 0.9, rates
    assert rates["null_alarms"] <= 0.1, rates


def test_findings_are_well_formed_and_reproducible() -> None:
    world = generalist_world(3, slope=PLANTED)
    first = GeneralistGapDetector().detect(world.context)
    second = GeneralistGapDetector().detect(world.context)
    assert [f.model_dump() for f in first] == [f.model_dump() for f in second]
    gap = _by_metric(first)["gs_gap:ndcg@10:quintile_gap"]
    assert gap.chart == "bars" and gap.group_by == "gs_quintile" and len(gap.groups) == 5
    assert gap.groups[0].group.startswith("Q1 (generalists)")
    assert gap.groups[-1].group.startswith("Q5 (specialists)")
    assert gap.n == 400 and gap.details["resampled_unit"] == "users"
    assert gap.estimate == pytest.approx(gap.groups[-1].estimate - gap.groups[0].estimate)
    assert "Waller & Anderson" in (gap.reference or "")


def test_per_generator_with_clustered_rows() -> None:
    world = generalist_world(
        4,
        slope=PLANTED,
        profiles=("gen-a", "gen-b"),
        windows=("30d", "1y"),
        generator_slopes={"gen-b": 0.0},
        activity=0.0,
    )
    found = _by_metric(GeneralistGapDetector().detect(world.context))
    a = found["gs_gap:downstream_ndcg@10@gen-a:quintile_gap"]
    b = found["gs_gap:downstream_ndcg@10@gen-b:quintile_gap"]
    assert a.status == "fail" and b.status != "fail"
    pooled = found["gs_gap:downstream_ndcg@10:slope"]
    assert pooled.n == 400 and pooled.details["n_rows"] == 1600
    assert "cluster bootstrap" in pooled.details["resampled_unit"]
    slope_a = found["gs_gap:downstream_ndcg@10@gen-a:slope"]
    assert slope_a.ci_low is not None and slope_a.ci_high is not None
    assert slope_a.ci_low <= PLANTED <= slope_a.ci_high


def test_cluster_bootstrap_is_wider_than_resampling_rows() -> None:
    """Four strongly correlated rows per user: treating rows as independent would be too
    narrow. Resampling users keeps the interval honest (the same data, one row per user x 4,
    has the width of 400 users, not of 1600 rows)."""
    clustered = generalist_world(
        5,
        slope=PLANTED,
        profiles=("g",),
        windows=("a", "b", "c", "d"),
        noise=0.005,
        user_effect=0.06,
        activity=0.0,
    )
    found = _by_metric(GeneralistGapDetector().detect(clustered.context))
    slope = found["gs_gap:downstream_ndcg@10:slope"]
    profiles = clustered.context.subject.profiles
    assert profiles is not None
    # the same rows, each under its own user id: a row bootstrap
    rows = profiles.assign(user_id=profiles["user_id"] + "#" + profiles["window"])
    gs = clustered.gs.reindex(profiles["user_id"]).to_numpy()
    rows["gs_score"] = gs
    as_rows = with_tables(
        clustered.context,
        subject=SubjectOutputs(name="subject", adapter="test", fingerprint="0" * 64, profiles=rows),
    )
    as_rows.__dict__["features"] = clustered.context.features
    naive = _by_metric(
        GeneralistGapDetector(GeneralistGapDetector.Params(covariates=[])).detect(as_rows)
    )["gs_gap:downstream_ndcg@10:slope"]
    assert naive.n == 1600
    width = lambda f: f.ci_high - f.ci_low  # noqa: E731
    assert width(slope) > 1.5 * width(naive)


def test_gs_column_of_a_logged_table_is_used() -> None:
    world = generalist_world(6, slope=PLANTED, profiles=("g",))
    profiles = world.context.subject.profiles
    assert profiles is not None
    flat = profiles.assign(gs_score=0.5 + 0.0 * profiles.index)
    context = with_tables(
        world.context,
        subject=SubjectOutputs(name="subject", adapter="t", fingerprint="0" * 64, profiles=flat),
    )
    (finding,) = GeneralistGapDetector().detect(context)
    assert finding.status == "skipped" and "constant" in finding.explanation


def test_bad_input_is_a_clear_error_or_skip() -> None:
    world = generalist_world(6, slope=0.0)
    table = world.context.user_table.copy()
    table["ndcg@10"] = table["ndcg@10"].astype(object)
    table.iloc[3, table.columns.get_loc("ndcg@10")] = "high"
    bad = with_tables(world.context, user_table=table)
    with pytest.raises(AuditSDKError, match=r"user metric 'ndcg@10'.*'high'"):
        GeneralistGapDetector().detect(bad)
    missing = GeneralistGapDetector(GeneralistGapDetector.Params(quality="rating"))
    (finding,) = missing.detect(world.context)
    assert finding.status == "skipped" and "rating" in finding.explanation
    few = with_tables(world.context, user_table=world.context.user_table.iloc[:10])
    few.__dict__["features"] = world.context.features
    (finding,) = GeneralistGapDetector().detect(few)
    assert finding.status == "skipped" and "10 users" in finding.explanation
    with pytest.raises(AuditSDKError, match="covariate 'income'"):
        GeneralistGapDetector(GeneralistGapDetector.Params(covariates=["income"])).detect(
            world.context
        )


def test_registered_through_the_entry_point() -> None:
    host = make_host()
    assert "generalist_gap" in {r.name for r in host.registry.all() if r.kind == "detector"}


def test_reference_ols_matches_statsmodels() -> None:
    """The slope estimate is OLS (statsmodels is the reference)."""
    sm = pytest.importorskip("statsmodels.api")
    world = generalist_world(7, slope=PLANTED)
    context = world.context
    found = _by_metric(
        GeneralistGapDetector(GeneralistGapDetector.Params(covariates=["age"])).detect(context)
    )
    table = context.user_table
    x = pd.DataFrame({"gs": world.gs, "age": table["age"]})
    fit = sm.OLS(table["ndcg@10"], sm.add_constant(x), missing="drop").fit()
    assert found["gs_gap:ndcg@10:slope"].estimate == pytest.approx(fit.params["gs"], rel=1e-8)
    default = _by_metric(GeneralistGapDetector().detect(context))["gs_gap:ndcg@10:slope"]
    x["log_activity"] = np.log1p(context.features.activity_events.reindex(table.index))
    fit = sm.OLS(table["ndcg@10"], sm.add_constant(x), missing="drop").fit()
    assert default.estimate == pytest.approx(fit.params["gs"], rel=1e-8)


def test_conformance_suite() -> None:
    world = generalist_world(9, slope=PLANTED, profiles=("a", "b"), windows=("30d", "1y"))
    findings = check_detector(GeneralistGapDetector(), world.context)
    assert len(findings) == 6


def test_gs_from_an_embed_model_role() -> None:
    """``embedding_role``: GS on a configured model's item vectors (here genre indicators from
    the item texts, through the callable adapter) equals GS on the catalog's genre matrix."""
    from audit_sdk.plugins.detectors.generalist_gap import _gs_from_role
    from audit_sdk.plugins.features.generalist_specialist import gs_scores

    from audit_sdk.features.listening import item_level_matrix

    context = make_context(
        n_users=200,
        models={
            "items": {
                "adapter": "callable",
                "params": {"target": "tests.genre_embedder:embed", "capabilities": ["embed"]},
            }
        },
    )
    detector = GeneralistGapDetector(GeneralistGapDetector.Params(embedding_role="items"))
    found = _by_metric(detector.detect(context))
    assert found["gs_gap:ndcg@10:quintile_gap"].status not in {"error", "skipped"}
    gs = _gs_from_role(context, "items", 5)
    levels = item_level_matrix(context.features.catalog, "genres")
    assert levels is not None
    expected = gs_scores(context.features.plays, levels[0].toarray(), min_items=5)
    np.testing.assert_allclose(gs.to_numpy(), expected, rtol=1e-9)
    assert gs.notna().sum() > 150
