"""How faithful is a generated taste profile to the listening it summarises?

Per profile (one user, one window, one generator), against the two-step sample it was
written from:

* ``artist_recall``: share of the sample's distinct artists that the profile names;
* ``genre_recall``: share of the sample's top genres (by plays, up to ``top_genres``) that the
  profile names;
* ``hallucination_rate``: among the catalog artists the profile names, the share the user did
  not play in that window (NaN when it names none), the profile counterpart of a recommender
  naming items that do not exist (cf. the hallucination analysis of LLM recommenders in
  Sguerra et al., RecSys 2025, arXiv 2507.16708, Sec. 5).

Mentions are found by exact name on word boundaries, case-insensitively for names of two or
more words; a one-word name counts only when written capitalised and not in a small list of
common words, so "I love rock" does not mention an artist called "Love".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from audit_sdk.data.tables import Catalog

__all__ = ["FIDELITY_COLUMNS", "ArtistMatcher", "profile_fidelity"]

FIDELITY_COLUMNS = ("artist_recall", "genre_recall", "hallucination_rate", "n_artist_mentions")

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
_COMMON = frozenset(
    (
        "a an and are as at be but by for from has have he her his i if in into is it its me my "
        "no not of on or our she so that the their them they this to up us was we were what when "
        "who will with you your love air yes low girls live life home time music band song songs "
        "sound sounds rock pop jazz metal soul blues folk house country punk rap indie classical "
        "electronic dance world new old young best more most very"
    ).split()
)
_MAX_WORDS = 6


def _normalize(text: str) -> str:
    return " ".join(m.group().lower() for m in _WORD.finditer(text))


class ArtistMatcher:
    """Finds catalog artist names in free text (see the module docstring for the rules)."""

    def __init__(self, artists: Iterable[str]) -> None:
        self.multi: dict[str, str] = {}
        self.single: dict[str, str] = {}
        for name in artists:
            if not isinstance(name, str) or not name.strip():
                continue
            norm = _normalize(name)
            words = norm.split()
            if not words or len(words) > _MAX_WORDS:
                continue
            if len(words) == 1:
                if norm in _COMMON or len(norm) < 2:
                    continue
                self.single.setdefault(norm, name)
            else:
                self.multi.setdefault(norm, name)

    def mentions(self, text: str) -> set[str]:
        """Catalog artist names mentioned in ``text``."""
        tokens = [(m.group(), m.group().lower()) for m in _WORD.finditer(text)]
        found: set[str] = set()
        lowered = [t[1] for t in tokens]
        for n in range(_MAX_WORDS, 1, -1):
            for i in range(len(lowered) - n + 1):
                name = self.multi.get(" ".join(lowered[i : i + n]))
                if name is not None:
                    found.add(name)
        for raw, low in tokens:
            name = self.single.get(low)
            if name is not None and raw[:1].isupper():
                found.add(name)
        return found


def _genre_mentioned(genre: str, normalized_text: str) -> bool:
    variants = {_normalize(genre), _normalize(genre).replace(" ", "")}
    padded = f" {normalized_text} "
    return any(v and f" {v} " in padded for v in variants)


def profile_fidelity(
    profiles: pd.DataFrame,
    samples: Mapping[str, pd.DataFrame],
    catalog: Catalog,
    *,
    played_artists: Mapping[str, pd.DataFrame] | None = None,
    top_genres: int = 3,
) -> pd.DataFrame:
    """``profiles`` with the fidelity columns added (NaN for rows without text).

    :param samples: the two-step sample per window label (columns user_id, artist, item_id,
        plays), as given to the profile prompts.
    :param played_artists: per window, the (user_id, artist) pairs the user played in it; a
        mentioned artist outside that set is a hallucination. Default: the sample's artists.
    """
    out = profiles.copy()
    for column in FIDELITY_COLUMNS:
        out[column] = np.nan
    if out.empty:
        return out
    matcher = ArtistMatcher(catalog.frame["artist"].dropna().unique())
    genres = catalog.frame["genres"]
    for window, sample in samples.items():
        rows = out.index[out["window"] == window]
        if len(rows) == 0 or sample.empty:
            continue
        by_user = dict(list(sample.groupby("user_id", sort=False)))
        allowed: dict[str, set[str]] = {}
        source = (played_artists or {}).get(window)
        if source is None:
            source = sample[["user_id", "artist"]]
        for user, part in source.groupby("user_id", sort=False):
            allowed[str(user)] = {_normalize(a) for a in part["artist"].dropna()}
        for idx in rows:
            text = out.at[idx, "text"]
            user = out.at[idx, "user_id"]
            part = by_user.get(user)
            if not isinstance(text, str) or not text.strip() or part is None:
                continue
            normalized = _normalize(text)
            mentioned = matcher.mentions(text)
            sample_artists = {_normalize(a) for a in part["artist"].dropna()}
            named = {_normalize(a) for a in mentioned}
            out.at[idx, "artist_recall"] = len(sample_artists & named) / max(len(sample_artists), 1)
            weights: dict[str, float] = {}
            for item_id, plays in zip(part["item_id"], part["plays"], strict=True):
                item_genres = genres.get(item_id, ()) or ()
                for genre in item_genres:
                    weights[genre] = weights.get(genre, 0.0) + float(plays) / len(item_genres)
            top = sorted(weights, key=lambda g: (-weights[g], g))[:top_genres]
            if top:
                hits = sum(_genre_mentioned(g, normalized) for g in top)
                out.at[idx, "genre_recall"] = hits / len(top)
            out.at[idx, "n_artist_mentions"] = len(named)
            if named:
                ok = allowed.get(str(user), sample_artists)
                out.at[idx, "hallucination_rate"] = len(named - ok) / len(named)
    return out
