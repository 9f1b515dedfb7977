"""Reading a model's playlist answer: lines parsed into (title, artist), deduplicated, artist
names canonicalised and matched to the catalog.

As in "Verifying LLM-Driven Music Recommendation Systems" (Amazon Music, KDD 2025
LLM4ECommerce workshop, Sec. 3), answers are deduplicated, artist names canonicalised
(:func:`~audit_sdk.verification.catalog_attributes.canonical_name`) and each track checked for
availability in the catalog before it is evaluated. A line is split at the first ``" — "``,
``" – "``, ``" - "`` or ``" by "`` into title and artist (numbering and bullets stripped, as for
generated recommendations). A line is *grounded* when its title and artist name one catalog
track (or, in an artist-level catalog such as HetRec's, when either part names an artist);
a title whose catalog artist differs from the one written is *misattributed*, and counted
with the lines that match nothing as a hallucination. A repeat of an earlier line (same
canonical title and artist) is a duplicate and is not scored again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from audit_sdk.generative_recommendation import parse_recommendation_lines
from audit_sdk.verification.catalog_attributes import canonical_name

__all__ = ["AnswerReading", "CatalogMatcher", "split_line"]

_SEPARATORS = (" — ", " – ", " - ", " by ")


def split_line(line: str) -> tuple[str, str | None]:
    """``"Title — Artist"`` -> ("Title", "Artist"); a line without a separator has no artist."""
    for separator in _SEPARATORS:
        if separator in line:
            title, artist = line.split(separator, 1)
            if title.strip() and artist.strip():
                return title.strip().strip("\"'“”"), artist.strip()
    return line.strip().strip("\"'“”"), None


@dataclass(frozen=True)
class AnswerReading:
    """One answer, read: ``items`` are the grounded catalog items in answer order (unique)."""

    n_lines: int
    n_duplicates: int
    n_hallucinated: int
    n_misattributed: int
    items: tuple[str, ...]

    @property
    def n_unique(self) -> int:
        return self.n_lines - self.n_duplicates

    @property
    def duplicate_rate(self) -> float:
        return self.n_duplicates / self.n_lines if self.n_lines else float("nan")

    @property
    def hallucination_rate(self) -> float:
        return self.n_hallucinated / self.n_unique if self.n_unique else float("nan")


class CatalogMatcher:
    """Canonical (title, artist) and title -> item; a title shared by several items means
    the first in ``order`` (e.g. the most popular)."""

    def __init__(self, attrs: pd.DataFrame, order: pd.Index | None = None) -> None:
        ordered = attrs if order is None else attrs.reindex(order.intersection(attrs.index))
        titles = [canonical_name(t) for t in ordered["title"]]
        artists = ordered["artist_key"].tolist()
        ids = ordered.index.astype(str).tolist()
        self.artist_level = bool(titles == artists)
        self.by_pair: dict[tuple[str, str], str] = {}
        self.by_title: dict[str, str] = {}
        self.artists_of_title: dict[str, set[str]] = {}
        for item, title, artist in zip(ids, titles, artists, strict=True):
            self.by_pair.setdefault((title, artist), item)
            self.by_title.setdefault(title, item)
            self.artists_of_title.setdefault(title, set()).add(artist)
        self.by_artist: Mapping[str, str] = {a: i for (_, a), i in reversed(self.by_pair.items())}

    def match(self, title: str, artist: str | None) -> tuple[str | None, bool]:
        """(item or None, misattributed)."""
        title_key = canonical_name(title)
        artist_key = canonical_name(artist) if artist else None
        if self.artist_level:
            for key in (artist_key, title_key):
                if key and key in self.by_artist:
                    return self.by_artist[key], False
            return None, False
        if artist_key is None:
            return self.by_title.get(title_key), False
        item = self.by_pair.get((title_key, artist_key))
        if item is not None:
            return item, False
        return None, title_key in self.by_title

    def read(self, text: str) -> AnswerReading:
        lines = parse_recommendation_lines(text)
        seen: set[tuple[str, str]] = set()
        items: dict[str, None] = {}
        duplicates = hallucinated = misattributed = 0
        for line in lines:
            title, artist = split_line(line)
            key = (canonical_name(title), canonical_name(artist) if artist else "")
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            item, wrong_artist = self.match(title, artist)
            if item is None:
                hallucinated += 1
                misattributed += int(wrong_artist)
            elif item in items:
                duplicates += 1  # another spelling of a track already listed
            else:
                items[item] = None
        return AnswerReading(len(lines), duplicates, hallucinated, misattributed, tuple(items))
