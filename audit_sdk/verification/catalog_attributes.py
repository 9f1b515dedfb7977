"""What verification reads from a catalog: each item's genres, era, year, country and artist,
and typed constraints over them ("genre=rock", "genre!=metal", "year<2000").

Eras are decades (``"1990s"``): the catalog's ``era`` column where it has one (HetRec's
tag-derived eras), else the decade of ``release_year``; an item with neither has no era.
Artist names are compared in a canonical form (:func:`canonical_name`), as the verification
pipeline of "Verifying LLM-Driven Music Recommendation Systems" (Amazon Music, KDD 2025
LLM4ECommerce workshop, Sec. 3) canonicalises artist names before matching.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from audit_sdk.errors import AuditSDKError

__all__ = [
    "ATTRIBUTES",
    "Attribute",
    "Constraint",
    "VerificationInputError",
    "canonical_name",
    "catalog_attributes",
    "parse_constraint",
    "satisfies_all",
]

Attribute = Literal["genre", "era", "country", "year", "artist"]
ATTRIBUTES: tuple[str, ...] = get_args(Attribute)
Operator = Literal["=", "!=", "<", "<=", ">", ">="]
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_]+)\s*(!=|<=|>=|=|<|>)\s*(.+?)\s*$")
_ORDERED: frozenset[str] = frozenset({"<", "<=", ">", ">="})


class VerificationInputError(AuditSDKError):
    """A verification test set, prompt or log that cannot be used as given."""


def canonical_name(value: object) -> str:
    """Artist or title in canonical form: accents stripped, case folded, a leading "the",
    featured artists and punctuation dropped, "&" read as "and", spaces collapsed."""
    text = unicodedata.normalize("NFKD", str(value))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = re.split(r"\s+(?:feat\.?|ft\.?|featuring)\s+", text, maxsplit=1)[0]
    text = text.replace("&", " and ")
    text = re.sub(r"[^\w\s]", " ", text)
    text = " ".join(text.split())
    return text[4:] if text.startswith("the ") else text


def _decade(year: Any) -> str | None:
    try:
        value = int(year)
    except (TypeError, ValueError):
        return None
    return f"{value // 10 * 10}s" if 1000 <= value <= 2999 else None


def _genres(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(str(g) for g in value)
    if isinstance(value, str) and value:
        return tuple(g.strip() for g in value.split("|") if g.strip())
    return ()


def catalog_attributes(catalog: pd.DataFrame) -> pd.DataFrame:
    """One row per item (the catalog's index): ``title, artist, artist_key, genres`` (tuple),
    ``genre`` (the first, or None), ``era`` (``"1990s"`` or None), ``year`` (float, NaN when
    unknown) and ``country`` (None when unknown)."""
    n = len(catalog)
    titles = catalog["title"].astype(str) if "title" in catalog else catalog.index.to_series()
    artists = catalog["artist"].astype(str) if "artist" in catalog else titles
    genres = (
        catalog["genres"].map(_genres)
        if "genres" in catalog
        else pd.Series([()] * n, index=catalog.index)
    )
    years = (
        pd.to_numeric(catalog["release_year"], errors="coerce").astype(float)
        if "release_year" in catalog
        else pd.Series(np.nan, index=catalog.index)
    )
    eras = years.map(_decade)
    if "era" in catalog:
        given = catalog["era"].map(lambda e: str(e) if isinstance(e, str) and e else None)
        eras = given.where(given.notna(), eras)
    country = (
        catalog["country"].map(lambda c: str(c) if isinstance(c, str) and c else None)
        if "country" in catalog
        else pd.Series([None] * n, index=catalog.index, dtype=object)
    )
    return pd.DataFrame(
        {
            "title": titles.to_numpy(),
            "artist": artists.to_numpy(),
            "artist_key": [canonical_name(a) for a in artists],
            "genres": genres.to_numpy(),
            "genre": [g[0] if g else None for g in genres],
            "era": eras.to_numpy(dtype=object),
            "year": years.to_numpy(),
            "country": country.to_numpy(dtype=object),
        },
        index=catalog.index,
    )


@dataclass(frozen=True)
class Constraint:
    """``attribute op value``: ``genre=rock`` (the item has that genre), ``genre!=metal``,
    ``era=1990s``, ``country=US``, ``artist!=Nirvana``, ``year<2000`` (``<, <=, >, >=`` only
    for ``year``)."""

    attribute: Attribute
    op: Operator
    value: str

    def __str__(self) -> str:
        return f"{self.attribute}{self.op}{self.value}"

    def mask(self, items: pd.DataFrame) -> np.ndarray:
        """Whether each row of :func:`catalog_attributes` satisfies the constraint (an item
        whose attribute is unknown does not)."""
        if self.attribute == "year":
            years = items["year"].to_numpy(dtype=float)
            with np.errstate(invalid="ignore"):
                result = {
                    "=": years == float(self.value),
                    "!=": years != float(self.value),
                    "<": years < float(self.value),
                    "<=": years <= float(self.value),
                    ">": years > float(self.value),
                    ">=": years >= float(self.value),
                }[self.op]
            return result & np.isfinite(years)
        if self.attribute == "genre":
            wanted = self.value.casefold()
            present = np.array(
                [any(g.casefold() == wanted for g in genres) for genres in items["genres"]],
                dtype=bool,
            )
            return present if self.op == "=" else ~present
        if self.attribute == "artist":
            same = items["artist_key"].to_numpy() == canonical_name(self.value)
            return same if self.op == "=" else ~same
        column = items[self.attribute]
        known = column.notna().to_numpy()
        same = column.astype(str).str.casefold().to_numpy() == self.value.casefold()
        return known & (same if self.op == "=" else ~same)


def parse_constraint(text: str, *, where: str) -> Constraint:
    """``"genre=rock"`` -> :class:`Constraint`; an unknown attribute or operator is a
    :class:`VerificationInputError` naming ``where`` and what is allowed."""
    match = _CONSTRAINT.match(str(text))
    if match is None:
        raise VerificationInputError(
            f"{where}: constraint {text!r} is not 'attribute op value' (e.g. 'genre=rock', "
            "'genre!=metal', 'era=1990s', 'country=US', 'year<2000')"
        )
    attribute, op, value = match.group(1).lower(), match.group(2), match.group(3)
    if attribute not in ATTRIBUTES:
        raise VerificationInputError(
            f"{where}: unknown constraint attribute {attribute!r} in {text!r}; the catalog "
            f"gives {', '.join(ATTRIBUTES)}"
        )
    if op in _ORDERED and attribute != "year":
        raise VerificationInputError(
            f"{where}: {text!r} orders {attribute!r}; only 'year' takes <, <=, >, >= "
            "(use '=' or '!=')"
        )
    if attribute == "year":
        try:
            float(value)
        except ValueError:
            raise VerificationInputError(
                f"{where}: {text!r} compares year with {value!r}, not a number"
            ) from None
    return Constraint(attribute, op, value)  # type: ignore[arg-type]


def satisfies_all(items: pd.DataFrame, constraints: Sequence[Constraint]) -> np.ndarray:
    """Boolean per row of ``items`` (rows of :func:`catalog_attributes`): all constraints hold."""
    result = np.ones(len(items), dtype=bool)
    for constraint in constraints:
        result &= constraint.mask(items)
    return result


def values_of(items: pd.DataFrame, attribute: str) -> Iterable[str]:
    """The known values of ``attribute`` among ``items`` (genres unnested)."""
    if attribute == "genre":
        return items["genres"].explode().dropna().astype(str)
    return items[attribute].dropna().astype(str)
