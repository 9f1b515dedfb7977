"""Preference pairs from scored profiles: per user, a better and a worse profile of the same
prompt, kept only when their downstream utilities differ by at least a margin (LettinGo,
arXiv 2506.18309, Sec. 3.3: the highest- and lowest-scoring profiles of a user form a pair).

Exported as JSON lines in the ``prompt`` / ``chosen`` / ``rejected`` form that TRL's
``DPOTrainer`` reads (``datasets.load_dataset("json", data_files=...)``), so a team can train
a large writer on its own hardware; the utilities ride along as extra fields.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from audit_sdk.atomic_io import atomic_write_text

__all__ = ["PreferencePair", "make_preference_pairs", "pairs_sha256", "write_pairs_jsonl"]


@dataclass(frozen=True)
class PreferencePair:
    user_id: str
    prompt: str
    chosen: str
    rejected: str
    chosen_utility: float
    rejected_utility: float

    @property
    def margin(self) -> float:
        return self.chosen_utility - self.rejected_utility


def make_preference_pairs(
    scored: pd.DataFrame,
    *,
    utility: str = "ndcg@10",
    min_margin: float = 0.1,
    pairs_per_user: int = 1,
) -> list[PreferencePair]:
    """Pairs from ``scored`` (columns ``user_id, prompt, text`` and ``utility``).

    Per user and prompt, distinct profiles (a text written twice, as a deterministic writer
    does, counts once, with its first utility) are ordered by utility (ties by their order in
    ``scored``); the i-th best is paired with the i-th worst for i < ``pairs_per_user``, while
    the best beats the worst by at least ``min_margin``. Rows without text or utility take
    no part. Users come in the order of ``scored``.
    """
    if min_margin < 0:
        raise ValueError("min_margin must be >= 0")
    if pairs_per_user < 1:
        raise ValueError("pairs_per_user must be >= 1")
    missing = {"user_id", "prompt", "text", utility} - set(scored.columns)
    if missing:
        raise ValueError(f"scored profiles lack the column(s) {', '.join(sorted(missing))}")
    usable = scored[scored["text"].notna() & scored[utility].notna()]
    usable = usable[usable["text"].astype(str).str.strip() != ""]
    pairs: list[PreferencePair] = []
    for (user, prompt), part in usable.groupby(["user_id", "prompt"], sort=False):
        part = part.drop_duplicates("text")
        values = part[utility].to_numpy(dtype=float)
        texts = part["text"].astype(str).to_numpy()
        order = np.argsort(-values, kind="stable")
        for i in range(min(pairs_per_user, len(order) // 2)):
            best, worst = order[i], order[len(order) - 1 - i]
            if values[best] - values[worst] < min_margin:
                break
            pairs.append(
                PreferencePair(
                    user_id=str(user),
                    prompt=str(prompt),
                    chosen=str(texts[best]),
                    rejected=str(texts[worst]),
                    chosen_utility=float(values[best]),
                    rejected_utility=float(values[worst]),
                )
            )
    return pairs


def _lines(pairs: Iterable[PreferencePair]) -> list[str]:
    return [json.dumps(asdict(p), ensure_ascii=False, sort_keys=True) for p in pairs]


def write_pairs_jsonl(pairs: Sequence[PreferencePair], path: str | Path) -> Path:
    """One JSON object per line: ``prompt``, ``chosen``, ``rejected`` (TRL's preference
    format), plus ``user_id``, ``chosen_utility``, ``rejected_utility``; written atomically."""
    text = "".join(line + "\n" for line in _lines(pairs))
    return atomic_write_text(Path(path), text)


def pairs_sha256(pairs: Sequence[PreferencePair]) -> str:
    """A digest of the pairs' content and order (part of the trained writer's key)."""
    digest = hashlib.sha256()
    for line in _lines(pairs):
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()
