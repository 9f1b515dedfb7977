"""TinyRec's sizes: the architecture and the fixed training schedule of each.

A size trains for ``epochs`` passes over its data, a fixed number of optimizer steps, so
the same data, seed and settings give the same weights on any load (see
:mod:`.training_loop`). ``demo`` is sized so that the first ``audit-sdk demo`` on a fresh
two-core machine trains it in about a minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["DEFAULT_TRAINING_THREADS", "SIZES", "TRAINING_RECIPE", "TinyRecSettings", "TinyRecSize"]

TinyRecSize = Literal["demo", "full"]

# Part of the cache key of trained models: bump when the training recipe changes what a seed
# produces (schedule, data order, initialisation), even if the files' format does not change.
TRAINING_RECIPE = 2

# Torch CPU threads while training. Fixed, not the machine's core count, because a float
# reduction split over a different number of threads sums in a different order and so gives
# different bits. One thread is also the fastest choice for models this small on a shared
# machine (see adapters.local_causal_lm.SMALL_MODEL_PARAMETERS).
DEFAULT_TRAINING_THREADS = 1


@dataclass(frozen=True)
class TinyRecSettings:
    """Architecture and training schedule of one TinyRec size."""

    n_embd: int
    n_layer: int
    n_head: int
    n_positions: int
    bpe_vocab_size: int
    epochs: int
    learning_rate: float
    rec_batch_size: int
    profile_batch_size: int
    profile_share: float  # profile examples per epoch, as a share of the users
    min_item_users: int
    max_history: int
    dropout: float
    item_init: Literal["svd", "random"] = "svd"


SIZES: dict[str, TinyRecSettings] = {
    "demo": TinyRecSettings(
        n_embd=96,
        n_layer=2,
        n_head=4,
        n_positions=1024,
        bpe_vocab_size=1500,
        epochs=3,  # 321 steps on the demo world: ~60 s of one core
        learning_rate=3e-3,
        rec_batch_size=32,
        profile_batch_size=16,
        profile_share=0.35,
        min_item_users=3,
        max_history=48,
        dropout=0.0,
    ),
    "full": TinyRecSettings(
        n_embd=128,
        n_layer=2,
        n_head=4,
        n_positions=1024,
        bpe_vocab_size=2000,
        epochs=10,
        learning_rate=3e-3,
        rec_batch_size=32,
        profile_batch_size=16,
        profile_share=0.35,
        min_item_users=3,
        max_history=64,
        dropout=0.0,
    ),
}
