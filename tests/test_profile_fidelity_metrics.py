"""Profile fidelity metrics on hand-written profiles with known answers."""

from __future__ import annotations

import math

import pandas as pd

from audit_sdk.data.tables import Catalog
from audit_sdk.metrics.profile_fidelity import ArtistMatcher, profile_fidelity


def _catalog() -> Catalog:
    frame = pd.DataFrame(
        {
            "title": ["a1", "a2", "b1", "c1", "d1"],
            "artist": ["Mira Kallo", "Mira Kallo", "Velvet Harbor", "Love", "Nox"],
            "genres": [("jazz",), ("jazz",), ("hip-hop", "rap"), ("rock",), ("metal",)],
            "country": ["SE", "SE", "US", "GB", "NO"],
            "release_year": [1999, 2001, 2015, 1970, 2020],
        },
        index=pd.Index(["i1", "i2", "i3", "i4", "i5"], name="item_id"),
    )
    return Catalog(frame)


def test_matcher_rules() -> None:
    m = ArtistMatcher(["Mira Kallo", "Love", "Nox", "Velvet Harbor"])
    assert m.mentions("you love mira kallo and NOX") == {"Mira Kallo", "Nox"}
    assert m.mentions("Love is in the air") == set()  # common word, even capitalised
    assert m.mentions("lots of nox") == set()  # one-word names must be capitalised


def test_recall_and_hallucination() -> None:
    sample = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1"],
            "position": [1, 2, 3],
            "artist": ["Mira Kallo", "Mira Kallo", "Velvet Harbor"],
            "item_id": ["i1", "i2", "i3"],
            "title": ["a1", "a2", "b1"],
            "plays": [10.0, 5.0, 5.0],
        }
    )
    profiles = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1"],
            "window": ["30d", "30d", "30d"],
            "model": ["good", "half", "liar"],
            "text": [
                "Mostly jazz from Mira Kallo, with hip hop by Velvet Harbor and some rap.",
                "Jazz, all Mira Kallo.",
                "A metal fan: Nox on repeat, and Mira Kallo.",
            ],
        }
    )
    out = profile_fidelity(profiles, {"30d": sample}, _catalog()).set_index("model")
    # top genres by plays: jazz (15), then hip-hop (2.5) and rap (2.5)
    assert out.loc["good", "artist_recall"] == 1.0
    assert out.loc["good", "genre_recall"] == 1.0
    assert out.loc["good", "hallucination_rate"] == 0.0
    assert out.loc["half", "artist_recall"] == 0.5
    assert math.isclose(out.loc["half", "genre_recall"], 1 / 3)
    assert out.loc["liar", "hallucination_rate"] == 0.5
    assert out.loc["liar", "n_artist_mentions"] == 2
