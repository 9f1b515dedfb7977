"""The sampling-expansion policy: the budget rule against hand-computed values, bad parameters
named in the error, users without a GS-score counted and left alone, and both selectors
deterministic, with the baseline kept byte for byte for users the policy does not touch."""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from audit_sdk.plugins.mitigators.sampling_expansion import SamplingExpansion

from audit_sdk import testing
from audit_sdk.config import SamplingConfig, parse_config
from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world
from audit_sdk.data.tables import Dataset
from audit_sdk.errors import AuditSDKError, ConfigError
from audit_sdk.profile_pipeline import TwoStepSampler
from audit_sdk.profile_sampling_policies import (
    ExpandedSampler,
    ExpansionPolicy,
    Selector,
    _allocate,
    diverse_sample,
    expanded_budget,
    plan_budgets,
    two_step_expanded,
)
from audit_sdk.runner import AuditRunner
from audit_sdk.sampling import two_step_sample


@lru_cache(maxsize=1)
def _world() -> Dataset:
    return generate_world(SyntheticWorldParams(seed=3, n_users=120, n_artists=150))


@pytest.mark.parametrize(
    ("gs", "tau", "gamma", "expected"),
    [
        (0.3, 0.6, 1.0, 30),  # 15 * 2
        (0.5, 0.6, 1.0, 18),  # ceil(15 * 1.2)
        (0.1, 0.6, 1.0, 45),  # capped at n_max
        (0.0, 0.6, 1.0, 45),
        (0.45, 0.6, 2.0, 27),  # ceil(15 * (4/3)^2) = ceil(26.67)
    ],
)
def test_budget_rule(gs: float, tau: float, gamma: float, expected: int) -> None:
    assert expanded_budget(gs, tau, ExpansionPolicy(gamma=gamma)) == expected


def test_threshold_is_the_median_and_users_without_gs_are_left_alone() -> None:
    gs = pd.Series([0.2, 0.4, 0.6, 0.8, np.nan], index=["a", "b", "c", "d", "e"])
    plan = plan_budgets(gs, ["a", "b", "c", "d", "e", "f"], ExpansionPolicy())
    assert plan.tau == pytest.approx(0.5)
    assert plan.budgets == {"a": 38, "b": 19}  # ceil(15 * 2.5), ceil(15 * 1.25)
    assert plan.unchanged == 2 and plan.without_gs == ["e", "f"]
    (note,) = plan.notes()
    assert "2 users have no GS-score" in note and "keep the baseline sample" in note
    fixed = plan_budgets(gs, list(gs.index), ExpansionPolicy(threshold=0.7, fixed_n=30))
    assert fixed.budgets == {"a": 30, "b": 30, "c": 30}


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"n0": 15, "n_max": 10}, "n_max (10) is below n0 (15)"),
        ({"threshold": 1.5}, "threshold 1.5 is outside [0, 1]"),
        ({"threshold": -0.1}, "threshold -0.1 is outside [0, 1]"),
        ({"gamma": 0.0}, "gamma must be > 0"),
    ],
)
def test_bad_parameters_name_the_parameter(kwargs: dict[str, float], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        ExpansionPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("params", "named"), [({"n_max": 10}, "n_max"), ({"threshold": 2.0}, "threshold")]
)
def test_bad_parameters_in_an_audit_file_fail_at_planning(
    params: dict[str, float], named: str
) -> None:
    config = parse_config(
        {
            "dataset": {"params": {"n_users": 50}},
            "mitigators": [{"name": "sampling_expansion", "params": params}],
        }
    )
    with pytest.raises(AuditSDKError) as caught:
        AuditRunner(config, host=testing.make_host()).plan()
    message = str(caught.value)
    assert "sampling_expansion" in message and named in message


def test_two_step_expansion_extends_the_baseline_sample() -> None:
    world = _world()
    users = sorted(world.users.frame.index)[:30]
    budgets = {u: 15 + 3 * (i % 10) for i, u in enumerate(users)}
    expanded = two_step_expanded(world.interactions, world.catalog, budgets)
    sizes = expanded.groupby("user_id").size()
    assert (sizes <= pd.Series(budgets).reindex(sizes.index)).all()
    assert (sizes > 15).sum() > 10
    base = two_step_sample(world.interactions, world.catalog)
    base = base[base["user_id"].isin(users)].reset_index(drop=True)
    # the baseline (5 artists' top tracks) is the expanded sample's first pairs
    base_size = base.groupby("user_id").size()
    first = expanded[expanded["position"] <= expanded["user_id"].map(base_size)]
    first = first.sort_values(["user_id", "position"])
    pd.testing.assert_frame_equal(first.reset_index(drop=True), base)


def test_hamilton_allocation() -> None:
    assert _allocate(np.array([0.5, 0.3, 0.2]), np.array([99, 99, 99]), 10).tolist() == [5, 3, 2]
    # a full stratum gives its slots to the others; every stratum first gets one
    assert _allocate(np.array([0.5, 0.3, 0.2]), np.array([2, 99, 99]), 10).tolist() == [2, 5, 3]
    assert _allocate(np.array([0.9, 0.06, 0.04]), np.array([99, 99, 99]), 5).tolist() == [3, 1, 1]


def test_diverse_selection_spreads_over_genres_and_artists() -> None:
    world = _world()
    users = sorted(world.users.frame.index)[:40]
    budgets = dict.fromkeys(users, 30)
    chosen = diverse_sample(world.interactions, world.catalog, budgets, mmr_lambda=0.5)
    again = diverse_sample(world.interactions, world.catalog, budgets, mmr_lambda=0.5)
    pd.testing.assert_frame_equal(chosen, again)
    base = two_step_expanded(world.interactions, world.catalog, budgets)
    genre = world.catalog.frame["genres"].map(lambda g: g[0])
    spread_diverse = chosen.assign(g=chosen["item_id"].map(genre)).groupby("user_id")["g"]
    spread_base = base.assign(g=base["item_id"].map(genre)).groupby("user_id")["g"]
    assert spread_diverse.nunique().mean() > spread_base.nunique().mean()
    assert (chosen.groupby("user_id").size() <= 30).all()
    assert (
        chosen.groupby("user_id")["position"].apply(lambda p: list(p) == list(range(1, len(p) + 1)))
    ).all()


@pytest.mark.parametrize("selector", ["two_step", "diverse"])
def test_sampler_keeps_untouched_users_and_windows_byte_for_byte(selector: Selector) -> None:
    world = _world()
    settings = SamplingConfig(windows=[90, 365])
    users = sorted(world.users.frame.index)
    sampler = ExpandedSampler(
        dict.fromkeys(users[:50], 40), ExpansionPolicy(selector=selector), windows=["365d"]
    )
    base = TwoStepSampler().sample(world, settings)
    out = sampler.sample(world, settings)
    assert out.keys() == base.keys()
    pd.testing.assert_frame_equal(out["90d"], base["90d"])  # a window not expanded
    rest_out = out["365d"][~out["365d"]["user_id"].isin(users[:50])]
    rest_base = base["365d"][~base["365d"]["user_id"].isin(users[:50])]
    pd.testing.assert_frame_equal(rest_out.reset_index(drop=True), rest_base.reset_index(drop=True))
    assert out["365d"].dtypes.equals(base["365d"].dtypes)
    grown = out["365d"][out["365d"]["user_id"].isin(users[:50])].groupby("user_id").size()
    assert grown.max() == 40
    again = sampler.sample(world, settings)
    pd.testing.assert_frame_equal(again["365d"], out["365d"])
    assert sampler.describe()["selector"] == selector


def test_mitigator_contract_and_users_without_gs() -> None:
    context = testing.make_context(
        n_users=150,
        profiles={
            "enabled": True,
            "generators": [{"adapter": "template_writer"}],
            "max_users": 60,
            "cache": None,
        },
        sampling={"windows": [365]},
    )
    assert context.subject.profiles is not None
    profiled = sorted(context.subject.profiles["user_id"].astype(str).unique())
    gs = context.features.get("gs_score")
    assert isinstance(gs, pd.Series)
    table = context.user_table.copy()
    table["gs_score"] = gs.reindex(table.index.astype(str)).to_numpy()
    table.loc[table.index.isin(profiled[:7]), "gs_score"] = np.nan
    context.__dict__["user_table"] = table
    result = testing.check_mitigator(SamplingExpansion(), context)
    assert result.sampler is not None and result.changes() == ["sampler"]
    assert result.details["users_without_gs"] == 7
    assert "7 without a GS-score left as they were" in result.summary
    assert result.details["users_expanded"] + result.details["users_unchanged"] == 60 - 7
    budgets = result.sampler.budgets  # type: ignore[attr-defined]
    assert not set(budgets) & set(profiled[:7])
    assert result.name is None  # the default: <subject>+sampling_expansion
    # a policy and its diagnosis, or two selectors, in one audit get subjects of their own
    names = {
        SamplingExpansion(SamplingExpansion.Params(**p)).mitigate(context).name
        for p in ({"selector": "diverse"}, {"diagnosis_n": 30})
    }
    subject = context.subject.name
    assert names == {
        f"{subject}+sampling_expansion(diverse)",
        f"{subject}+sampling_expansion(n=30)",
    }
    with pytest.raises(ConfigError, match=re.escape("params.windows names '7d'")):
        SamplingExpansion(SamplingExpansion.Params(windows=["7d"])).mitigate(context)
