"""Load interactions (and optionally a catalog and users) from CSV, TSV, Parquet or JSONL.

An audit config uses it as::

    dataset:
      loader: tabular
      params:
        interactions: data/streams.csv
        catalog: data/tracks.csv
        columns: {user_id: listener, item_id: track, timestamp: ts}
        catalog_columns: {item_id: track, genres: tags}
        timestamp_unit: ms

The format comes from the file extension (``.csv``, ``.tsv``/``.tab``, ``.parquet``/``.pq``,
``.jsonl``/``.ndjson``, each optionally ``.gz``) unless ``format`` is given. Every table goes
through :func:`audit_sdk.data.validation.validate_dataset`.

Files as they come (MovieLens 100K: a headerless tab-separated ``u.data``, pipe-separated
``u.user`` and ``u.item`` in latin-1 with 19 one-hot genre columns)::

    params:
      interactions: u.data
      users: u.user
      catalog: u.item
      files:
        interactions: {format: tsv, header: false, names: [user_id, item_id, rating, timestamp]}
        users: {format: csv, delimiter: "|", header: false,
                names: [user_id, age, gender, occupation, zip]}
        catalog: {format: csv, delimiter: "|", encoding: latin-1, header: false,
                  names: [item_id, title, release, video, url, unknown, Action, ..., Western]}
      genre_columns: {between: [unknown, Western]}   # one-hot columns -> genres

A header cell left empty (pandas would call it ``Unnamed: 4``) is never a silent attribute: an
empty unnamed column is dropped with a note, one with values is an error naming its position.
A header that names a column twice is an error.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from audit_sdk.data._table_files import FileFormat, detect_format, read_delimited, read_table
from audit_sdk.data.column_rules import ColumnSelector, select_columns
from audit_sdk.data.tables import Dataset
from audit_sdk.data.validation import (
    CATALOG_KEYS,
    INTERACTION_KEYS,
    RawTable,
    validate_dataset,
)
from audit_sdk.errors import DataValidationError
from audit_sdk.interfaces import DatasetLoader, PluginParams
from audit_sdk.interfaces._params import PathParam

__all__ = [
    "FileFormat",
    "FileOptions",
    "TabularLoader",
    "TabularParams",
    "detect_format",
    "read_delimited",
    "read_table",
]


FileRole = Literal["interactions", "catalog", "users"]


class FileOptions(PluginParams):
    """How one file is written, where it differs from the loader-wide settings."""

    format: FileFormat | None = Field(None, description="csv, tsv, parquet or jsonl")
    delimiter: str | None = Field(None, description="field delimiter of CSV/TSV text")
    encoding: str | None = Field(None, description="text encoding, e.g. latin-1")
    header: bool = Field(True, description="false: the file has no header row (give names)")
    names: list[str] | None = Field(
        None, description="column names, in file order (required without a header)"
    )

    @field_validator("names")
    @classmethod
    def _unique_names(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            seen = [n for i, n in enumerate(value) if n in value[:i]]
            if seen:
                raise ValueError(f"names lists {seen[0]!r} twice")
        return value


class TabularParams(PluginParams):
    interactions: Annotated[str, PathParam()] = Field(description="path of the interactions file")
    catalog: Annotated[str, PathParam()] | None = Field(
        default=None, description="path of the catalog file (one row per item)"
    )
    users: Annotated[str, PathParam()] | None = Field(
        default=None, description="path of the users file (one row per user)"
    )
    files: dict[FileRole, FileOptions] = Field(
        default_factory=dict,
        description="per file (interactions, catalog, users): format, delimiter, encoding, "
        "header and names, overriding the loader-wide settings",
    )
    genre_columns: ColumnSelector | None = Field(
        None,
        description="one-hot genre columns of the catalog ({between: [A, B]}, {prefix: ...}, "
        "{regex: ...} or {columns: [...]}): an item's genres are the columns holding 1",
    )
    format: FileFormat | None = Field(
        default=None, description="file format of every file; default: from each file's extension"
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="canonical name -> interactions column (user_id, item_id, plays, timestamp, "
        "duration_s, rating); unmapped names are looked up as-is",
    )
    catalog_columns: dict[str, str] = Field(
        default_factory=dict,
        description="canonical name -> catalog column (item_id, title, artist, genres, country, "
        "release_year); other catalog columns are kept as extras",
    )
    user_columns: dict[str, str] = Field(
        default_factory=dict,
        description="user_id (and attribute names) -> users column; other columns are kept as "
        "attributes",
    )
    genre_separator: str = Field(
        default="|", description="separator of genres within one catalog cell"
    )
    encoding: str = Field(default="utf-8", description="text encoding of CSV/TSV/JSONL files")
    timestamp_unit: Literal["s", "ms", "iso"] | None = Field(
        default=None,
        description="how timestamps are written; default: detect epoch numbers or ISO 8601",
    )
    delimiter: str | None = Field(
        default=None, description="field delimiter override for CSV/TSV (default ',' or tab)"
    )

    @field_validator("columns")
    @classmethod
    def _interaction_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_keys(value, INTERACTION_KEYS, "columns")

    @field_validator("catalog_columns")
    @classmethod
    def _catalog_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_keys(value, CATALOG_KEYS, "catalog_columns")


def _check_keys(value: dict[str, str], allowed: tuple[str, ...], param: str) -> dict[str, str]:
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {param}; allowed: {list(allowed)}")
    return value


class TabularLoader(DatasetLoader):
    """Interactions, catalog and users from CSV/TSV/Parquet/JSONL files with a column mapping."""

    name: ClassVar[str] = "tabular"
    description: ClassVar[str] = (
        "CSV/TSV/Parquet/JSONL interactions with optional catalog and users, with column mapping"
    )
    Params: ClassVar[type[PluginParams]] = TabularParams

    def load(self) -> Dataset:
        params = self.params
        assert isinstance(params, TabularParams)

        def options(role: FileRole) -> dict[str, Any]:
            own = params.files.get(role, FileOptions())
            if not own.header and not own.names:
                raise DataValidationError(
                    f"files.{role}.header is false but no names are given",
                    source=str(getattr(params, role)),
                    hint=f"list the columns in files.{role}.names, in file order",
                )
            return {
                "format": own.format or params.format,
                "encoding": own.encoding or params.encoding,
                "delimiter": own.delimiter or params.delimiter,
                "header": own.header,
                "names": own.names,
            }

        for role in params.files:
            if role != "interactions" and getattr(params, role) is None:
                raise DataValidationError(
                    f"files.{role} is set but there is no {role} file",
                    source="tabular loader params",
                    hint=f"set `{role}:` to the file's path, or drop files.{role}",
                )
        interactions = read_table(params.interactions, **options("interactions"))
        catalog = read_table(params.catalog, **options("catalog")) if params.catalog else None
        users = read_table(params.users, **options("users")) if params.users else None
        catalog_columns = dict(params.catalog_columns)
        if params.genre_columns is not None:
            if catalog is None:
                raise DataValidationError(
                    "genre_columns needs a catalog file",
                    source="tabular loader params",
                    hint="set `catalog:`, or drop genre_columns",
                )
            catalog = one_hot_genres(
                catalog, params.genre_columns, separator=params.genre_separator
            )
            catalog_columns["genres"] = _GENRES_COLUMN
        paths = {
            "interactions": params.interactions,
            "catalog": params.catalog,
            "users": params.users,
        }
        metadata: dict[str, Any] = {
            "loader": self.name,
            "sources": {k: str(Path(v).expanduser().resolve()) for k, v in paths.items() if v},
            "sha256": {k: _sha256(Path(v).expanduser()) for k, v in paths.items() if v},
        }
        return validate_dataset(
            interactions,
            name=_stem(Path(params.interactions)),
            catalog=catalog,
            users=users,
            columns=params.columns,
            catalog_columns=catalog_columns,
            user_columns=params.user_columns,
            genre_separator=params.genre_separator,
            timestamp_unit=params.timestamp_unit,
            metadata=metadata,
        )


_GENRES_COLUMN = "genres (from one-hot columns)"
_TRUE = frozenset({"1", "1.0", "true", "yes", "y", "t"})
_FALSE = frozenset({"0", "0.0", "false", "no", "n", "f", ""})


def one_hot_genres(raw: RawTable, selector: ColumnSelector, *, separator: str) -> RawTable:
    """The catalog with the selected 0/1 columns folded into one genres column (file order),
    or raise naming the row and column of a cell that is neither 0 nor 1."""
    pairs = select_columns(
        selector, list(raw.frame.columns), source=raw.source, param="genre_columns"
    )
    frame = raw.frame
    flags = {}
    for column, level in pairs:
        text = frame[column].astype(str).str.strip().str.lower()
        bad = ~(text.isin(_TRUE) | text.isin(_FALSE))
        if bool(bad.any()):
            position = int(np.flatnonzero(bad.to_numpy())[0])
            raise raw.error_at(
                position,
                column,
                f"a one-hot genre column must hold 0 or 1, got {frame[column].iloc[position]!r}",
                hint="check genre_columns: it should select only the 0/1 genre columns",
            )
        flags[level] = text.isin(_TRUE).to_numpy()
    levels = list(flags)
    genres = [
        separator.join(level for level in levels if flags[level][i]) for i in range(len(frame))
    ]
    kept = frame.drop(columns=[c for c, _ in pairs])
    kept[_GENRES_COLUMN] = genres
    return RawTable(kept, raw.source, raw.rows, list(raw.notes))


def _stem(path: Path) -> str:
    name = path.name
    if name.endswith(".gz"):
        name = name[:-3]
    return Path(name).stem


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
