"""Turn raw frames, as read from files, into the canonical tables of :mod:`audit_sdk.data.tables`.

Every loader goes through :func:`validate_dataset`: it checks everything first and builds the
tables last, so it either returns a complete :class:`~audit_sdk.data.tables.Dataset` or raises
:class:`~audit_sdk.errors.DataValidationError` naming the file, the 1-based data row (header
excluded; for JSONL, the line), the column and how to fix it. Nothing is half-loaded.

Canonical dtypes: ids are strings; ``plays``, ``duration_s`` and ``rating`` are float64;
``timestamp`` is ``datetime64[ns, UTC]``; a catalog's ``genres`` is a ``tuple[str, ...]`` per
item (most relevant first, lower-cased), ``country`` a string or missing and ``release_year`` a
nullable ``Int64``. Catalog and users are indexed by ``item_id`` and ``user_id``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from audit_sdk.data._column_values import (
    CATALOG_KEYS,
    INTERACTION_KEYS,
    USER_KEYS,
    RawTable,
    TimestampUnit,
    _attribute,
    _check_ages,
    _first,
    _genres,
    _ids,
    _numbers,
    _optional_text,
    _resolve_columns,
    _show,
    _text,
    _timestamps,
    decode_text,
)
from audit_sdk.data.tables import Catalog, Dataset, Interactions, Users

__all__ = [
    "CATALOG_KEYS",
    "INTERACTION_KEYS",
    "USER_KEYS",
    "RawTable",
    "TimestampUnit",
    "decode_text",
    "minimal_catalog",
    "validate_catalog",
    "validate_dataset",
    "validate_interactions",
    "validate_users",
]


# --------------------------------------------------------------------------------------
# column resolution


# --------------------------------------------------------------------------------------
# per-column parsing


# --------------------------------------------------------------------------------------
# tables


def validate_interactions(
    raw: RawTable,
    *,
    columns: Mapping[str, str] | None = None,
    timestamp_unit: TimestampUnit | None = None,
) -> pd.DataFrame:
    """Canonical interactions frame (RangeIndex aligned with ``raw``'s rows) or raise.

    ``plays`` defaults to 1 per row when the file has none. Timestamps without a time zone
    are taken as UTC; epoch numbers are seconds or, from 1e11 up, milliseconds unless
    ``timestamp_unit`` says. Duplicate rows are rows with the
    same user, item and timestamp; without timestamps, rows with the same user and item when
    the file has a plays column (aggregated data), none otherwise (each row is one event).
    """
    resolved = _resolve_columns(
        raw, columns, keys=INTERACTION_KEYS, required=("user_id", "item_id"), param="columns"
    )
    out: dict[str, Any] = {
        "user_id": _ids(raw, resolved["user_id"], "user_id").to_numpy(),
        "item_id": _ids(raw, resolved["item_id"], "item_id").to_numpy(),
    }
    if "plays" in resolved:
        out["plays"] = _numbers(raw, resolved["plays"], "plays", required=True, non_negative=True)
    else:
        out["plays"] = np.ones(len(raw.frame), dtype=float)
    if "timestamp" in resolved:
        out["timestamp"] = _timestamps(raw, resolved["timestamp"], timestamp_unit).to_numpy()
    if "duration_s" in resolved:
        out["duration_s"] = _numbers(
            raw, resolved["duration_s"], "duration_s", required=False, non_negative=True
        )
    if "rating" in resolved:
        out["rating"] = _numbers(
            raw, resolved["rating"], "rating", required=False, non_negative=False
        )
    frame = pd.DataFrame(out)
    for key in ("user_id", "item_id"):
        frame[key] = frame[key].astype(str)
    if "timestamp" in frame:
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).dt.as_unit("ns")

    if "timestamp" in frame:
        key_columns = ["user_id", "item_id", "timestamp"]
    elif "plays" in resolved:
        key_columns = ["user_id", "item_id"]
    else:
        key_columns = []
    if key_columns:
        duplicated = frame.duplicated(key_columns, keep=False).to_numpy()
        if duplicated.any():
            positions = np.flatnonzero(duplicated)
            groups = frame.iloc[positions].groupby(key_columns, sort=False).indices
            pairs = [(int(positions[idx[0]]), int(positions[idx[1]])) for idx in groups.values()]
            first, second = min(pairs, key=lambda p: p[1])
            described = ", ".join(f"{k} {frame[k].iloc[first]!s}" for k in key_columns)
            raise raw.error_at(
                second,
                resolved["item_id"],
                f"duplicate row: rows {raw.row_of(first)} and {raw.row_of(second)} have the "
                f"same {described} ({int(duplicated.sum())} rows are duplicates in all)",
                hint="remove the repeated rows, or add their plays into one row",
            )
    return frame


def _require_unique(raw: RawTable, ids: pd.Series, key: str, column: str, *, what: str) -> None:
    """Raise, naming both rows, when an id appears twice in a catalog or users table."""
    duplicated = ids.duplicated(keep=False).to_numpy()
    if not duplicated.any():
        return
    positions = np.flatnonzero(duplicated)
    value = ids.iloc[positions[0]]
    same = positions[(ids.iloc[positions] == value).to_numpy()]
    noun = "catalog item ids" if what == "catalog" else "user ids"
    raise raw.error_at(
        same[1],
        column,
        f"{key} {_show(value)} appears twice, in rows {raw.row_of(same[0])} and "
        f"{raw.row_of(same[1])}; {noun} must be unique",
        hint=f"remove or merge the duplicate {what} rows",
    )


def validate_catalog(
    raw: RawTable,
    *,
    columns: Mapping[str, str] | None = None,
    genre_separator: str = "|",
) -> pd.DataFrame:
    """Canonical catalog frame indexed by ``item_id`` or raise.

    ``title`` defaults to ``artist`` (artist-level data) or the item id, ``artist`` to
    ``"unknown"``. ``genres`` may be separator-joined text or a list per row. Columns the
    mapping does not name are kept as extra catalog columns.
    """
    resolved = _resolve_columns(
        raw, columns, keys=CATALOG_KEYS, required=("item_id",), param="catalog_columns"
    )
    item_ids = _ids(raw, resolved["item_id"], "item_id")
    _require_unique(raw, item_ids, "item_id", resolved["item_id"], what="catalog")
    n = len(raw.frame)
    artist = (
        _optional_text(raw, resolved["artist"], fill="unknown")
        if "artist" in resolved
        else np.full(n, "unknown", dtype=object)
    )
    if "title" in resolved:
        fallback = artist if "artist" in resolved else item_ids.to_numpy(dtype=object)
        title = _optional_text(raw, resolved["title"], fill=fallback)
    else:
        title = (artist if "artist" in resolved else item_ids.to_numpy(dtype=object)).copy()
    genres = _genres(raw, resolved["genres"], genre_separator) if "genres" in resolved else [()] * n
    country = (
        _optional_text(raw, resolved["country"], fill=None)
        if "country" in resolved
        else np.full(n, None, dtype=object)
    )
    if "release_year" in resolved:
        years = _numbers(
            raw, resolved["release_year"], "release_year", required=False, non_negative=True
        )
        fractional = ~np.isnan(years) & (np.mod(years, 1.0) != 0.0)
        if fractional.any():
            position = _first(fractional)
            raise raw.error_at(
                position,
                resolved["release_year"],
                f"release_year must be a whole year, got {_show(raw.frame[resolved['release_year']].iloc[position])}",
                hint="write the year as an integer such as 1999",
            )
        release_year = pd.array([None if np.isnan(y) else int(y) for y in years], dtype="Int64")
    else:
        release_year = pd.array([None] * n, dtype="Int64")

    frame = pd.DataFrame(
        {
            "title": _text(title),
            "artist": _text(artist),
            "genres": pd.Series(genres, dtype=object),
            "country": _text(country),
            "release_year": release_year,
        }
    )
    mapped = set(resolved.values())
    for extra in raw.frame.columns:
        if str(extra) not in mapped and str(extra) not in frame.columns:
            frame[str(extra)] = raw.frame[extra].reset_index(drop=True)
    frame.index = pd.Index(item_ids.to_numpy(), name="item_id").astype(str)
    return frame


def validate_users(raw: RawTable, *, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Canonical users frame indexed by ``user_id`` or raise.

    ``columns`` maps ``user_id`` (and optionally attribute names) to the file's columns;
    every other column is kept as a user attribute. Attribute columns whose values are all
    numbers become numeric (``Int64`` when whole), the rest stay text.
    """
    mapping = dict(columns or {})
    resolved = _resolve_columns(
        raw, mapping, keys=USER_KEYS, required=USER_KEYS, param="user_columns", other_keys=True
    )
    user_ids = _ids(raw, resolved["user_id"], "user_id")
    _require_unique(raw, user_ids, "user_id", resolved["user_id"], what="user")
    renamed = {column: key for key, column in resolved.items()}
    attributes: dict[str, Any] = {}
    for column in raw.frame.columns:
        name = renamed.get(str(column), str(column))
        if name == "user_id":
            continue
        attributes[name] = _attribute(raw.frame[column])
        if name == "age":
            _check_ages(raw, str(column), attributes[name])
    frame = pd.DataFrame(
        attributes, index=pd.Index(user_ids.to_numpy(), name="user_id").astype(str)
    )
    return frame


def minimal_catalog(item_ids: Sequence[str] | np.ndarray | pd.Index) -> pd.DataFrame:
    """A catalog with only what the interactions say: title = item id, artist unknown."""
    index = pd.Index(pd.unique(np.asarray(item_ids, dtype=object)), name="item_id").astype(str)
    n = len(index)
    frame = pd.DataFrame(
        {
            "title": _text(index.to_numpy()),
            "artist": _text(["unknown"] * n),
            "genres": pd.Series([()] * n, dtype=object),
            "country": _text([None] * n),
            "release_year": pd.array([None] * n, dtype="Int64"),
        }
    )
    frame.index = index
    return frame


def _check_references(
    interactions: pd.DataFrame,
    raw: RawTable,
    key: Literal["item_id", "user_id"],
    known: pd.Index,
    *,
    column: str,
    table: str,
    table_source: str,
) -> None:
    unknown = ~interactions[key].isin(known).to_numpy(dtype=bool)
    if not unknown.any():
        return
    position = _first(unknown)
    value = interactions[key].iloc[position]
    n_rows = int(unknown.sum())
    n_distinct = int(interactions[key][unknown].nunique())
    raise raw.error_at(
        position,
        column,
        f"{key} {_show(value)} is not in the {table} ({table_source}); {n_rows} interaction rows "
        f"({n_distinct} distinct {key}s) reference {key}s missing from the {table}",
        hint=f"add the missing {key}s to the {table}, drop those interactions, or check that "
        f"`{'columns'}.{key}` maps the right column",
    )


def validate_dataset(
    interactions: RawTable,
    *,
    name: str,
    catalog: RawTable | None = None,
    users: RawTable | None = None,
    columns: Mapping[str, str] | None = None,
    catalog_columns: Mapping[str, str] | None = None,
    user_columns: Mapping[str, str] | None = None,
    genre_separator: str = "|",
    timestamp_unit: TimestampUnit | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Dataset:
    """Validate every table, check that they agree, and only then build the :class:`Dataset`.

    Without a catalog, a minimal one is derived from the interaction item ids (title = id,
    artist unknown) and ``metadata["notes"]`` says so; without users, a users table with the
    interaction user ids and no attributes.
    """
    notes: list[str] = list((metadata or {}).get("notes", []))
    for raw in (interactions, catalog, users):
        if raw is not None:
            notes.extend(raw.notes)
    interaction_frame = validate_interactions(
        interactions, columns=columns, timestamp_unit=timestamp_unit
    )
    if catalog is not None:
        catalog_frame = validate_catalog(
            catalog, columns=catalog_columns, genre_separator=genre_separator
        )
        item_column = dict(columns or {}).get("item_id", "item_id")
        _check_references(
            interaction_frame,
            interactions,
            "item_id",
            catalog_frame.index,
            column=item_column,
            table="catalog",
            table_source=catalog.source,
        )
    else:
        catalog_frame = minimal_catalog(interaction_frame["item_id"].to_numpy())
        notes.append(
            "no catalog given: a minimal catalog was derived from the interaction item ids "
            "(title = item id, artist unknown, no genres)"
        )
    if users is not None:
        user_frame = validate_users(users, columns=user_columns)
        user_column = dict(columns or {}).get("user_id", "user_id")
        _check_references(
            interaction_frame,
            interactions,
            "user_id",
            user_frame.index,
            column=user_column,
            table="users table",
            table_source=users.source,
        )
    else:
        user_frame = pd.DataFrame(
            index=pd.Index(
                pd.unique(interaction_frame["user_id"].to_numpy()), name="user_id"
            ).astype(str)
        )
    meta = dict(metadata or {})
    if notes:
        meta["notes"] = notes
    return Dataset(
        name=name,
        interactions=Interactions(interaction_frame),
        catalog=Catalog(catalog_frame),
        users=Users(user_frame),
        metadata=meta,
    )
