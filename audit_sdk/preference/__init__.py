"""Profile optimisation (LettinGo, arXiv 2506.18309): explore many profiles per user, score
each on the downstream task, turn the scores into preference pairs and align the profile
writer with DPO (Rafailov et al., NeurIPS 2023).

* :mod:`.exploration`: hold the recent interactions apart, write N profiles per user;
* :mod:`.task_utility`: hit@k and NDCG@k of the held-out target per profile;
* :mod:`.preference_pairs`: chosen/rejected pairs above a margin, TRL-readable JSONL;
* :mod:`.dpo_loss`, :mod:`.dpo_training`: the DPO objective and a deterministic CPU trainer
  (LoRA through peft);
* :mod:`.paired_comparison`: before/after per user, with per-group gaps.

The ``profile_optimizer`` mitigator (a built-in plugin) runs them inside an audit.
"""

from __future__ import annotations

from audit_sdk.preference.dpo_loss import chosen_nll, dpo_loss, sequence_logprobs, token_logprobs
from audit_sdk.preference.dpo_training import (
    DPOSettings,
    DPOTrainingResult,
    LearningRateSchedule,
    UntrainableWriterError,
    train_dpo_writer,
)
from audit_sdk.preference.exploration import (
    TaskSplit,
    draw_seed,
    explore_profiles,
    hold_out_recent,
)
from audit_sdk.preference.paired_comparison import (
    GroupChange,
    MetricChange,
    change_table,
    paired_change,
)
from audit_sdk.preference.preference_pairs import (
    PreferencePair,
    make_preference_pairs,
    pairs_sha256,
    write_pairs_jsonl,
)
from audit_sdk.preference.task_utility import (
    Fusion,
    draw_task_candidates,
    score_with_encoder,
    score_with_model,
    task_query,
)

__all__ = [
    "DPOSettings",
    "DPOTrainingResult",
    "Fusion",
    "GroupChange",
    "LearningRateSchedule",
    "MetricChange",
    "PreferencePair",
    "TaskSplit",
    "UntrainableWriterError",
    "change_table",
    "chosen_nll",
    "dpo_loss",
    "draw_seed",
    "draw_task_candidates",
    "explore_profiles",
    "hold_out_recent",
    "make_preference_pairs",
    "paired_change",
    "pairs_sha256",
    "score_with_encoder",
    "score_with_model",
    "sequence_logprobs",
    "task_query",
    "token_logprobs",
    "train_dpo_writer",
    "write_pairs_jsonl",
]
