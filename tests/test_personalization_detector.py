"""The personalization detector on a rating world with planted per-user preferences: reference
scorers recover the truth (or chance), LLM methods run through a real callable adapter, and bad
input gives skipped or warn findings with counts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from audit_sdk.adapters.callable_adapter import CallableAdapter, CallableParams
from audit_sdk.plugins.detectors._personalization_groups import GroupSettings, build_groups
from audit_sdk.plugins.detectors._personalization_methods import run_scorer
from audit_sdk.plugins.detectors._personalization_metrics import group_taus, summarize_taus
from audit_sdk.plugins.detectors.personalization import (
    PersonalizationDetector,
    PersonalizationParams,
)

from audit_sdk.data.tables import Interactions
from audit_sdk.errors import AuditSDKError
from audit_sdk.execution import LocalExecutor
from audit_sdk.interfaces import AuditContext
from audit_sdk.services import AuditServices, GenerationService, ModelHandle, ModelRoles
from audit_sdk.testing import check_detector, make_host
from tests.personalization_worlds import install_truth, rating_world, world_context

WORLD = "tests.personalization_worlds"
SCORERS = {
    "oracle": f"{WORLD}:true_rating_scorer",
    "planted": f"{WORLD}:planted_preference_scorer",
    "item_quality": f"{WORLD}:item_quality_scorer",
    "random": "random",
    "item_knn": "item_knn",
    "constant_rating": "constant_rating",
}


def _scorer_taus(seed: int) -> dict[str, tuple[float, float, float]]:
    """Mean tau with its CI per scorer on one world."""
    dataset = rating_world(seed)
    groups = build_groups(dataset.interactions.frame, GroupSettings(), np.random.default_rng(seed))
    out = {}
    for label, scorer in SCORERS.items():
        run = run_scorer(scorer, groups, dataset, np.random.default_rng(seed + 1))
        overall, _ = summarize_taus(
            group_taus(run.predictions),
            confidence=0.95,
            n_resamples=400,
            rng=np.random.default_rng(seed + 2),
        )
        out[label] = (overall.estimate, overall.low, overall.high)
    return out


def _check_planted(results: list[dict[str, tuple[float, float, float]]]) -> None:
    for result in results:
        assert result["oracle"][0] > 0.99
        assert result["planted"][1] > 0.5
        low, high = result["item_quality"][1:]
        assert low <= 0.0 <= high
        # Collaborative filtering recovers much of the planted taste, never all of it.
        assert 0.3 < result["item_knn"][0] < 0.95
    covered = [r["random"][1] <= 0.0 <= r["random"][2] for r in results]
    # A 95% interval covers the true 0 about 95% of the time.
    assert np.mean(covered) >= (1.0 if len(results) < 10 else 0.85)
    assert abs(np.mean([r["random"][0] for r in results])) < 0.05


def test_scorers_recover_planted_preferences_on_a_few_worlds():
    _check_planted([_scorer_taus(seed) for seed in (0, 1, 2)])


@pytest.mark.slow
def test_scorers_recover_planted_preferences_over_many_worlds():
    _check_planted([_scorer_taus(seed) for seed in range(3, 33)])


def _with_generator(context: AuditContext, target: str) -> AuditContext:
    adapter = CallableAdapter(CallableParams(target=target))
    services = AuditServices(
        generation=GenerationService(cache_path=None),
        models=ModelRoles({}),
        subject=ModelHandle("subject", spec=None, settings=None, live=adapter),
        executor=LocalExecutor(),
    )
    return dataclasses.replace(context, services=services)


def _small_params(**changes) -> PersonalizationParams:
    return PersonalizationParams(max_groups_per_size=25, **changes)


def _by_metric(findings):
    return {f.metric: f for f in findings}


def test_llm_methods_through_a_callable_oracle_rank_every_group_right(tmp_path):
    dataset = rating_world(4, n_users=120)
    install_truth(dataset)
    context = _with_generator(world_context(dataset), f"{WORLD}:oracle_generate")
    path = tmp_path / "predictions.csv"
    detector = PersonalizationDetector(_small_params(predictions_path=str(path)))
    findings = _by_metric(detector.detect(context))
    for method in ("pointwise", "pairwise", "listwise"):
        finding = findings[f"kendall_tau:{method}"]
        assert finding.estimate == pytest.approx(1.0)
        assert finding.status == "pass"
        assert finding.details["counts"]["malformed"] == 0
        assert [g.group for g in finding.groups] == ["easy", "medium", "hard"]
    assert findings["kendall_tau:pairwise"].details["counts"]["pairs_disagreeing"] == 0
    assert findings["mae:pointwise"].estimate == pytest.approx(0.0)
    assert "user_concordance:pointwise:group_gap" in findings
    table = pd.read_csv(path)
    assert {"group_id", "user_id", "method", "predicted", "rating", "relative"} <= set(table)
    assert set(table["method"]) >= {"pointwise", "pairwise", "listwise", "random"}

    # The logged table alone reproduces every method's tau, without a model.
    replay = PersonalizationDetector(
        PersonalizationParams(scorers=[], methods=[], logged_predictions=str(path))
    )
    replayed = _by_metric(replay.detect(world_context(dataset)))
    for method in ("pointwise", "pairwise", "listwise", "random", "item_knn"):
        assert replayed[f"kendall_tau:logged:{method}"].estimate == pytest.approx(
            findings[f"kendall_tau:{method}"].estimate
        )
    assert replayed["mae:logged:pointwise"].estimate == pytest.approx(0.0)


def test_a_logged_predictions_table_with_a_missing_column_is_one_clear_error(tmp_path):
    path = tmp_path / "logged.csv"
    pd.DataFrame({"group_id": ["g0"], "user_id": ["u1"], "method": ["m"], "rank": [1]}).to_csv(
        path, index=False
    )
    detector = PersonalizationDetector(PersonalizationParams(logged_predictions=str(path)))
    with pytest.raises(AuditSDKError, match=r"logged_predictions: .*relative \(or rating"):
        detector.detect(world_context(rating_world(7, n_users=30)))


def test_answers_that_never_parse_give_warn_findings_with_counts():
    dataset = rating_world(5, n_users=80)
    context = _with_generator(world_context(dataset), f"{WORLD}:garbage_generate")
    findings = _by_metric(PersonalizationDetector(_small_params()).detect(context))
    for method in ("pointwise", "pairwise", "listwise"):
        finding = findings[f"kendall_tau:{method}"]
        counts = finding.details["counts"]
        assert finding.status == "warn"
        assert counts["prompts"] > 0
        assert counts["malformed"] == counts["prompts"]
        assert finding.details["malformed_examples"]
        assert "malformed" in finding.explanation


def test_reference_scorers_without_a_generating_adapter():
    context = world_context(rating_world(6))
    findings = _by_metric(PersonalizationDetector().detect(context))
    assert findings["kendall_tau:llm"].status == "skipped"
    assert findings["groups"].details["group_construction"]["groups"] == findings["groups"].n
    for scorer in ("random", "user_mean", "item_mean", "constant_rating"):
        finding = findings[f"kendall_tau:{scorer}"]
        assert finding.threshold is None  # reference points, never judged
        assert finding.ci_low <= finding.estimate <= finding.ci_high
    # Ranking "one rating for everyone minus the user's mean" is not chance (see the
    # constant_rating scorer's documentation): the pointwise floor.
    assert findings["kendall_tau:constant_rating"].ci_low > 0
    # ... at the same rating error as predicting the item's mean, which ranks at chance.
    compared = findings["groups"].details["tau_vs_mae"]["methods"]
    assert set(compared) == {"user_mean", "item_mean", "constant_rating", "item_knn"}
    assert abs(compared["constant_rating"]["mae"] - compared["item_mean"]["mae"]) < 0.1
    assert findings["groups"].details["tau_vs_mae"]["pearson"] is not None


def _drop_column(context: AuditContext, column: str) -> AuditContext:
    frame = context.dataset.interactions.frame.drop(columns=[column])
    dataset = context.dataset.replace(interactions=Interactions(frame))
    return dataclasses.replace(context, dataset=dataset)


@pytest.mark.parametrize("column", ["rating", "timestamp"])
def test_a_dataset_without_ratings_or_timestamps_is_skipped_with_the_reason(column):
    context = _drop_column(world_context(rating_world(7, n_users=30)), column)
    (finding,) = PersonalizationDetector().detect(context)
    assert finding.status == "skipped"
    assert column in finding.explanation


def test_no_group_passing_the_filters_is_skipped_with_counts():
    context = world_context(rating_world(8, n_users=30))
    (finding,) = PersonalizationDetector(PersonalizationParams(min_history=500)).detect(context)
    assert finding.status == "skipped"
    assert finding.details["group_construction"]["dropped_short_history"] > 0
    assert "min_history" in finding.explanation


def test_detector_is_registered_and_passes_the_conformance_check():
    registration = make_host().get("detector", "personalization")
    assert registration.cls is PersonalizationDetector
    context = world_context(rating_world(9, n_users=80))
    check_detector(PersonalizationDetector(_small_params()), context)


def test_a_whole_audit_on_tabular_ratings_with_an_llm_by_role(tmp_path):
    from audit_sdk.config import parse_config
    from audit_sdk.runner import AuditRunner

    dataset = rating_world(10, n_users=100)
    install_truth(dataset)
    dataset.interactions.frame.to_csv(tmp_path / "ratings.csv", index=False)
    catalog = dataset.catalog.frame.drop(columns=["genres"]).reset_index()
    catalog.to_csv(tmp_path / "items.csv", index=False)
    config = parse_config(
        {
            "dataset": {
                "loader": "tabular",
                "params": {
                    "interactions": str(tmp_path / "ratings.csv"),
                    "catalog": str(tmp_path / "items.csv"),
                },
            },
            "subject": {"adapter": "popularity"},
            "baselines": [],
            "models": {
                "judge": {"adapter": "callable", "params": {"target": f"{WORLD}:oracle_generate"}}
            },
            "stats": {"bootstrap_resamples": 100},
            "outputs": {"formats": ["json"]},
            "detectors": [
                {
                    "name": "personalization",
                    "params": {
                        "generators": ["judge"],
                        "max_groups_per_size": 15,
                        "scorers": ["random"],
                    },
                }
            ],
        }
    )
    result = AuditRunner(config, host=make_host(), quiet=True, out_dir=tmp_path / "out").run()
    findings = {f.metric: f for f in result.report.findings if f.detector == "personalization"}
    for method in ("pointwise", "pairwise", "listwise"):
        finding = findings[f"kendall_tau:{method}@judge"]
        assert finding.estimate == pytest.approx(1.0), finding.explanation
        assert finding.direction == "higher_is_better"
        assert finding.value_range == (-1.0, 1.0)
    assert findings["groups"].details["group_construction"]["groups"] == 45
