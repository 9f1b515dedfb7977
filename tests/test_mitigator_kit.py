"""The mitigator conformance check, and plugin-registered user features."""

from __future__ import annotations

import pandas as pd
import pytest

from audit_sdk import testing
from audit_sdk.features import UserFeatures
from audit_sdk.interfaces import (
    AuditContext,
    MitigationResult,
    Mitigator,
    SubjectOutputs,
    UserFeature,
)


@pytest.fixture(scope="module")
def context() -> AuditContext:
    return testing.make_context(n_users=300)


def test_the_built_in_mitigator_passes(context: AuditContext) -> None:
    mitigator = testing.make_host().get("mitigator", "calibrated_reranking").cls()
    result = testing.check_mitigator(mitigator, context)
    assert result.changes() == ["outputs"]


class _Sloppy(Mitigator):
    name = "sloppy"

    def mitigate(self, context: AuditContext) -> MitigationResult:
        recs = context.subject.recommendations
        assert recs is not None
        doubled = pd.concat([recs, recs.assign(rank=recs["rank"] + 100)])  # repeats and gaps
        rng = context.rng("no seed reuse")  # a fresh draw per call: not reproducible
        doubled = doubled.assign(score=rng.random(len(doubled)))
        outputs = SubjectOutputs(name="x", adapter="x", fingerprint="x", recommendations=doubled)
        return MitigationResult(
            summary="", outputs=outputs, settings={"groups": {"min_group_size": 2}}
        )


def test_a_sloppy_mitigator_fails_with_every_problem_named(context: AuditContext) -> None:
    with pytest.raises(AssertionError) as err:
        testing.check_mitigator(_Sloppy(), context)
    text = str(err.value)
    assert "empty summary" in text
    assert "repeat an item" in text
    assert "ranks are not 1, 2" in text
    assert "longer than k=10" in text
    assert "settings rejected" in text and "groups" in text


class _LongTail(UserFeature):
    name = "long_tail_share"
    description = "share of a user's plays on items outside the 20% most popular"

    def compute(self, features: UserFeatures) -> pd.Series:
        popularity = features.item_popularity
        tail = popularity < popularity.quantile(0.8)
        plays = features.plays
        total = plays.sum(axis=1).A1
        on_tail = plays[:, tail.to_numpy()].sum(axis=1).A1
        return pd.Series(on_tail / total, index=features.users)


def test_a_plugin_feature_is_read_by_name_from_every_context() -> None:
    host = testing.make_host()
    with testing.inline_plugin(host, _LongTail):
        context = testing.make_context(n_users=200, host=host)
        assert "long_tail_share" in context.features.names()
        values = context.features.get("long_tail_share")
        assert list(values.index) == list(context.users)
        assert values.between(0, 1).all()
        assert context.features.get("long_tail_share") is values  # computed once
    with pytest.raises(Exception, match="no user feature named 'no_such_feature'"):
        context.features.get("no_such_feature")
