"""Mitigation re-enters the pipeline: new outputs, a new model, new sampling settings or a new
sampling policy each give a correctly re-scored, re-fingerprinted mitigated subject."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest

from audit_sdk import testing
from audit_sdk.config import SamplingConfig, parse_config
from audit_sdk.data.tables import Dataset
from audit_sdk.interfaces import (
    AuditContext,
    MitigationResult,
    Mitigator,
    Needs,
    ProfileSampler,
    SubjectOutputs,
)
from audit_sdk.metrics.ranking import ranking_metrics
from audit_sdk.profile_pipeline import sample_profile_windows
from audit_sdk.runner import AuditResult, AuditRunner

from . import generative_models


class ReverseLists(Mitigator):
    """Returns outputs: each user's list in reverse order (and nothing else)."""

    name = "reverse_lists"
    requires = frozenset({Needs.RECOMMENDATIONS})

    def mitigate(self, context: AuditContext) -> MitigationResult:
        recs = context.subject.recommendations
        assert recs is not None
        flipped = recs.copy()
        flipped["rank"] = flipped.groupby("user_id")["rank"].transform(lambda r: r.max() + 1 - r)
        flipped = flipped.sort_values(["user_id", "rank"]).reset_index(drop=True)
        outputs = SubjectOutputs(
            name=context.subject.name,
            adapter=context.subject.adapter,
            fingerprint=context.subject.fingerprint,  # the host must not keep this one
            recommendations=flipped,
        )
        return MitigationResult(summary="reversed every list", outputs=outputs)


class SwapInPopularity(Mitigator):
    """Returns a new model: the popularity recommender replaces the subject."""

    name = "swap_in_popularity"

    def mitigate(self, context: AuditContext) -> MitigationResult:
        registration = testing.make_host().get("adapter", "popularity")
        return MitigationResult(summary="a new model", adapter=registration.cls())


class FewerArtists(Mitigator):
    """Returns new sampling settings: two artists, one track each."""

    name = "fewer_artists"

    def mitigate(self, context: AuditContext) -> MitigationResult:
        return MitigationResult(
            summary="smaller samples",
            settings={"sampling": {"top_artists": 2, "tracks_per_artist": 1}},
        )


class TopArtistOnly(ProfileSampler):
    name = "top_artist_only"

    def sample(self, train: Dataset, settings: SamplingConfig) -> dict[str, pd.DataFrame]:
        return sample_profile_windows(
            train, windows=settings.windows, top_artists=1, tracks_per_artist=1
        )


class NewSampler(Mitigator):
    name = "new_sampler"

    def mitigate(self, context: AuditContext) -> MitigationResult:
        return MitigationResult(summary="one item per window", sampler=TopArtistOnly())


class ChangesTheSplit(Mitigator):
    name = "changes_the_split"

    def mitigate(self, context: AuditContext) -> MitigationResult:
        return MitigationResult(summary="bad", settings={"split": {"test_items": 1}})


class NeedsProfiles(Mitigator):
    name = "needs_profiles"
    requires: ClassVar[frozenset[Any]] = frozenset({Needs.PROFILES})

    def mitigate(self, context: AuditContext) -> MitigationResult:  # pragma: no cover
        raise AssertionError("must not be called without profiles")


def _run(tmp_path: Path, mitigators: list[type[Mitigator]], **config: Any) -> AuditResult:
    data: dict[str, Any] = {
        "dataset": {"params": {"n_users": 300, "n_artists": 80}},
        "baselines": ["popularity"],
        "detectors": [{"name": "baseline_comparison"}, {"name": "group_fairness"}],
        "mitigators": [{"name": m.name} for m in mitigators],
        "stats": {"bootstrap_resamples": 100},
        "outputs": {"formats": ["json"]},
    }
    data.update(config)
    host = testing.make_host()
    with testing.inline_plugin(host, *mitigators):
        return AuditRunner(parse_config(data), host=host, quiet=True, out_dir=tmp_path).run()


def test_returned_outputs_are_rescored_with_no_stale_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world

    world = generate_world(SyntheticWorldParams(n_users=300, n_artists=80))
    plays = world.interactions.frame.groupby("item_id").size().sort_values(ascending=False)
    titles = world.catalog.frame["title"]
    monkeypatch.setattr(
        generative_models, "POPULAR_TITLES", [str(titles[i]) for i in plays.index[:30]]
    )
    result = _run(
        tmp_path,
        [ReverseLists],
        subject={
            "name": "text-model",
            "adapter": "callable",
            "params": {"target": "tests.generative_models:list_titles"},
        },
    )
    before = result.context
    assert before is not None and "hallucination_rate" in before.user_table
    (after,) = result.mitigated
    assert after.subject.name == "text-model+reverse_lists"
    assert after.subject.fingerprint != before.subject.fingerprint
    assert after.subject.fingerprint.startswith("mitigated:reverse_lists:")
    # no column of the unmitigated subject survives: the mitigator returned lists only
    assert "hallucination_rate" not in after.user_table.columns
    recs = after.subject.recommendations
    assert recs is not None
    expected = ranking_metrics(recs, after.test.interactions.frame, k=after.k).reindex(after.users)
    for column in ("ndcg@10", "recall@10", "hit@10"):
        pd.testing.assert_series_equal(
            after.user_table[column], expected[column], check_names=False
        )
    # same items, other order: recall unchanged, NDCG not
    pd.testing.assert_series_equal(after.user_table["recall@10"], before.user_table["recall@10"])
    assert not after.user_table["ndcg@10"].equals(before.user_table["ndcg@10"])
    findings = [f for f in result.report.findings if f.subject == "text-model+reverse_lists"]
    assert findings and all(f.mitigation is not None for f in findings)
    assert {f.detector for f in findings} == {"baseline_comparison", "group_fairness"}


def test_a_new_model_is_refit_and_rescored(tmp_path: Path) -> None:
    result = _run(tmp_path, [SwapInPopularity])
    before = result.context
    assert before is not None
    (after,) = result.mitigated
    assert after.subject.name == "item_knn+swap_in_popularity"
    assert after.subject.adapter == "popularity"
    assert after.subject.fingerprint not in {
        before.subject.fingerprint,
        before.baselines["popularity"].fingerprint,
    }
    # the new model's scores are the popularity baseline's, user for user
    pd.testing.assert_series_equal(
        after.user_table["ndcg@10"],
        before.baseline_user_tables["popularity"]["ndcg@10"],
        check_names=False,
    )
    assert after.adapter is not None and after.adapter.name == "popularity"
    (info,) = result.report.provenance.mitigated
    assert info.adapter == "popularity"
    after_findings = [f for f in result.report.findings if f.mitigation is not None]
    assert {f.mitigation.changed[0] for f in after_findings if f.mitigation} == {"adapter"}


@pytest.mark.parametrize(("mitigator", "per_window"), [(FewerArtists, 2), (NewSampler, 1)])
def test_new_sampling_reruns_the_profile_stage(
    tmp_path: Path, mitigator: type[Mitigator], per_window: int
) -> None:
    result = _run(
        tmp_path,
        [mitigator],
        detectors=[{"name": "profile_fidelity"}],
        profiles={
            "enabled": True,
            "generators": [{"adapter": "template_writer"}],
            "max_users": 40,
            "cache": None,
        },
    )
    before = result.context
    assert before is not None and before.samples is not None
    (after,) = result.mitigated
    assert after.samples is not None
    assert before.samples.groupby(["user_id", "window"]).size().max() == 15
    assert after.samples.groupby(["user_id", "window"]).size().max() == per_window
    assert before.subject.profiles is not None and after.subject.profiles is not None
    # profiles were written again from the new samples (a user whose window held no more
    # than the new budget can keep the same prompt)
    same = set(after.subject.profiles["prompt_sha256"]) & set(
        before.subject.profiles["prompt_sha256"]
    )
    assert len(same) < 0.5 * len(after.subject.profiles)
    # the unmitigated subject's samples and profiles are untouched
    assert before.samples.groupby(["user_id", "window"]).size().max() == 15
    assert after.subject.fingerprint != before.subject.fingerprint
    after_findings = [f for f in result.report.findings if f.mitigation is not None]
    assert after_findings and all(f.detector == "profile_fidelity" for f in after_findings)
    if mitigator is FewerArtists:
        assert after.config.sampling.top_artists == 2
        assert before.config.sampling.top_artists == 5


def test_requirements_and_forbidden_settings_become_findings(tmp_path: Path) -> None:
    result = _run(tmp_path, [NeedsProfiles, ChangesTheSplit])
    by_plugin = {f.detector: f for f in result.report.findings if f.metric == "(all)"}
    assert by_plugin["needs_profiles"].status == "skipped"
    assert "needs generated profiles" in by_plugin["needs_profiles"].explanation
    assert by_plugin["changes_the_split"].status == "error"
    assert "split" in by_plugin["changes_the_split"].explanation
    assert result.mitigated == []
