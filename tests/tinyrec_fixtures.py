"""A tiny synthetic world and a TinyRec trained on it in seconds, for the adapter tests."""

from __future__ import annotations

from pathlib import Path

from audit_sdk.adapters.tinyrec import TinyRecSettings, TinyRecTrainingResult, train_tinyrec

from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world
from audit_sdk.data.tables import Dataset

TINY_SETTINGS = TinyRecSettings(
    n_embd=32,
    n_layer=1,
    n_head=2,
    n_positions=512,
    bpe_vocab_size=600,
    epochs=2,
    learning_rate=3e-3,
    rec_batch_size=32,
    profile_batch_size=16,
    profile_share=0.2,
    min_item_users=2,
    max_history=24,
    dropout=0.0,
)


def tiny_world(seed: int = 3) -> Dataset:
    return generate_world(
        SyntheticWorldParams(
            seed=seed,
            n_users=120,
            n_artists=30,
            mean_tracks_per_artist=4.0,
            mean_events_per_user=50.0,
        )
    )


def train_tiny_tinyrec(
    out_dir: Path, *, seed: int = 0, holdout: bool = True, dataset: Dataset | None = None
) -> TinyRecTrainingResult:
    return train_tinyrec(
        dataset if dataset is not None else tiny_world(),
        out_dir=out_dir,
        size="demo",
        seed=seed,
        holdout=holdout,
        settings=TINY_SETTINGS,
    )
