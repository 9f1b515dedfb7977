"""Test sets for the intrinsic embedding tests, built from a catalog's metadata or read from a
user's YAML/JSON file.

Tests of "Verifying LLM-Driven Music Recommendation Systems" (Amazon Music, KDD 2025
LLM4ECommerce workshop, Sec. 4): era consistency (eq. 1), analogies (eq. 2), subgenre
clustering (eq. 3) and theme retrieval with constraint adherence (eq. 4). From the catalog:

* **eras**: up to ``max_per_group`` items of every era (decade) with at least
  ``min_per_group`` items;
* **analogies**: ``(g1, e1) : (g1, e2) :: (g2, e1) : (g2, e2)`` over genre x era cells (genre
  x country where the catalog has no eras), each cell the items it holds;
* **subgenres**: genre hierarchies read off the tags (``alternative rock`` and ``hard rock``
  under ``rock``, ``k-pop`` under ``pop``: a genre whose last word is another genre); where
  the tags give none, the primary genres as one flat set of clusters (the ``top_values``
  largest parents, each with its ``top_values`` largest subgenres);
* **themes**: "{genre} music from the {era}", "{genre} music from {country}", "music from
  the {era}, no {genre}", each with its constraints and the items that satisfy them.

A user file (YAML or JSON) names artists (canonical names, :func:`canonical_name`) or item
ids; every section is optional::

    eras:                       # era -> artists
      1990s: [Nirvana, Pearl Jam, Soundgarden]
      1960s: [The Beatles, The Rolling Stones, The Doors]
    analogies:                  # a : b :: c : d
      - [Nirvana, Pearl Jam, The Beatles, The Rolling Stones]
    subgenres:                  # parent -> subgenre -> artists
      rock:
        grunge: [Nirvana, Soundgarden]
        britpop: [Oasis, Blur]
    themes:
      - text: "90s grunge"
        constraints: ["era=1990s", "genre=grunge"]
        members: [Nirvana, Soundgarden]     # optional: default, the items the constraints hold for

A name that is neither an artist nor an item of the catalog is a
:class:`VerificationInputError` naming the file, section and the closest catalog names.
"""

from __future__ import annotations

import difflib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit_sdk.config_files import load_yaml_document, read_document_text
from audit_sdk.verification.catalog_attributes import (
    Constraint,
    VerificationInputError,
    canonical_name,
    parse_constraint,
    satisfies_all,
)

__all__ = [
    "Analogy",
    "Theme",
    "VerificationSuite",
    "load_suite",
    "suite_from_catalog",
]


@dataclass(frozen=True)
class Analogy:
    """``a : b :: c : d``, each a named group of item ids."""

    names: tuple[str, str, str, str]


@dataclass(frozen=True)
class Theme:
    text: str
    constraints: tuple[Constraint, ...]
    members: tuple[str, ...]


@dataclass(frozen=True)
class VerificationSuite:
    """Item groups per test; ``skipped`` says why a test has no set."""

    eras: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    entities: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    analogies: tuple[Analogy, ...] = ()
    subgenres: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    themes: tuple[Theme, ...] = ()
    pool: tuple[str, ...] = ()
    """items that theme retrieval ranks (every item of the suite, plus a random sample)"""
    skipped: Mapping[str, str] = field(default_factory=dict)
    source: str = "catalog"

    def items(self) -> list[str]:
        """Every item the suite embeds, once."""
        seen: dict[str, None] = {}
        groups: list[Sequence[str]] = [*self.eras.values(), *self.entities.values()]
        groups += [m for subs in self.subgenres.values() for m in subs.values()]
        groups += [t.members for t in self.themes]
        groups.append(self.pool)
        for group in groups:
            seen.update(dict.fromkeys(group))
        return list(seen)


def _sample(ids: Sequence[str], size: int, rng: np.random.Generator) -> tuple[str, ...]:
    ids = list(ids)
    if len(ids) <= size:
        return tuple(ids)
    return tuple(ids[i] for i in np.sort(rng.choice(len(ids), size=size, replace=False)))


def _hierarchy(attrs: pd.DataFrame, min_per_group: int) -> dict[str, dict[str, list[str]]]:
    """parent genre -> subgenre -> items, from genre names ("hard rock" under "rock")."""
    counts = attrs["genres"].explode().dropna().value_counts()
    genres = set(counts[counts >= min_per_group].index)
    parent_of: dict[str, str] = {}
    for genre in genres:
        words = genre.replace("-", " ").split()
        for cut in range(1, len(words)):
            parent = " ".join(words[cut:])
            for spelling in (parent, parent.replace(" ", "-")):
                if spelling in genres and spelling != genre:
                    parent_of.setdefault(genre, spelling)
    tree: dict[str, dict[str, list[str]]] = {}
    for item, item_genres in attrs["genres"].items():
        for genre in item_genres:
            if genre in parent_of:
                tree.setdefault(parent_of[genre], {}).setdefault(genre, []).append(str(item))
                break
    return {
        p: {s: ids for s, ids in subs.items() if len(ids) >= min_per_group}
        for p, subs in tree.items()
        if sum(len(ids) >= min_per_group for ids in subs.values()) >= 2
    }


def suite_from_catalog(
    attrs: pd.DataFrame,
    *,
    rng: np.random.Generator,
    max_per_group: int = 20,
    min_per_group: int = 5,
    max_analogies: int = 60,
    max_themes: int = 24,
    pool_size: int = 300,
    top_values: int = 6,
) -> VerificationSuite:
    """Every test set the catalog's metadata gives (``attrs``: :func:`catalog_attributes`)."""
    skipped: dict[str, str] = {}
    era_counts = attrs["era"].value_counts()
    eras_kept = [e for e, n in era_counts.items() if n >= min_per_group]
    eras: dict[str, tuple[str, ...]] = {}
    if len(eras_kept) >= 2:
        for era in sorted(eras_kept):
            ids = attrs.index[attrs["era"] == era].astype(str)
            eras[era] = _sample(ids, max_per_group, rng)
    else:
        known = int(attrs["era"].notna().sum())
        skipped["era"] = (
            f"the catalog gives eras (an era column or release_year) for {known} of "
            f"{len(attrs)} items, in {len(era_counts)} era(s) with at least {min_per_group} "
            "items; era consistency needs two"
        )

    # analogies over genre x era (or genre x country) cells
    second = "era" if len(eras_kept) >= 2 else "country"
    cells = attrs.dropna(subset=["genre", second]).groupby(["genre", second]).groups
    cell_ids = {
        (str(g), str(v)): list(map(str, ids))
        for (g, v), ids in cells.items()
        if len(ids) >= max(3, min_per_group // 2)
    }
    top_genres = attrs["genre"].value_counts().index[:top_values].astype(str).tolist()
    top_second = attrs[second].value_counts().index[:top_values].astype(str).tolist()
    quads = [
        ((g1, v1), (g1, v2), (g2, v1), (g2, v2))
        for g1, g2 in itertools.permutations(top_genres, 2)
        for v1, v2 in itertools.permutations(top_second, 2)
        if all(c in cell_ids for c in ((g1, v1), (g1, v2), (g2, v1), (g2, v2)))
    ]
    entities: dict[str, tuple[str, ...]] = {}
    analogies: list[Analogy] = []
    if len(quads) >= 2:
        chosen = rng.choice(len(quads), size=min(max_analogies, len(quads)), replace=False)
        for index in np.sort(chosen):
            names = tuple(f"{g} / {v}" for g, v in quads[index])
            for (g, v), name in zip(quads[index], names, strict=True):
                if name not in entities:
                    entities[name] = _sample(cell_ids[(g, v)], max_per_group, rng)
            analogies.append(Analogy(names))  # type: ignore[arg-type]
    else:
        skipped["analogy"] = (
            f"fewer than two genre x {second} analogies have every cell with at least "
            f"{max(3, min_per_group // 2)} items"
        )

    tree = _hierarchy(attrs, min_per_group)
    if not tree:
        flat = {
            g: list(map(str, attrs.index[attrs["genre"] == g]))
            for g in top_genres
            if (attrs["genre"] == g).sum() >= min_per_group
        }
        tree = {"all genres": flat} if len(flat) >= 2 else {}
    # the largest parents, each with its largest subgenres
    sizes = {p: sum(map(len, subs.values())) for p, subs in tree.items()}
    parents = sorted(sorted(tree, key=lambda p: -sizes[p])[:top_values])
    subgenres = {}
    for parent in parents:
        largest = sorted(tree[parent].items(), key=lambda kv: (-len(kv[1]), kv[0]))[:top_values]
        subgenres[parent] = {s: _sample(ids, max_per_group, rng) for s, ids in sorted(largest)}
    if not subgenres:
        skipped["subgenre"] = f"no two genres have {min_per_group} items each"

    themes = _catalog_themes(attrs, top_genres, eras_kept, min_per_group, max_per_group, rng)
    if len(themes) > max_themes:
        keep = np.sort(rng.choice(len(themes), size=max_themes, replace=False))
        themes = [themes[i] for i in keep]
    if not themes:
        skipped["theme"] = "no genre, era or country has enough items for a theme"
    members = (m for theme in themes for m in theme.members)
    pool = tuple(dict.fromkeys([*members, *_sample(attrs.index.astype(str), pool_size, rng)]))
    return VerificationSuite(
        eras=eras,
        entities=entities,
        analogies=tuple(analogies),
        subgenres=subgenres,
        themes=tuple(themes),
        pool=pool,
        skipped=skipped,
    )


def _catalog_themes(
    attrs: pd.DataFrame,
    genres: list[str],
    eras: list[str],
    min_per_group: int,
    max_per_group: int,
    rng: np.random.Generator,
) -> list[Theme]:
    countries = attrs["country"].value_counts()
    countries = countries[countries >= min_per_group].index[:4].astype(str).tolist()
    candidates: list[tuple[str, list[str]]] = []
    for genre in genres:
        candidates += [
            (f"{genre} music from the {e}", [f"genre={genre}", f"era={e}"]) for e in eras
        ]
        candidates += [
            (f"{genre} music from {c}", [f"genre={genre}", f"country={c}"]) for c in countries
        ]
    for era in eras:
        for genre in genres[:2]:
            candidates.append(
                (f"music from the {era}, no {genre}", [f"era={era}", f"genre!={genre}"])
            )
    themes = []
    for text, written in candidates:
        constraints = tuple(parse_constraint(c, where=f"catalog theme {text!r}") for c in written)
        members = attrs.index[satisfies_all(attrs, constraints)].astype(str)
        if len(members) >= min_per_group:
            themes.append(Theme(text, constraints, _sample(members, max_per_group, rng)))
    return themes


class _NameResolver:
    """Artist names (canonical) or item ids -> items, with close matches for unknown names."""

    def __init__(self, attrs: pd.DataFrame, source: str) -> None:
        self.attrs = attrs
        self.source = source
        self.by_artist = attrs.groupby("artist_key").groups
        self.ids = set(attrs.index.astype(str))

    def items(self, name: object, where: str, *, limit: int) -> tuple[str, ...]:
        text = str(name)
        if text in self.ids:
            return (text,)
        key = canonical_name(text)
        if key in self.by_artist:
            return tuple(map(str, list(self.by_artist[key])[:limit]))
        close = difflib.get_close_matches(key, list(self.by_artist), n=3, cutoff=0.75)
        names = [str(self.attrs.loc[self.by_artist[c][0], "artist"]) for c in close]
        hint = f"; closest catalog artists: {', '.join(names)}" if names else ""
        raise VerificationInputError(
            f"{self.source}: {where} names {text!r}, which is neither an artist nor an item id "
            f"of the catalog{hint}. Fix the name or remove it from the test set."
        )


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise VerificationInputError(f"{where} must be a mapping, not {type(value).__name__}")
    return value


def _names(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise VerificationInputError(f"{where} must be a non-empty list of artist names")
    return value


def load_suite(
    path: str | Path, attrs: pd.DataFrame, *, max_per_group: int = 20, pool: Sequence[str] = ()
) -> VerificationSuite:
    """Read a user's test-set file (YAML or JSON, format in the module docstring)."""
    file = Path(path)
    text = read_document_text(file, error=VerificationInputError, what="verification test set")
    source = str(file)
    data = (
        json.loads(text)
        if file.suffix.lower() == ".json"
        else load_yaml_document(text, source=source, error=VerificationInputError)
    )
    data = _mapping(data or {}, source)
    unknown = set(data) - {"eras", "analogies", "subgenres", "themes"}
    if unknown:
        raise VerificationInputError(
            f"{source}: unknown section(s) {sorted(unknown)}; use eras, analogies, subgenres, "
            "themes"
        )
    resolve = _NameResolver(attrs, source)

    def group(names: Any, where: str) -> tuple[str, ...]:
        found: dict[str, None] = {}
        for name in _names(names, f"{source}: {where}"):
            found.update(dict.fromkeys(resolve.items(name, where, limit=max_per_group)))
        return tuple(found)

    eras = {
        str(era): group(names, f"eras.{era}")
        for era, names in _mapping(data.get("eras", {}), f"{source}: eras").items()
    }
    entities: dict[str, tuple[str, ...]] = {}
    analogies = []
    for index, entry in enumerate(data.get("analogies", []) or []):
        where = f"analogies[{index}]"
        names = _names(entry, f"{source}: {where}")
        if len(names) != 4:
            raise VerificationInputError(f"{source}: {where} must list 4 names (a, b, c, d)")
        for name in names:
            entities.setdefault(str(name), group([name], where))
        analogies.append(Analogy(tuple(str(n) for n in names)))  # type: ignore[arg-type]
    subgenres = {
        str(parent): {
            str(sub): group(names, f"subgenres.{parent}.{sub}")
            for sub, names in _mapping(subs, f"{source}: subgenres.{parent}").items()
        }
        for parent, subs in _mapping(data.get("subgenres", {}), f"{source}: subgenres").items()
    }
    themes = []
    for index, entry in enumerate(data.get("themes", []) or []):
        where = f"themes[{index}]"
        entry = _mapping(entry, f"{source}: {where}")
        if not isinstance(entry.get("text"), str) or not entry["text"].strip():
            raise VerificationInputError(f"{source}: {where} needs a 'text'")
        constraints = tuple(
            parse_constraint(c, where=f"{source}: {where}") for c in entry.get("constraints", [])
        )
        if "members" in entry:
            members = group(entry["members"], f"{where}.members")
        else:
            members = tuple(attrs.index[satisfies_all(attrs, constraints)].astype(str))
            members = members[:max_per_group]
        if not members:
            raise VerificationInputError(
                f"{source}: {where} ({entry['text']!r}): no catalog item satisfies "
                f"{', '.join(map(str, constraints)) or 'its constraints'}; list members"
            )
        themes.append(Theme(entry["text"], constraints, members))
    skipped = {
        test: f"{source} has no {section} section"
        for test, section in (
            ("era", "eras"),
            ("analogy", "analogies"),
            ("subgenre", "subgenres"),
            ("theme", "themes"),
        )
        if not data.get(section)
    }
    return VerificationSuite(
        eras=eras,
        entities=entities,
        analogies=tuple(analogies),
        subgenres=subgenres,
        themes=tuple(themes),
        pool=tuple(dict.fromkeys([*pool, *(m for t in themes for m in t.members)])),
        skipped=skipped,
        source=source,
    )
