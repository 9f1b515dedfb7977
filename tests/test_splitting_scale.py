"""The code-based held-out split picks, per user, the items a direct reading of the rule picks."""

from __future__ import annotations

import pytest

from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world
from audit_sdk.splitting import holdout_split


@pytest.mark.parametrize("strategy", ["time", "random"])
def test_held_out_items_follow_the_rule_per_user(strategy: str) -> None:
    world = generate_world(SyntheticWorldParams(seed=2, n_users=120, n_artists=40))
    split = holdout_split(world, test_items=3, min_train_items=5, strategy=strategy, seed=4)
    frame = world.interactions.frame
    test = split.test.interactions.frame
    assert len(test) + len(split.train.interactions.frame) == len(frame)
    for user, events in frame.groupby("user_id"):
        held = set(test.loc[test["user_id"] == user, "item_id"])
        items = events.groupby("item_id")["timestamp"].min()
        if len(items) - 3 < 5:
            assert not held
            continue
        assert len(held) == 3
        if strategy == "time":
            latest = items.reset_index().sort_values(
                ["timestamp", "item_id"], ascending=[False, True]
            )
            assert held == set(latest["item_id"].head(3))
        # every event of a held-out item is held out, and no other
        assert (test["user_id"] == user).sum() == events["item_id"].isin(held).sum()
