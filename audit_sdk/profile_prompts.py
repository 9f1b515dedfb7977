"""The profile prompt: a user's sampled (artist, track) pairs, with catalog metadata, as text.

The default template (``audit_sdk/templates/profile_prompt.j2``) lists one pair per line::

    - Radiohead — Creep [alternative rock, rock; GB; 1992; 12 plays]

A user may replace it with their own jinja2 file (``template=path``). Templates render with
``StrictUndefined`` (a misspelled variable is an error, not an empty string) and without
autoescaping (the prompt is plain text, not HTML). Every template receives the same variables,
documented in the default template; keeping one ``{{ pair.line }}`` per pair keeps the prompt
readable by :func:`parse_profile_pairs` and hence by the ``template_writer`` baseline.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from audit_sdk.data.tables import Catalog
from audit_sdk.errors import ConfigError, DataValidationError

__all__ = [
    "DEFAULT_PROFILE_TEMPLATE",
    "PAIR_COLUMNS",
    "ProfilePair",
    "format_pair_line",
    "load_profile_template",
    "parse_profile_pairs",
    "profile_pairs_by_user",
    "profile_pairs_from_sample",
    "prompt_sha256",
    "render_profile_prompt",
    "render_profile_prompts",
]

DEFAULT_PROFILE_TEMPLATE = "profile_prompt.j2"
PAIR_COLUMNS = ("user_id", "position", "artist", "item_id", "title", "plays")
UNKNOWN = "unknown"
_DASH = " — "
_LINE = re.compile(
    r"^- (?P<head>.+?) \[(?P<genres>[^;\[\]]*); (?P<country>[^;\[\]]*); "
    r"(?P<year>[^;\[\]]*); (?P<plays>[0-9][0-9.eE+\-]*) plays?\]\s*$"
)


@dataclass(frozen=True)
class ProfilePair:
    """One sampled (artist, track) pair with the metadata a profile talks about.

    Text fields are already cleaned to survive the one-line prompt format, so a pair rendered
    with :func:`format_pair_line` and parsed back with :func:`parse_profile_pairs` is equal to
    itself.
    """

    artist: str
    title: str
    genres: tuple[str, ...]
    country: str | None
    release_year: int | None
    plays: float


def prompt_sha256(prompt: str) -> str:
    """The hex sha256 of a prompt's UTF-8 bytes: the prompt's identity in caches and reports."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


# -- pairs <-> lines -------------------------------------------------------------------------
def _clean_text(value: Any, *, dash: bool = False) -> str:
    """One line of text; ``dash``: also turn " — " (the artist/title separator) into " - "."""
    text = " ".join(str(value).split())
    return text.replace(_DASH, " - ") if dash else text


def _clean_field(value: Any) -> str:
    text = " ".join(str(value).split())
    for char in ";[],":
        text = text.replace(char, " ")
    return " ".join(text.split())


def _clean_plays(value: Any) -> float:
    plays = float(value)
    if not math.isfinite(plays) or plays < 0:
        plays = 0.0
    return float(f"{plays:.6g}")


def _plays_text(plays: float) -> str:
    return f"{plays:.6g}"


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _make_pair(
    artist: Any, title: Any, genres: Any, country: Any, year: Any, plays: Any
) -> ProfilePair:
    genre_list: list[str] = []
    if not _is_missing(genres):
        raw = [genres] if isinstance(genres, str) else list(genres)
        for genre in raw:
            if _is_missing(genre):
                continue
            cleaned = _clean_field(genre)
            if cleaned and cleaned != UNKNOWN and cleaned not in genre_list:
                genre_list.append(cleaned)
    country_text = None if _is_missing(country) else _clean_field(country)
    release_year = None if _is_missing(year) else int(year)
    artist_text = (_clean_text(artist, dash=True) if not _is_missing(artist) else "") or UNKNOWN
    title_text = (_clean_text(title) if not _is_missing(title) else "") or artist_text
    return ProfilePair(
        artist=artist_text,
        title=title_text,
        genres=tuple(genre_list),
        country=country_text if country_text and country_text != UNKNOWN else None,
        release_year=release_year,
        plays=_clean_plays(plays),
    )


def format_pair_line(pair: ProfilePair) -> str:
    """``- artist — title [genres; country; year; N plays]`` (the title is left out when it
    equals the artist, as in artist-level data)."""
    head = pair.artist if pair.title == pair.artist else f"{pair.artist}{_DASH}{pair.title}"
    genres = ", ".join(pair.genres) or UNKNOWN
    country = pair.country or UNKNOWN
    year = str(pair.release_year) if pair.release_year is not None else UNKNOWN
    unit = "play" if pair.plays == 1 else "plays"
    return f"- {head} [{genres}; {country}; {year}; {_plays_text(pair.plays)} {unit}]"


def parse_profile_pairs(prompt: str) -> list[ProfilePair]:
    """Read back every pair line of a profile prompt, in order; other lines are ignored."""
    pairs: list[ProfilePair] = []
    for line in prompt.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        head = match["head"]
        artist, _, title = head.partition(_DASH)
        genres = tuple(g.strip() for g in match["genres"].split(",") if g.strip())
        country = match["country"].strip()
        year = match["year"].strip()
        try:
            plays = float(match["plays"])
        except ValueError:
            continue
        pairs.append(
            ProfilePair(
                artist=artist,
                title=title or artist,
                genres=tuple(g for g in genres if g != UNKNOWN),
                country=None if country in ("", UNKNOWN) else country,
                release_year=int(year) if year.lstrip("-").isdigit() else None,
                plays=plays,
            )
        )
    return pairs


def _check_sample(pairs: pd.DataFrame, *, source: str) -> None:
    missing = [c for c in ("artist", "item_id", "title", "plays") if c not in pairs.columns]
    if missing:
        raise DataValidationError(
            f"the profile sample lacks column(s) {', '.join(missing)} "
            f"(has: {', '.join(map(str, pairs.columns))}).",
            source=source,
            hint="pass the output of audit_sdk.sampling.two_step_sample.",
        )


def _joined_sample(
    sample: pd.DataFrame, catalog: Catalog, *, source: str
) -> tuple[list[Any], list[Any], list[ProfilePair]]:
    """(user ids, item ids, pairs) of every row, ordered by user (first appearance), then
    position; one catalog join for the whole frame."""
    _check_sample(sample, source=source)
    frame = catalog.frame
    # get_indexer uses the catalog index's cached hash table: fast for one user or many
    positions = frame.index.get_indexer(sample["item_id"].to_numpy())
    if bool((positions < 0).any()):
        row_number = int(np.argmax(positions < 0)) + 1
        raise DataValidationError(
            f"item {sample['item_id'].iloc[row_number - 1]!r} is not in the catalog.",
            source=source,
            row=row_number,
            column="item_id",
            hint="sample from the same dataset whose catalog you pass.",
        )
    n = len(sample)
    users = sample["user_id"].to_numpy() if "user_id" in sample.columns else np.full(n, None)
    user_order = pd.factorize(users)[0] if n else np.zeros(0, dtype=np.int64)
    if "position" in sample.columns:
        order = np.lexsort((sample["position"].to_numpy(), user_order))
    else:
        order = np.argsort(user_order, kind="stable")

    def column(values: Any) -> list[Any]:
        return list(np.asarray(values, dtype=object)[order])

    rows = positions[order]
    nothing: list[Any] = [None] * n
    genres = list(frame["genres"].to_numpy(dtype=object)[rows]) if "genres" in frame else nothing
    countries = (
        list(frame["country"].to_numpy(dtype=object)[rows]) if "country" in frame else nothing
    )
    years = (
        list(frame["release_year"].to_numpy(dtype=object)[rows])
        if "release_year" in frame
        else nothing
    )
    pairs = [
        _make_pair(artist, title, genre, country, year, plays)
        for artist, title, genre, country, year, plays in zip(
            column(sample["artist"]),
            column(sample["title"]),
            genres,
            countries,
            years,
            column(sample["plays"]),
            strict=True,
        )
    ]
    return column(users), column(sample["item_id"]), pairs


def profile_pairs_from_sample(
    pairs: pd.DataFrame, catalog: Catalog, *, source: str = "profile sample"
) -> list[ProfilePair]:
    """Join one user's sampled pairs with the catalog's genres, country and release year.

    Rows keep their ``position`` order where the column exists. An item id that the catalog
    does not know is an error: samples are drawn from the catalog, so it means the two tables
    do not belong together.
    """
    return _joined_sample(pairs, catalog, source=source)[2]


def profile_pairs_by_user(
    sample: pd.DataFrame, catalog: Catalog, *, source: str = "profile sample"
) -> dict[Any, list[ProfilePair]]:
    """:func:`profile_pairs_from_sample` for every user of a sample at once (one catalog
    join), keyed by user id in the order users first appear."""
    if "user_id" not in sample.columns:
        raise DataValidationError(
            "the profile sample lacks column user_id.",
            source=source,
            hint="pass the output of audit_sdk.sampling.two_step_sample.",
        )
    users, _, pairs = _joined_sample(sample, catalog, source=source)
    grouped: dict[Any, list[ProfilePair]] = {}
    for user, pair in zip(users, pairs, strict=True):
        grouped.setdefault(user, []).append(pair)
    return grouped


# -- templates -------------------------------------------------------------------------------
def _environment(loader: jinja2.BaseLoader | None = None) -> jinja2.Environment:
    return jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # plain-text prompts, never rendered as HTML
        keep_trailing_newline=False,
    )


@lru_cache(maxsize=1)
def _default_template() -> jinja2.Template:
    text = (
        resources.files("audit_sdk")
        .joinpath("templates", DEFAULT_PROFILE_TEMPLATE)
        .read_text(encoding="utf-8")
    )
    return _environment().from_string(text)


def load_profile_template(path: str | Path) -> jinja2.Template:
    """Read a user's profile prompt template, with errors that name the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such profile prompt template.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the template is not UTF-8 text (byte {exc.start}).") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the template ({exc.strerror}).") from None
    try:
        return _environment().from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(
            f"{path}, line {exc.lineno}: not a valid jinja2 template: {exc.message}."
        ) from None


def _template_context(user_id: Any, pairs: Sequence[ProfilePair], item_ids: list[Any]) -> dict:
    entries = []
    for position, (pair, item_id) in enumerate(zip(pairs, item_ids, strict=True), start=1):
        entries.append(
            {
                "position": position,
                "artist": pair.artist,
                "title": pair.title,
                "item_id": item_id,
                "plays": pair.plays,
                "genres": list(pair.genres),
                "country": pair.country,
                "release_year": pair.release_year,
                "line": format_pair_line(pair),
            }
        )
    return {
        "user_id": user_id,
        "n_pairs": len(entries),
        "pairs": entries,
        "lines": "\n".join(entry["line"] for entry in entries),
    }


def _compile(template: str | Path | jinja2.Template | None) -> tuple[jinja2.Template, str]:
    if template is None:
        return _default_template(), DEFAULT_PROFILE_TEMPLATE
    if isinstance(template, jinja2.Template):
        return template, template.name or "profile prompt template"
    return load_profile_template(template), str(template)


def _render(compiled: jinja2.Template, source: str, context: dict[str, Any]) -> str:
    try:
        return compiled.render(**context)
    except jinja2.UndefinedError as exc:
        raise ConfigError(
            f"{source}: the template uses an unknown variable ({exc.message}). "
            f"Available: user_id, n_pairs, pairs (position, artist, title, item_id, plays, "
            f"genres, country, release_year, line), lines."
        ) from None
    except jinja2.TemplateError as exc:
        raise ConfigError(f"{source}: the template failed to render: {exc}.") from None


def render_profile_prompts(
    sample: pd.DataFrame,
    catalog: Catalog,
    *,
    template: str | Path | jinja2.Template | None = None,
) -> dict[Any, str]:
    """The profile prompt of every user in a two-step sample, keyed by user id (in the
    order users first appear). One catalog join for all users."""
    compiled, source = _compile(template)
    if "user_id" not in sample.columns:
        raise DataValidationError(
            "the profile sample lacks column user_id.",
            source="profile sample",
            hint="pass the output of audit_sdk.sampling.two_step_sample.",
        )
    users, item_ids, pairs = _joined_sample(sample, catalog, source="profile sample")
    grouped: dict[Any, tuple[list[ProfilePair], list[Any]]] = {}
    for user, item_id, pair in zip(users, item_ids, pairs, strict=True):
        entry = grouped.setdefault(user, ([], []))
        entry[0].append(pair)
        entry[1].append(item_id)
    return {
        user: _render(compiled, source, _template_context(user, user_pairs, user_items))
        for user, (user_pairs, user_items) in grouped.items()
    }


def render_profile_prompt(
    pairs: pd.DataFrame,
    catalog: Catalog,
    *,
    template: str | Path | jinja2.Template | None = None,
) -> str:
    """The profile prompt for one user's two-step sample.

    :param pairs: one user's sample (columns ``user_id, position, artist, item_id, title,
        plays``), as :func:`audit_sdk.sampling.two_step_sample` returns it.
    :param catalog: gives each item's genres, country and release year.
    :param template: ``None`` for the default template, a path to a jinja2 file, or a
        template loaded with :func:`load_profile_template`.
    """
    compiled, source = _compile(template)
    users, item_ids, profile_pairs = _joined_sample(pairs, catalog, source="profile sample")
    distinct = list(dict.fromkeys(users))
    if len(distinct) > 1:
        raise DataValidationError(
            f"the profile sample holds {len(distinct)} users; a prompt describes one.",
            source="profile sample",
            column="user_id",
            hint="use render_profile_prompts for many users.",
        )
    user_id = distinct[0] if distinct else None
    return _render(compiled, source, _template_context(user_id, profile_pairs, item_ids))
