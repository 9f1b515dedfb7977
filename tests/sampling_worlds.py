"""Profile writers and a text encoder for the sampling-expansion tests (real functions that the
callable adapter imports by name).

* :func:`write_genre_mix` summarises the whole sample faithfully: every genre of the sample
  with its share of plays ("rock (40%), jazz (20%) ..."), and the three most played artists.
  Its generalists' profiles are worse only because 15 pairs miss their genres.
* :func:`write_top_genres` cannot summarise broad tastes: it names only the two most played
  genres of the sample, whatever the sample holds.
* :func:`embed` is a bag-of-genres encoder: a genre named with a share weighs that share, else
  1; item texts (``title by artist (genres; country; year)``) weigh their genres equally. A
  small deterministic hash component breaks ties, so equal scores never favour the held-out
  items that the utility's candidate list puts first.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import pandas as pd

from audit_sdk.data.synthetic_world import DEFAULT_GENRES
from audit_sdk.data.tables import Catalog, Dataset, Interactions, Users
from audit_sdk.interfaces import DatasetLoader, PluginParams
from audit_sdk.profile_prompts import parse_profile_pairs

_SHARE = re.compile(
    "("
    + "|".join(re.escape(g) for g in sorted(DEFAULT_GENRES, key=len, reverse=True))
    + r") \((\d+)%\)"
)


def _genre_weights(prompt: str) -> tuple[list[tuple[str, float]], list[str]]:
    weights: dict[str, float] = defaultdict(float)
    artists: dict[str, float] = defaultdict(float)
    for pair in parse_profile_pairs(prompt):
        for genre in pair.genres:
            weights[genre] += pair.plays / len(pair.genres)
        artists[pair.artist] += pair.plays
    total = sum(weights.values()) or 1.0
    ranked = sorted(((g, w / total) for g, w in weights.items()), key=lambda kv: (-kv[1], kv[0]))
    top = [a for a, _ in sorted(artists.items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
    return ranked, top


def write_genre_mix(prompts: list[str]) -> list[str]:
    out = []
    for prompt in prompts:
        ranked, artists = _genre_weights(prompt)
        mix = ", ".join(f"{g} ({max(1, round(100 * s))}%)" for g, s in ranked)
        out.append(f"This listener plays {mix}. Favourite artists: {', '.join(artists)}.")
    return out


def write_top_genres(prompts: list[str]) -> list[str]:
    out = []
    for prompt in prompts:
        ranked, artists = _genre_weights(prompt)
        named = " and ".join(g for g, _ in ranked[:2])
        out.append(f"This listener plays {named}. Favourite artists: {', '.join(artists)}.")
    return out


def embed(texts: Sequence[str]) -> np.ndarray:
    genres = list(DEFAULT_GENRES)
    vectors = np.zeros((len(texts), len(genres) + 8))
    for i, text in enumerate(texts):
        head = text.rsplit(" (", 1)
        is_item = len(head) == 2 and text.endswith(")") and ";" in head[1]
        if is_item:
            named = head[1].split(";")[0].split(", ")
            for j, genre in enumerate(genres):
                vectors[i, j] = float(genre in named)
            # ties among an item's equals break by the item alone, the same for every profile
            digest = hashlib.sha256(text.encode()).digest()
            vectors[i, len(genres) :] = np.frombuffer(digest[:8], dtype=np.uint8) / 255.0 * 1e-3
            continue
        shares = {g: float(s) for g, s in _SHARE.findall(text)}
        lowered = f" {text.lower()} "
        for j, genre in enumerate(genres):
            if shares:
                vectors[i, j] = shares.get(genre, 0.0) / 100.0
            else:
                vectors[i, j] = float(f" {genre} " in lowered or f" {genre}." in lowered)
        vectors[i, len(genres) :] = 1e-3
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def write_dominant_genres(prompts: list[str]) -> list[str]:
    """Cannot summarise broad tastes: names only the genres holding at least 30% of the
    sample's plays (at least the first), however many more the sample holds."""
    out = []
    for prompt in prompts:
        ranked, artists = _genre_weights(prompt)
        named = " and ".join(g for i, (g, s) in enumerate(ranked) if i == 0 or s >= 0.3)
        out.append(f"This listener plays {named}. Favourite artists: {', '.join(artists)}.")
    return out


# -- a world where the fixed sample misses generalists' genres --------------------------------
N_GENRES = 12
ARTISTS_PER_GENRE = 8
TRACKS_PER_ARTIST = 4


def breadth_world(seed: int, n_users: int = 200) -> Dataset:
    """Specialists (half the users) play 8 artists of one genre. Generalists play a main genre
    heavily (5 artists x 3 tracks, ~10 plays a track: the whole 15-pair two-step sample) and
    4 side genres lightly (6 artists a genre, one track at ~4 plays each, more than half of
    their distinct items), so the fixed sample misses every side genre while their held-out
    items fall in them as often as not."""
    rng = np.random.default_rng([seed, 1313])
    genres = list(DEFAULT_GENRES[:N_GENRES])
    rows = []
    for g, genre in enumerate(genres):
        for a in range(ARTISTS_PER_GENRE):
            for t in range(TRACKS_PER_ARTIST):
                rows.append(
                    {
                        "item_id": f"g{g:02d}a{a}t{t}",
                        "title": f"Track {t} of {genre.title()} Artist {a}",
                        "artist": f"{genre.title()} Artist {a}",
                        "genres": (genre,),
                        "country": "US",
                        "release_year": 2000 + a,
                    }
                )
    catalog = pd.DataFrame(rows).set_index("item_id")
    events = []
    users = [f"u{u:04d}" for u in range(n_users)]
    for u, user in enumerate(users):
        main = int(rng.integers(N_GENRES))
        if u % 2 == 0:  # specialist
            for a in rng.choice(ARTISTS_PER_GENRE, size=8, replace=False):
                for t in rng.choice(TRACKS_PER_ARTIST, size=3, replace=False):
                    events.append((user, f"g{main:02d}a{a}t{t}", float(rng.integers(2, 12))))
            continue
        for a in rng.choice(ARTISTS_PER_GENRE, size=5, replace=False):
            for t in rng.choice(TRACKS_PER_ARTIST, size=3, replace=False):
                events.append((user, f"g{main:02d}a{a}t{t}", float(rng.integers(8, 13))))
        others = [g for g in range(N_GENRES) if g != main]
        for side in rng.choice(others, size=4, replace=False):
            for a in rng.choice(ARTISTS_PER_GENRE, size=6, replace=False):
                t = int(rng.integers(TRACKS_PER_ARTIST))
                events.append((user, f"g{side:02d}a{a}t{t}", float(rng.integers(3, 6))))
    interactions = pd.DataFrame(events, columns=["user_id", "item_id", "plays"])
    people = pd.DataFrame(
        {"age": rng.integers(18, 70, size=n_users), "country": "US"},
        index=pd.Index(users, name="user_id"),
    )
    return Dataset(
        name=f"breadth-world-{seed}",
        interactions=Interactions(interactions),
        catalog=Catalog(catalog),
        users=Users(people),
    )


class BreadthWorldParams(PluginParams):
    seed: int = 0
    n_users: int = 200


class BreadthWorldLoader(DatasetLoader):
    name = "breadth_world"
    Params = BreadthWorldParams

    def load(self) -> Dataset:
        params: BreadthWorldParams = self.params  # type: ignore[assignment]
        return breadth_world(params.seed, params.n_users)


PROMPTS_SENT: list[int] = []
"""How many prompts each call of :func:`write_genre_mix_counted` received."""


def write_genre_mix_counted(prompts: list[str]) -> list[str]:
    """:func:`write_genre_mix`, recording the number of prompts it is asked to write."""
    PROMPTS_SENT.append(len(prompts))
    return write_genre_mix(prompts)
