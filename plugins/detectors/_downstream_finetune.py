"""Optional fine-tuning of the downstream-utility bi-encoder on (profile, positive, negative)
triplets (Sguerra et al., RecSys 2025, Sec. 4.3, trained it on 100K such triplets).

Triplets (:func:`profile_triplets`): a profile, an item its user played in the *training*
split (never a held-out item, so the held-out evaluation stays honest), and a seeded random
item the user never played. Training (:func:`finetune_encoder`) is sentence-transformers'
``MultipleNegativesRankingLoss`` with the hard negative (van den Oord et al. 2018, InfoNCE;
Henderson et al. 2017, Eq. 3 with in-batch negatives) and AdamW, in a plain seeded loop:
the triplet order, torch's initial state and the batches are fixed by the seed, so the same
seed gives the same weights. The model is saved under
``<cache>/encoders/finetuned-<key>/``, the key hashing the base model's fingerprint, the
triplets and the training settings, and reused when the same fine-tuning is asked again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from audit_sdk.cache_paths import cache_dir
from audit_sdk.errors import AuditSDKError

from ._downstream_encoders import model_fingerprint

__all__ = ["FinetuneSettings", "Triplet", "finetune_encoder", "profile_triplets"]


@dataclass(frozen=True)
class Triplet:
    profile: str
    positive: str
    negative: str


@dataclass(frozen=True)
class FinetuneSettings:
    epochs: int = 1
    batch_size: int = 16
    learning_rate: float = 2e-5
    seed: int = 0


def profile_triplets(
    profiles: pd.DataFrame,
    *,
    train: pd.DataFrame,
    catalog_texts: pd.Series,
    size: int,
    rng: np.random.Generator,
    exclude: pd.DataFrame | None = None,
) -> list[Triplet]:
    """``size`` triplets drawn uniformly over (profile, training item) pairs: the profile's
    text, the text of an item its user played in ``train``, and of a random catalog item the
    user never played (in ``train`` nor in ``exclude``, e.g. the held-out split)."""
    items = catalog_texts.index
    seen = pd.concat([train[["user_id", "item_id"]], *([] if exclude is None else [exclude])])
    codes = items.get_indexer(seen["item_id"])
    seen = seen.assign(code=codes)[codes >= 0]
    by_user = {str(u): np.unique(g["code"].to_numpy()) for u, g in seen.groupby("user_id")}
    played = {
        str(u): np.unique(c[c >= 0])
        for u, c in train.assign(code=items.get_indexer(train["item_id"]))
        .groupby("user_id")["code"]
        .apply(np.asarray)
        .items()
    }
    texts = profiles["text"].fillna("").astype(str).to_numpy()
    users = profiles["user_id"].astype(str).to_numpy()
    rows = [r for r in range(len(profiles)) if len(played.get(users[r], ())) and texts[r]]
    if not rows:
        raise AuditSDKError(
            "downstream_utility fine-tuning: no profiled user has training interactions to "
            "draw positives from; set params.finetune_triplets: 0"
        )
    weights = np.array([len(played[users[r]]) for r in rows], dtype=float)
    chosen = rng.choice(len(rows), size=size, p=weights / weights.sum())
    item_texts = catalog_texts.to_numpy()
    triplets = []
    for pick in chosen:
        row = rows[pick]
        user = users[row]
        positive = int(rng.choice(played[user]))
        negative = int(rng.integers(len(items)))
        while negative in set(by_user[user].tolist()) and len(by_user[user]) < len(items):
            negative = int(rng.integers(len(items)))
        triplets.append(Triplet(texts[row], item_texts[positive], item_texts[negative]))
    return triplets


def _key(base: Path, triplets: list[Triplet], settings: FinetuneSettings) -> str:
    digest = hashlib.sha256(model_fingerprint(base).encode())
    digest.update(json.dumps(settings.__dict__, sort_keys=True).encode())
    for t in triplets:
        digest.update(b"\0".join(s.encode() for s in (t.profile, t.positive, t.negative)))
        digest.update(b"\1")
    return digest.hexdigest()[:24]


def finetune_encoder(
    base: str | Path, triplets: list[Triplet], *, settings: FinetuneSettings | None = None
) -> Path:
    """The directory of ``base`` fine-tuned on ``triplets`` (trained once, then reused)."""
    settings = settings or FinetuneSettings()
    base = Path(base)
    out = cache_dir() / "encoders" / f"finetuned-{_key(base, triplets, settings)}"
    if (out / "modules.json").is_file():
        return out
    try:
        import torch
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.losses import (
            MultipleNegativesRankingLoss,
        )
    except ImportError as error:
        raise AuditSDKError(
            "fine-tuning the encoder needs sentence-transformers and torch: pip install "
            "'audit-sdk[embed,llm]'"
        ) from error
    from audit_sdk.transformers_support import offline, quiet_transformers

    offline()
    torch.manual_seed(settings.seed)
    with quiet_transformers():
        model = SentenceTransformer(str(base), device="cpu", local_files_only=True)
    loss = MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate)
    order_rng = np.random.default_rng(settings.seed)
    model.train()
    for _ in range(settings.epochs):
        order = order_rng.permutation(len(triplets))
        for start in range(0, len(order), settings.batch_size):
            batch = [triplets[i] for i in order[start : start + settings.batch_size]]
            features = [
                model.preprocess([getattr(t, part) for t in batch])
                for part in ("profile", "positive", "negative")
            ]
            value = loss(features, torch.empty(0))
            optimizer.zero_grad()
            value.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
    model.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        with warnings.catch_warnings(), quiet_transformers():
            warnings.simplefilter("ignore")  # model-card notices
            model.save(str(temporary), create_model_card=False)
        with contextlib.suppress(OSError):
            os.replace(temporary, out)  # another process may have saved the same model first
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return out
