"""Load HetRec 2011 Last.fm 2K: real listening counts of 1,892 users over 17,632 artists.

Items are artists (``item_id`` = ``artistID``; ``title`` = ``artist`` = the name); interactions
are ``user_id, item_id, plays`` with ``plays`` = the listening count (no timestamps). Free-form
tags are split three ways:

* eras (``80s``, ``1980s``) -> catalog column ``era`` (``"1980s"``, the artist's most-used);
* countries, nationalities and national scenes (``british``, ``usa``, ``j-pop``, ``mpb``) ->
  ``country`` (ISO 3166 alpha-2, the artist's most-used). Scene tags that are also genres
  (``j-pop``, ``k-pop``, ``britpop``...) stay genres as well;
* everything else is a genre candidate: normalized (``hip hop``/``hiphop`` -> ``hip-hop``),
  kept when used on at least ``min_tag_count`` (user, artist) pairs and not on a small stop
  list of non-genre tags (``seen live``, ``favorites``...), then ordered per artist by how
  many users gave the artist that tag.

Users get ``n_friends`` (from ``user_friends.dat``) and ``n_artists``.

Cantador, Brusilovsky and Kuflik (2011), 2nd Workshop on Information Heterogeneity and Fusion
in Recommender Systems (HetRec 2011), RecSys 2011.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from audit_sdk.data.tables import Dataset
from audit_sdk.data.tabular_loader import read_delimited
from audit_sdk.data.validation import RawTable, validate_dataset
from audit_sdk.errors import DataValidationError
from audit_sdk.interfaces import DatasetLoader, PluginParams
from audit_sdk.interfaces._params import PathParam

__all__ = [
    "COUNTRY_TAGS",
    "GENRE_STOP_TAGS",
    "HetRecLastfmLoader",
    "HetRecLastfmParams",
    "classify_tag",
    "normalize_tag",
    "verify_checksums",
]

FILES = {
    "user_artists": ("user_artists.dat", "utf-8", ("userID", "artistID", "weight")),
    "artists": ("artists.dat", "utf-8", ("id", "name")),
    "tags": ("tags.dat", "latin-1", ("tagID", "tagValue")),
    "user_taggedartists": ("user_taggedartists.dat", "utf-8", ("userID", "artistID", "tagID")),
    "user_friends": ("user_friends.dat", "utf-8", ("userID", "friendID")),
}


def _code_table(text: str) -> dict[str, str]:
    """Parse ``CODE: tag, tag, ...`` lines into ``{tag: CODE}``."""
    table: dict[str, str] = {}
    for line in text.strip().splitlines():
        code, tags = line.split(":", 1)
        for tag in tags.split(","):
            table[tag.strip()] = code.strip()
    return table


# Nationality, country and demonym tags (normalized form) -> ISO 3166-1 alpha-2.
_NATIONALITIES = _code_table(
    """
    GB: british, uk, english, england, britain, united kingdom, scottish, scotland, welsh, wales
    US: american, usa, united states, america
    DE: german, germany, deutsch, deutschland
    SE: swedish, sweden, svenska
    FI: finnish, finland, suomi
    NO: norwegian, norway, norsk
    DK: danish, denmark
    FR: french, france, francais, français
    JP: japanese, japan
    KR: korean, korea, south korea
    BR: brazilian, brazil, brasil, brasileiro
    CA: canadian, canada
    AU: australian, australia
    ES: spanish, spain, espanol, español
    IT: italian, italy, italia, italiana, italiano
    PL: polish, poland, polska
    RU: russian, russia
    IS: icelandic, iceland
    IE: irish, ireland
    NL: dutch, netherlands, holland
    MX: mexican, mexico, mexicano
    AR: argentina, argentinian, argentine
    CL: chile, chilean
    CO: colombia, colombian
    VE: venezuela, venezuelan
    CU: cuba, cuban
    GR: greek, greece
    TR: turkish, turkey, turkce
    BE: belgian, belgium
    CH: swiss, switzerland
    AT: austrian, austria
    PT: portuguese, portugal, portugues
    CZ: czech
    HU: hungarian
    UA: ukrainian, ukraine
    RO: romanian, romania
    BG: bulgarian
    HR: croatian
    RS: serbian
    EE: estonian
    LV: latvian
    LT: lithuanian
    JM: jamaican, jamaica
    IL: israeli
    IN: indian
    CN: chinese, china
    TW: taiwanese
    NZ: new zealand
    NG: nigerian, nigeria
    ZA: south african
    """
)
# National scenes that are genres too: they vote for a country and stay genre tags.
_SCENES = _code_table(
    """
    JP: j-pop, jpop, j-rock, jrock, j-music, visual kei
    KR: k-pop, kpop
    GB: britpop, brit-pop, britrock, brit rock
    BR: mpb
    DE: krautrock, deutschrock, deutschrap
    FR: chanson, chanson francaise
    US: americana
    IT: italo disco
    """
)
COUNTRY_TAGS: dict[str, str] = {**_NATIONALITIES, **_SCENES}

GENRE_STOP_TAGS: frozenset[str] = frozenset(
    tag.strip()
    for tag in """
    seen live, favorites, favourites, favorite, favourite, my favorite, my favorites,
    favorite artists, favourite artists, favorite songs, favourite songs, favorite bands,
    love, loved, love it, love at first listen, <3, awesome, beautiful, amazing, cool, sexy,
    epic, fun, happy, sad, catchy, best, good, great, genius, legend, legends, perfect,
    brilliant, albums i own, cover, covers, remix, remixes, female vocalists, female vocalist,
    male vocalists, male vocalist, female, male, guitar, piano, check out, spotify, music, all,
    under 2000 listeners, classic, mellow, chill, romantic, fucking awesome, hot, cute,
    good music, singer, band, bands, artist, artists
    """.split(",")
)
# Spellings of one genre whose separators differ only in ways ``normalize_tag`` cannot see.
_GENRE_ALIASES: dict[str, str] = {
    "hiphop": "hip-hop",
    "rnb": "r&b",
    "randb": "r&b",
    "rhythmandblues": "r&b",
    "rocknroll": "rock and roll",
    "rockandroll": "rock and roll",
    "rock'n'roll": "rock and roll",
    "rock'nroll": "rock and roll",
}
_ERA = re.compile(r"^(?:(\d)0|(\d{3})\d)'?s$")
_SEPARATORS = re.compile(r"[\s_\-/.]+")


def normalize_tag(value: str) -> str:
    """Lower-case, strip, and collapse runs of spaces and underscores to one space."""
    return " ".join(value.replace("_", " ").lower().split())


def _genre_key(surface: str) -> str:
    return _SEPARATORS.sub("", surface)


def _canonical_key(surface: str) -> str:
    key = _genre_key(surface)
    return _genre_key(_GENRE_ALIASES[key]) if key in _GENRE_ALIASES else key


def classify_tag(value: str) -> tuple[str, str]:
    """``("era", "1980s")``, ``("country", "GB")``, ``("scene", "JP")``, ``("stop", tag)`` or
    ``("genre", normalized)`` for one raw tag value."""
    tag = normalize_tag(value)
    era = _ERA.match(tag)
    if era:
        if era.group(1) is not None:
            digit = int(era.group(1))
            decade = (2000 if digit <= 1 else 1900) + 10 * digit
        else:
            decade = int(era.group(2)) * 10
        return "era", f"{decade}s"
    if tag in _SCENES:
        return "scene", _SCENES[tag]
    if tag in _NATIONALITIES:
        return "country", _NATIONALITIES[tag]
    if tag in GENRE_STOP_TAGS or not tag or tag.isdigit():
        return "stop", tag
    words = tag.split(" ")
    for n_words in (2, 1):
        head = " ".join(words[:n_words])
        if len(words) > n_words and head in _NATIONALITIES:
            return "scene", _NATIONALITIES[head]
    return "genre", tag


class HetRecLastfmParams(PluginParams):
    directory: Annotated[str, PathParam()] = Field(
        description="folder with the HetRec Last.fm 2K .dat files"
    )
    verify_checksums: bool = Field(
        default=True, description="verify the files against SHA256SUMS when the folder has one"
    )
    max_genres_per_item: int = Field(default=5, ge=1, description="genres kept per artist")
    min_tag_count: int = Field(
        default=2,
        ge=1,
        description="a genre tag is kept if used on at least this many (user, artist) pairs",
    )


class HetRecLastfmLoader(DatasetLoader):
    """HetRec 2011 Last.fm 2K: users x artists listening counts, tags, friends."""

    name: ClassVar[str] = "hetrec_lastfm_2k"
    description: ClassVar[str] = (
        "HetRec 2011 Last.fm 2K (artist-level listening counts, tags -> genres/era/country)"
    )
    Params: ClassVar[type[PluginParams]] = HetRecLastfmParams

    def load(self) -> Dataset:
        params = self.params
        assert isinstance(params, HetRecLastfmParams)
        directory = Path(params.directory).expanduser()
        if not directory.is_dir():
            raise DataValidationError(
                "folder not found",
                source=str(directory),
                hint="set `directory:` to the folder that holds user_artists.dat, artists.dat, "
                "tags.dat, user_taggedartists.dat and user_friends.dat",
            )
        checked = False
        if params.verify_checksums and (directory / "SHA256SUMS").is_file():
            verify_checksums(directory, [name for name, _, _ in FILES.values()])
            checked = True
        raw = {key: _read(directory, *spec) for key, spec in FILES.items()}

        catalog_frame, tag_stats = _catalog(
            raw["artists"],
            raw["tags"],
            raw["user_taggedartists"],
            max_genres=params.max_genres_per_item,
            min_count=params.min_tag_count,
        )
        users_frame = _users(raw["user_artists"], raw["user_friends"])
        metadata: dict[str, Any] = {
            "loader": self.name,
            "sources": {key: str(directory / spec[0]) for key, spec in FILES.items()},
            "checksums_verified": checked,
            "tags": tag_stats,
            "notes": [
                "items are artists (title == artist); plays are listening counts; "
                "no timestamps, durations or ratings",
            ],
        }
        return validate_dataset(
            raw["user_artists"],
            name=self.name,
            catalog=RawTable(catalog_frame, raw["artists"].source),
            users=RawTable(users_frame, raw["user_friends"].source),
            columns={"user_id": "userID", "item_id": "artistID", "plays": "weight"},
            metadata=metadata,
        )


def verify_checksums(directory: str | Path, names: list[str] | None = None) -> None:
    """Check files against ``directory/SHA256SUMS``; raise naming the first mismatch.

    ``names`` restricts the check to those files (each must be listed); default: every
    listed file.
    """
    folder = Path(directory)
    sums_file = folder / "SHA256SUMS"
    expected: dict[str, str] = {}
    for number, line in enumerate(sums_file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not re.fullmatch(r"[0-9a-fA-F]{64}", parts[0]):
            raise DataValidationError(
                "expected '<sha256>  <file name>'",
                source=str(sums_file),
                row=number,
                hint="restore SHA256SUMS from the original download, or set "
                "`verify_checksums: false`",
            )
        expected[parts[1].lstrip("*")] = parts[0].lower()
    for name in names if names is not None else sorted(expected):
        if name not in expected:
            raise DataValidationError(
                f"{name} is not listed in SHA256SUMS",
                source=str(sums_file),
                hint="restore SHA256SUMS from the original download, or set "
                "`verify_checksums: false`",
            )
        path = folder / name
        if not path.is_file():
            raise DataValidationError("file not found", source=str(path), hint="re-download it")
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != expected[name]:
            raise DataValidationError(
                f"SHA256 mismatch: expected {expected[name]}, got {actual}; the file is "
                "corrupt or was modified",
                source=str(path),
                hint="re-download the dataset, or set `verify_checksums: false` if you changed "
                "it on purpose",
            )


def _read(directory: Path, file_name: str, encoding: str, required: tuple[str, ...]) -> RawTable:
    path = directory / file_name
    if not path.is_file():
        raise DataValidationError(
            "file not found",
            source=str(path),
            hint="HetRec Last.fm 2K needs user_artists.dat, artists.dat, tags.dat, "
            "user_taggedartists.dat and user_friends.dat in `directory`",
        )
    raw = read_delimited(path.read_bytes(), source=str(path), encoding=encoding, delimiter="\t")
    missing = [column for column in required if column not in raw.frame.columns]
    if missing:
        raise DataValidationError(
            f"required column {missing[0]!r} is missing; the file has columns {raw.column_list}",
            source=raw.source,
            column=missing[0],
            hint="this does not look like the HetRec Last.fm 2K file; re-download it",
        )
    return raw


def _integers(raw: RawTable, column: str) -> np.ndarray:
    parsed = pd.to_numeric(raw.frame[column].str.strip(), errors="coerce")
    values = parsed.to_numpy(dtype=float, na_value=np.nan)
    bad = np.isnan(values) | (np.mod(values, 1.0) != 0.0)
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise raw.error_at(
            position,
            column,
            f"expected an integer id, got {raw.frame[column].iloc[position]!r}",
            hint="the file is corrupt; re-download it",
        )
    return values.astype(np.int64)


def _catalog(
    artists: RawTable,
    tags: RawTable,
    taggings: RawTable,
    *,
    max_genres: int,
    min_count: int,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    artist_ids = _integers(artists, "id")
    tag_ids = _integers(tags, "tagID")
    values = tags.frame["tagValue"].to_numpy(dtype=object)
    kinds = [classify_tag(str(v)) for v in values]
    tag_table = pd.DataFrame(
        {
            "tagID": tag_ids,
            "kind": [k for k, _ in kinds],
            "value": [v for _, v in kinds],
            "surface": [normalize_tag(str(v)) for v in values],
        }
    )
    events = pd.DataFrame(
        {
            "userID": _integers(taggings, "userID"),
            "artistID": _integers(taggings, "artistID"),
            "tagID": _integers(taggings, "tagID"),
        }
    )
    n_taggings = len(events)
    events = events[events["artistID"].isin(artist_ids)]
    events = events.merge(tag_table, on="tagID", how="inner")
    n_unknown_tag = n_taggings - len(events)

    era = _most_used(events[events["kind"] == "era"], "value")
    country = _most_used(events[events["kind"].isin(["country", "scene"])], "value")

    genre_events = events[events["kind"].isin(["genre", "scene"])].copy()
    genre_events["key"] = genre_events["surface"].map(_canonical_key)
    pair_counts = (
        genre_events.drop_duplicates(["userID", "artistID", "surface"])
        .groupby(["key", "surface"])
        .size()
        .rename("n")
        .reset_index()
        .sort_values(["key", "n", "surface"], ascending=[True, False, True])
    )
    canonical = pair_counts.drop_duplicates("key").set_index("key")["surface"]
    for name in set(_GENRE_ALIASES.values()):
        if _genre_key(name) in canonical.index:
            canonical.loc[_genre_key(name)] = name
    genre_events["genre"] = genre_events["key"].map(canonical)
    # A tag that is the tagged artist's own name ("britney spears") is not a genre.
    own_name = pd.Series(
        [normalize_tag(str(n)) for n in artists.frame["name"].to_numpy(dtype=object)],
        index=artist_ids,
    )
    own_name = own_name[~own_name.index.duplicated()]
    genre_events = genre_events[
        genre_events["genre"].to_numpy() != own_name.reindex(genre_events["artistID"]).to_numpy()
    ]
    genre_events = genre_events.drop_duplicates(["userID", "artistID", "genre"])
    usage = genre_events.groupby("genre").size()
    kept = usage[usage >= min_count]
    genre_events = genre_events[genre_events["genre"].isin(kept.index)]
    per_artist = genre_events.groupby(["artistID", "genre"]).size().rename("n").reset_index()
    per_artist["overall"] = per_artist["genre"].map(kept).to_numpy()
    per_artist = per_artist.sort_values(
        ["artistID", "n", "overall", "genre"], ascending=[True, False, False, True]
    )
    top = per_artist.groupby("artistID", sort=False).head(max_genres)
    genres = top.groupby("artistID", sort=False)["genre"].agg(tuple)

    names = artists.frame["name"].to_numpy(dtype=object)
    ids = pd.Index(artist_ids)
    frame = pd.DataFrame(
        {
            "item_id": artist_ids.astype(str),
            "title": names,
            "artist": names,
            "genres": pd.Series(genres.reindex(ids).to_numpy(dtype=object)).map(
                lambda g: g if isinstance(g, tuple) else ()
            ),
            "country": country.reindex(ids).to_numpy(dtype=object),
            "era": era.reindex(ids).to_numpy(dtype=object),
            "artist_id": artist_ids.astype(str),
        }
    )
    stats = {
        "n_taggings": n_taggings,
        "n_taggings_ignored": int(n_unknown_tag),
        "n_genre_tags_kept": len(kept),
        "n_artists_with_genres": len(genres),
        "n_artists_with_country": int(country.reindex(ids).notna().sum()),
        "n_artists_with_era": int(era.reindex(ids).notna().sum()),
    }
    return frame, stats


def _most_used(events: pd.DataFrame, column: str) -> pd.Series:
    """Per artist, the value given by the most users (ties: the value used most overall)."""
    if events.empty:
        return pd.Series(dtype=object)
    distinct = events.drop_duplicates(["userID", "artistID", column])
    counts = distinct.groupby(["artistID", column]).size().rename("n").reset_index()
    counts["overall"] = counts[column].map(distinct.groupby(column).size()).to_numpy()
    counts = counts.sort_values(
        ["artistID", "n", "overall", column], ascending=[True, False, False, True]
    )
    return counts.drop_duplicates("artistID").set_index("artistID")[column]


def _users(listening: RawTable, friends: RawTable) -> pd.DataFrame:
    user_ids = _integers(listening, "userID")
    n_artists = pd.Series(user_ids).value_counts().sort_index()
    friend_counts = pd.Series(_integers(friends, "userID")).value_counts()
    return pd.DataFrame(
        {
            "user_id": n_artists.index.astype(str),
            "n_friends": friend_counts.reindex(n_artists.index, fill_value=0)
            .to_numpy()
            .astype(np.int64),
            "n_artists": n_artists.to_numpy().astype(np.int64),
        }
    )
