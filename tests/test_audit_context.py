"""The audit context: frozen, picklable, one shape for subject and baselines, shared features,
services (generation, models by role) that survive pickling."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from audit_sdk.plugins.detectors._causal_treatments import exposure_from_history

from audit_sdk import testing
from audit_sdk.errors import ConfigError
from audit_sdk.generation_cache import GenerationCache
from audit_sdk.interfaces import AuditContext, GenerationParams, GeneratorAdapter
from audit_sdk.services import GenerationService


@pytest.fixture(scope="module")
def context() -> AuditContext:
    return testing.make_context(n_users=300, models={"embedder": {"adapter": "random"}})


def _findings(context: AuditContext) -> list[dict[str, object]]:
    host = testing.make_host()
    detector = host.get("detector", "group_fairness").cls()
    return [f.model_dump(exclude={"duration_s"}) for f in detector.detect(context)]


def test_the_context_is_frozen_and_reads_settings_from_the_config(context: AuditContext) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.config = context.config  # type: ignore[misc]
    assert context.k == context.config.subject.k
    assert context.seed == context.config.seed
    assert context.bootstrap.n_resamples == context.config.stats.bootstrap_resamples
    assert context.min_group_size == context.config.groups.min_group_size
    # subject and baselines in one shape
    assert context.subject_run.metric_columns == ("ndcg@10", "recall@10")
    assert set(context.baseline_runs) == {"popularity"}
    assert list(context.baseline_runs["popularity"].scores.index) == list(context.users)


def test_the_context_pickles_and_gives_the_same_findings(context: AuditContext) -> None:
    clone = pickle.loads(pickle.dumps(context))
    assert _findings(clone) == _findings(context)
    # the subject's live model is re-created (and refitted) on the other side
    assert context.adapter is not None
    adapter = clone.adapter
    assert adapter is not None and adapter is not context.adapter
    users = list(context.users[:20])
    pd.testing.assert_frame_equal(
        adapter.recommend(users, k=5).reset_index(drop=True),
        context.adapter.recommend(users, k=5).reset_index(drop=True),
    )
    assert clone.models.get("embedder").name == "random"


def test_auxiliary_models_by_role(context: AuditContext) -> None:
    assert context.models.roles() == ["embedder"]
    assert context.models.get("embedder") is context.models.get("embedder")
    with pytest.raises(ConfigError, match=r"no model for role 'scorer'.*models:"):
        context.models.get("scorer")


def test_shared_genre_shares_have_one_definition(context: AuditContext) -> None:
    shares = context.features.genre_shares
    assert list(shares.index) == list(context.users)
    sums = shares.sum(axis=1)
    assert np.allclose(sums[sums > 0], 1.0)
    # the causal detector's exposure (written independently, with pandas) agrees
    frame = context.train.interactions.frame
    frame = frame[frame["user_id"].isin(context.users)]
    reference = exposure_from_history(frame, context.train.catalog.frame, "genre")
    reference = reference.reindex(index=shares.index, columns=shares.columns, fill_value=0.0)
    np.testing.assert_allclose(shares.to_numpy(), reference.to_numpy(), atol=1e-12)
    entropy = context.features.genre_entropy
    assert (entropy >= 0).all() and entropy.max() <= np.log(shares.shape[1]) + 1e-12
    assert context.features.activity_events.sum() == len(frame)


class _Counting(GeneratorAdapter):
    name = "counting"
    capabilities = frozenset({"generate"})

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def generate(self, prompts: list[str], *, params: GenerationParams) -> list[str]:  # type: ignore[override]
        self.calls.append(list(prompts))
        if any("boom" in p for p in prompts):
            raise RuntimeError("model fell over")
        return [p.upper() for p in prompts]


def test_generation_service_dedups_caches_and_records_failures(tmp_path: Path) -> None:
    adapter = _Counting()
    params = GenerationParams(seed=1)
    with GenerationCache(tmp_path / "cache.sqlite") as cache:
        service = GenerationService(cache=cache, batch_size=2)
        first = service.generate(adapter, ["a", "b", "a", "boom"], params=params)
        assert [r.text for r in first] == ["A", "B", "A", None]
        assert first[3].error is not None and "model fell over" in first[3].error
        assert sum(len(c) for c in adapter.calls) == 3  # "a" once, then "b"; "boom" alone
        again = service.generate(adapter, ["b", "a"], params=params)
        assert [r.text for r in again] == ["B", "A"] and all(r.cached for r in again)
        assert sum(len(c) for c in adapter.calls) == 3  # served from the cache
        # the service pickles without its open connection and reopens the same file
        clone = pickle.loads(pickle.dumps(service))
        assert clone.cache is not None and clone.cache.path == cache.path
        assert [r.cached for r in clone.generate(adapter, ["a"], params=params)] == [True]
        clone.close()
