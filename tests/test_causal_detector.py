"""The causal_effects detector on hand-built audits with planted genre effects."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from audit_sdk.plugins.detectors import causal_effects
from audit_sdk.plugins.detectors._causal_treatments import binarize_exposure, exposure_from_history
from audit_sdk.plugins.detectors.causal_effects import CausalEffectsDetector, CausalEffectsParams
from pydantic import ValidationError

from audit_sdk.data.tables import Users
from audit_sdk.interfaces import AuditContext, SubjectOutputs
from audit_sdk.plugin_registry import PluginRegistry
from audit_sdk.report_model import Finding

from .causal_worlds import DETECTOR_PLANTED, audit_context, heavy_listeners, with_tables

PLANTED = set(DETECTOR_PLANTED)


def _detect(context, **params) -> list[Finding]:  # type: ignore[no-untyped-def]
    return CausalEffectsDetector(CausalEffectsParams(**params)).detect(context)


def _significant(finding: Finding) -> set[str]:
    return {g.group for g in finding.groups if g.significant}


@pytest.fixture(scope="module")
def history_findings() -> list[Finding]:
    return _detect(audit_context(1000, seed=1))


def test_history_audit_finds_the_planted_genres(history_findings: list[Finding]) -> None:
    genre = next(f for f in history_findings if f.group_by == "genre")
    assert genre.metric == "ate:ndcg@10"
    assert genre.chart == "forest"
    assert genre.details["share_source"] == "training history joined with the catalog"
    assert _significant(genre) == PLANTED
    rows = {g.group: g for g in genre.groups}
    assert len(rows) == 12
    for name, effect in DETECTOR_PLANTED.items():
        row = rows[name]
        assert row.ci_low is not None and row.ci_high is not None
        assert row.ci_low < effect < row.ci_high
        for key in ("naive_diff", "naive_ci_low", "p", "q", "fcr_ci_low", "share_clipped"):
            assert row.extra[key] is not None
        assert row.extra["n_treated"] + row.extra["n_control"] == 1000  # type: ignore[operator]
    # the finding reports the most harmful significant genre, with its FCR-adjusted interval
    assert genre.estimate == rows["metal"].estimate
    assert genre.ci_low == rows["metal"].extra["fcr_ci_low"]
    assert genre.ci_high is not None and genre.ci_high < -0.05
    assert genre.status == "fail"
    assert genre.explanation.startswith("2 of 12 genres change ndcg@10 significantly")
    assert f"most harmful: metal {genre.estimate:+.3g} [" in genre.explanation
    hist = genre.details["histogram"]
    assert set(hist) == {"edges", "counts_treated", "counts_control"}
    assert sum(hist["counts_treated"]) + sum(hist["counts_control"]) == 1000
    assert genre.reference is not None and "2507.16708" in genre.reference
    # the whole finding is valid report data
    Finding.model_validate_json(genre.model_dump_json())


def test_history_audit_country_family_has_no_planted_effect(
    history_findings: list[Finding],
) -> None:
    country = next(f for f in history_findings if f.group_by == "country")
    assert country.metric == "ate:ndcg@10"
    assert {g.group for g in country.groups} == {"US", "GB", "SE", "JP", "BR", "NG"}
    assert _significant(country) == set()
    assert country.status == "pass"
    assert country.explanation.startswith(
        "none of 6 artist countries changes ndcg@10 significantly"
    )
    assert "most negative:" in country.explanation
    assert any("genre treatments" in c for c in country.details["covariates"])


def test_detector_treatments_match_the_worlds_definition() -> None:
    context = audit_context(300, seed=2)
    shares = exposure_from_history(
        context.train.interactions.frame, context.dataset.catalog.frame, "genre"
    )
    plays = context.train.interactions.frame.assign(
        genre=lambda f: f["item_id"].str.rsplit("-", n=1).str[0]
    )
    by_genre = plays.pivot_table(index="user_id", columns="genre", values="plays", aggfunc="sum")
    expected = by_genre.div(by_genre.sum(axis=1), axis=0)
    pd.testing.assert_frame_equal(
        shares.loc[expected.index, expected.columns], expected, check_names=False
    )
    # the same as plays (users x items) times Catalog.genre_matrix()
    matrix = context.dataset.catalog.genre_matrix()
    user_items = plays.pivot_table(
        index="user_id", columns="item_id", values="plays", aggfunc="sum"
    )
    via_matrix = user_items.fillna(0.0) @ matrix.loc[user_items.columns]
    via_matrix = via_matrix.div(via_matrix.sum(axis=1), axis=0)
    np.testing.assert_allclose(
        shares.loc[via_matrix.index, via_matrix.columns].to_numpy(), via_matrix.to_numpy()
    )
    # and the detector's binarization is the world's
    pd.testing.assert_frame_equal(
        binarize_exposure(shares, method="median"), heavy_listeners(shares), check_names=False
    )


def test_logged_outputs_audit_finds_the_planted_genres() -> None:
    context = audit_context(600, seed=3, logged=True)
    assert "ndcg@10" not in context.user_table.columns
    (finding,) = _detect(context, families=["genre"])
    assert finding.metric == "ate:rating"
    assert (
        finding.details["share_source"] == "logged share:* columns of the profiles (mean per user)"
    )
    assert finding.details["unit"] == "user"
    assert _significant(finding) == PLANTED

    (per_profile,) = _detect(context, families=["genre"], unit="profile")
    assert per_profile.details["unit"] == "profile"
    assert per_profile.n == 1200
    assert _significant(per_profile) == PLANTED
    assert any(c.startswith("window=") for c in per_profile.details["covariates"])


def test_econml_estimator_reproduces_the_fast_path() -> None:
    context = audit_context(400, seed=4)
    common = {"families": ["genre"], "outcome_form": "joint", "max_treatments": 4}
    (fast,) = _detect(context, **common)
    (reference,) = _detect(context, estimator="econml", **common)
    assert reference.details["estimator"] == "econml DRLearner"
    for a, b in zip(fast.groups, reference.groups, strict=True):
        assert a.group == b.group
        assert a.estimate == pytest.approx(b.estimate, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# degenerate audits


def _with_user_table(context, table: pd.DataFrame):  # type: ignore[no-untyped-def]
    return with_tables(context, user_table=table)


def test_missing_outcome_is_a_skipped_finding() -> None:
    context = audit_context(200, seed=5)
    (finding,) = _detect(context, families=["genre"], outcomes=["hallucination_rate"])
    assert finding.status == "skipped"
    assert "outcome 'hallucination_rate' not found" in finding.explanation
    assert "ndcg@10" in finding.explanation  # names what is available


def test_constant_outcome_is_a_skipped_finding() -> None:
    context = audit_context(200, seed=5)
    table = context.user_table.assign(**{"ndcg@10": 0.3})
    (finding,) = _detect(_with_user_table(context, table), families=["genre"])
    assert finding.status == "skipped"
    assert all(g.warning and "outcome is constant" in g.warning for g in finding.groups)
    assert finding.explanation.startswith("none of 12 genres could be estimated")


def test_too_few_users_per_arm_skips_rows() -> None:
    context = audit_context(50, seed=6)
    (finding,) = _detect(context, families=["genre"], min_units_per_arm=30)
    assert finding.status == "skipped"
    assert all(
        g.estimate is None and "need at least 30" in (g.warning or "") for g in finding.groups
    )


def test_treatment_nobody_and_everybody_has() -> None:
    context = audit_context(400, seed=7, logged=True)
    profiles = context.subject.profiles
    assert profiles is not None
    profiles = profiles.assign(**{"share:polka": 0.0, "share:pop": 1.0})
    subject = SubjectOutputs(name="subject", adapter="test", fingerprint="0", profiles=profiles)
    context = with_tables(context, subject=subject)
    (finding,) = _detect(context, families=["genre"], binarization="top_k", k=3)
    rows = {g.group: g for g in finding.groups}
    # pop (share 1) is in everybody's top 3, polka (share 0) in nobody's
    assert "every unit is treated" in (rows["pop"].warning or "")
    assert "no unit is treated" in (rows["polka"].warning or "")
    assert rows["pop"].estimate is None and rows["polka"].estimate is None
    assert any(w.startswith("pop: skipped") for w in finding.warnings)
    assert finding.status in {"pass", "warn", "fail"}  # the other genres are still estimated
    assert "2 skipped" in finding.explanation


def test_all_zero_exposure_is_a_skipped_finding() -> None:
    context = audit_context(200, seed=8, logged=True)
    profiles = context.subject.profiles
    assert profiles is not None
    share_columns = [c for c in profiles.columns if c.startswith("share:")]
    profiles = profiles.assign(**dict.fromkeys(share_columns, 0.0))
    subject = SubjectOutputs(name="subject", adapter="test", fingerprint="0", profiles=profiles)
    (finding,) = _detect(with_tables(context, subject=subject), families=["genre"])
    assert finding.status == "skipped"
    assert "no unit has any genre exposure" in finding.explanation


def test_positivity_failures_are_warnings_on_the_finding() -> None:
    # heavy metal listeners are exactly the users under 30: age predicts the treatment
    context = audit_context(600, seed=9, logged=True)
    profiles = context.subject.profiles
    assert profiles is not None
    age = context.dataset.users.frame["age"].reindex(profiles["user_id"]).to_numpy()
    profiles = profiles.assign(**{"share:metal": np.where(age < 30, 0.9, 0.05)})
    subject = SubjectOutputs(name="subject", adapter="test", fingerprint="0", profiles=profiles)
    (finding,) = _detect(with_tables(context, subject=subject), families=["genre"])
    assert any(w.startswith("metal: positivity") for w in finding.warnings)
    assert finding.details["histogram_treatment"] == "metal"


# ---------------------------------------------------------------------------------------------
# plugin contract


def test_registers_through_the_hook() -> None:
    registry = PluginRegistry()
    register = registry.make_register("detector", plugin="causal_effects")
    causal_effects.audit_sdk_register_detectors(register=register)
    assert registry.get("detector", "causal_effects").cls is CausalEffectsDetector


def test_params_are_validated() -> None:
    with pytest.raises(ValidationError, match="clip"):
        CausalEffectsParams(clip=(0.6, 0.4))
    with pytest.raises(ValidationError, match="binarization"):
        CausalEffectsParams(binarization="share")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="extra"):
        CausalEffectsParams(fold=5)  # type: ignore[call-arg]


def test_default_threshold_gates_on_evidence_of_harm() -> None:
    detector = CausalEffectsDetector()
    threshold = detector.threshold_for("ate:rating")
    assert threshold is not None
    assert threshold.statistic == "ci_high"
    assert threshold.fail_below == -0.05 and threshold.warn_below == 0.0


def test_only_beneficial_effects_pass() -> None:
    context = audit_context(600, seed=10, logged=True, effects={"jazz": 0.06})
    (finding,) = _detect(context, families=["genre"])
    assert _significant(finding) == {"jazz"}
    assert "none for the worse; most negative:" in finding.explanation
    assert finding.status == "pass"


# ---------------------------------------------------------------------------------------------
# trust: overlap and range checks decide the status


def _poor_overlap_context(seed: int):  # type: ignore[no-untyped-def]
    """Heavy metal listeners are exactly the users under 30: age predicts the treatment, and
    the planted metal effect is kept so the estimate looks decisive."""
    context = audit_context(600, seed=seed, logged=True)
    profiles = context.subject.profiles
    assert profiles is not None
    age = context.dataset.users.frame["age"].reindex(profiles["user_id"]).to_numpy()
    profiles = profiles.assign(**{"share:metal": np.where(age < 30, 0.9, 0.05)})
    subject = SubjectOutputs(name="subject", adapter="test", fingerprint="0", profiles=profiles)
    return with_tables(context, subject=subject)


@pytest.mark.parametrize("seed", range(5))
def test_poor_overlap_world_warns_instead_of_passing(seed: int) -> None:
    context = _poor_overlap_context(seed)
    (finding,) = _detect(context, families=["genre"], outcomes=["rating"])
    rows = {g.group: g for g in finding.groups}
    assert finding.status == "warn"
    assert "metal" in finding.details["untrusted"]
    assert finding.details["untrusted"]["metal"].startswith("positivity")
    assert rows["metal"].extra["trusted"] is False
    assert (rows["metal"].warning or "").startswith("untrusted: positivity")
    assert "untrusted (poor overlap or implausible size: metal)" in finding.explanation
    # the headline never shows the untrusted level
    assert not finding.explanation.split(";")[1].strip().startswith("most harmful: metal")


def test_estimate_outside_the_outcomes_range_is_untrusted() -> None:
    context = audit_context(600, seed=3, logged=True)
    (finding,) = _detect(context, families=["genre"], outcome_range=(0.0, 0.5))
    assert finding.details["outcome_range"] == [0.0, 0.5]
    untrusted = finding.details["untrusted"]
    assert "metal" in untrusted and untrusted["metal"].startswith("implausible size: |ATE|")
    assert finding.status in {"warn", "fail"}
    assert any(w.startswith("metal: untrusted, implausible") for w in finding.warnings)


def test_nothing_trustworthy_is_a_warning_with_the_reasons() -> None:
    context = audit_context(600, seed=3, logged=True)
    (finding,) = _detect(context, families=["genre"], outcome_range=(0.0, 1e-6))
    assert finding.status == "warn"
    assert finding.estimate is None
    assert "no trustworthy estimate" in finding.explanation


# ---------------------------------------------------------------------------------------------
# treatment definitions, covariates, generators


def test_median_over_all_units_and_threshold_treatments() -> None:
    shares = pd.DataFrame({"a": [0.0, 0.0, 0.1, 0.5], "b": [0.2, 0.4, 0.6, 0.8]})
    assert binarize_exposure(shares, method="median_all")["a"].tolist() == [0, 0, 1, 1]
    assert binarize_exposure(shares, method="median")["a"].tolist() == [0, 0, 0, 1]
    assert binarize_exposure(shares, method="threshold", threshold=0.5)["b"].tolist() == [
        0,
        0,
        1,
        1,
    ]
    with pytest.raises(ValidationError, match=r"needs params\.threshold"):
        CausalEffectsParams(binarization="threshold")
    context = audit_context(600, seed=3, logged=True)
    for params in (
        {"binarization": "median_all"},
        {"binarization": "threshold", "threshold": 0.25},
    ):
        (finding,) = _detect(context, families=["genre"], **params)
        assert finding.details["binarization"].startswith(params["binarization"])  # type: ignore[attr-defined]
        assert PLANTED <= _significant(finding), params


def test_continuous_share_through_partially_linear_dml() -> None:
    context = audit_context(600, seed=3, logged=True)
    (finding,) = _detect(context, families=["genre"], binarization="continuous")
    assert finding.details["estimator"] == "cross-fitted partially linear DML"
    assert finding.details["effect_unit"] == "per unit of share (0 to 1)"
    assert "eq. 4.4" in (finding.reference or "")
    rows = {g.group: g for g in finding.groups}
    assert rows["metal"].estimate is not None and rows["metal"].estimate < 0
    assert rows["jazz"].estimate is not None and rows["jazz"].estimate > 0
    assert {"metal", "jazz"} <= _significant(finding)
    assert finding.explanation.endswith("per unit of share") or "per unit of share" in (
        finding.explanation
    )


def test_user_chosen_covariates_from_the_users_table() -> None:
    context = audit_context(400, seed=4, logged=True)
    users = context.dataset.users.frame.assign(
        **{"longterm:rock": 0.3, "longterm:jazz": np.linspace(0, 1, 400), "segment": "a"}
    )
    dataset = dataclasses.replace(context.dataset, users=Users(users))
    context = AuditContext.from_tables(
        config=context.config,
        dataset=dataset,
        user_table=context.user_table,
        group_columns=context.group_columns,
        subject=context.subject,
    )
    (finding,) = _detect(context, families=["genre"], covariates=["age", "longterm:*", "segment"])
    assert "longterm:jazz" in finding.details["covariates"]
    assert "age" in finding.details["covariates"]
    (missing,) = _detect(context, families=["genre"], covariates=["age", "nope"])
    assert missing.status == "skipped"
    assert "covariate 'nope' is neither a built-in covariate" in missing.explanation
    assert "longterm:jazz" in missing.explanation  # names what is available


def test_several_generators_are_estimated_separately_never_pooled() -> None:
    context = audit_context(600, seed=3, logged=True)
    profiles = context.subject.profiles
    assert profiles is not None
    # generator B rates without any genre effect
    other = profiles.assign(
        rating=3.0 + 0.5 * np.random.default_rng(0).standard_normal(len(profiles))
    )
    both = pd.concat([profiles.assign(model="A"), other.assign(model="B")], ignore_index=True)
    subject = SubjectOutputs(name="subject", adapter="test", fingerprint="0", profiles=both)
    findings = _detect(with_tables(context, subject=subject), families=["genre"])
    assert [f.label for f in findings] == [
        "ate:rating[A]",
        "ate:rating[B]",
        "ate:rating:difference",
    ]
    a, b, difference = findings
    assert a.details["generator"] == "A" and a.explanation.startswith("generator A: ")
    assert b.explanation.startswith("generator B: ")
    assert _significant(a) == PLANTED
    assert _significant(b) == set()
    assert a.threshold is not None  # the ate:* default still applies
    assert a.n == 600 and b.n == 600
    # the comparison: B - A per genre, on the same users (A's planted metal and jazz effects)
    rows = {g.group: g for g in difference.groups}
    a_rows = {g.group: g for g in a.groups}
    b_rows = {g.group: g for g in b.groups}
    for genre in ("metal", "jazz"):
        row = rows[f"{genre}: B - A"]
        assert row.estimate == pytest.approx(
            b_rows[genre].estimate - a_rows[genre].estimate  # type: ignore[operator]
        )
        assert row.significant is True
        # the same users in both: the paired interval is no wider than the independent one
        se_a, se_b = a_rows[genre].extra["se"], b_rows[genre].extra["se"]
        assert row.extra["se"] <= 1.05 * np.hypot(se_a, se_b)  # type: ignore[arg-type]
    assert rows["metal: B - A"].estimate > 0 > rows["jazz: B - A"].estimate  # type: ignore[operator]
    assert {g for g, r in rows.items() if r.significant} == {"metal: B - A", "jazz: B - A"}
    assert difference.details["reference_generator"] == "A"


@pytest.mark.slow
def test_status_over_seeds_null_worlds_pass_and_planted_harm_fails() -> None:
    """False alarms at the finding level: a world without effects passes (no untrusted level
    turns it into a warning by accident), a world with the planted harm fails."""
    null = [
        _detect(audit_context(600, seed=s, effects={}), families=["genre"])[0] for s in range(8)
    ]
    planted = [_detect(audit_context(600, seed=s), families=["genre"])[0] for s in range(8)]
    assert sum(f.status == "pass" for f in null) >= 7, [f.explanation for f in null]
    assert all(f.status == "fail" for f in planted), [f.explanation for f in planted]
    assert all(
        f.explanation.startswith("2 of 12 genres") or "metal" in f.explanation for f in planted
    )


def test_generator_differences_are_significant_exactly_when_the_adjusted_interval_excludes_0() -> (
    None
):
    context = audit_context(600, seed=3, logged=True)
    profiles = context.subject.profiles
    assert profiles is not None
    other = profiles.assign(
        rating=3.0 + 0.5 * np.random.default_rng(1).standard_normal(len(profiles))
    )
    both = pd.concat([profiles.assign(model="A"), other.assign(model="B")], ignore_index=True)
    subject = SubjectOutputs(name="subject", adapter="test", fingerprint="0", profiles=both)
    difference = _detect(with_tables(context, subject=subject), families=["genre"])[-1]
    assert difference.metric == "ate:rating:difference"
    assert "FCR-adjusted" in (difference.ci_method or "")
    for row in difference.groups:
        low, high = row.extra["fcr_ci_low"], row.extra["fcr_ci_high"]
        assert row.significant == (not (low <= 0 <= high)), row  # type: ignore[operator]


def test_per_window_estimates_are_labelled_and_compared() -> None:
    context = audit_context(600, seed=3, logged=True)
    findings = _detect(context, families=["genre"], unit="profile", per_window=True)
    assert [f.label for f in findings] == [
        "ate:rating[window 30d]",
        "ate:rating[window 90d]",
        "ate:rating:difference",
    ]
    first = findings[0]
    assert first.explanation.startswith("window 30d: ")
    assert first.n == 600  # one profile per user in a window
    assert _significant(first) >= {"metal"}
