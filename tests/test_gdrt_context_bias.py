"""GDRT's "done when" on the context-bias world, over three seeds.

In :mod:`audit_sdk.data.context_bias_world` hits are predictable from the task text alone and
niche artists only from the history; the training targets are mostly hits and the held-out
ones mostly niche. From the same TinyRec, with the same batches, steps and learning rate,
plain SFT and GDRT (online Group DRO, eta 0.01, K = 4 quantile groups of the relevance
without the history) are tuned; on the held-out items, for every seed:

* SFT's FAA auxiliary share is above GDRT's with non-overlapping 95% CIs;
* GDRT's NDCG@10 is above SFT's with the paired CI (users resampled) above zero.

Each seed trains three tiny models (~1 minute per seed on a shared two-core machine): slow.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("transformers")

from audit_sdk.adapters.tinyrec import TinyRecSettings, train_tinyrec
from audit_sdk.plugins.mitigators.gdrt_tuning import GDRTParams, run_gdrt

from audit_sdk.data.context_bias_world import (
    ContextBiasWorldParams,
    generate_context_bias_world,
)
from audit_sdk.splitting import holdout_split

BASE = TinyRecSettings(
    n_embd=32,
    n_layer=1,
    n_head=2,
    n_positions=256,
    bpe_vocab_size=400,
    epochs=6,
    learning_rate=3e-3,
    rec_batch_size=32,
    profile_batch_size=16,
    profile_share=0.0,
    min_item_users=2,
    max_history=24,
    dropout=0.0,
)
TUNING = {
    "update": "online",
    "eta": 0.01,
    "groups": 4,
    "examples_per_user": 8,
    "epochs": 3,
    "learning_rate": 3e-3,
    "baselines": ["sft"],
}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sft_leans_on_the_task_text_and_gdrt_ranks_better(tmp_path: Path, seed: int) -> None:
    world = generate_context_bias_world(ContextBiasWorldParams(seed=seed))
    split = holdout_split(world, test_items=5, seed=seed)
    base = tmp_path / "base"
    train_tinyrec(
        split.train, out_dir=base, holdout=False, settings=BASE, seed=seed, profile_windows=None
    )
    outcome = run_gdrt(
        base,
        train=split.train,
        test=split.test,
        users=split.users,
        params=GDRTParams(**TUNING, output_dir=str(tmp_path / "tuned")),
        seed=seed,
    )
    arms = outcome.comparison["arms"]
    sft, gdrt = arms["sft"]["aux_share"], arms["gdrt"]["aux_share"]
    assert sft["low"] > gdrt["high"], (sft, gdrt)
    paired = outcome.comparison["paired"]["gdrt - sft"]["ndcg@10"]
    assert paired["low"] > 0, paired
    # the groups separate the targets the task text predicts from those it does not
    means = [g["mean_r"] for g in outcome.groups]
    assert means == sorted(means) and means[-1] - means[0] > 1.0
