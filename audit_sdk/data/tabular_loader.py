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

import csv
import gzip
import hashlib
import io
import json
import logging
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from audit_sdk.data.column_rules import ColumnSelector, select_columns
from audit_sdk.data.tables import Dataset
from audit_sdk.data.validation import (
    CATALOG_KEYS,
    INTERACTION_KEYS,
    RawTable,
    decode_text,
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

FileFormat = Literal["csv", "tsv", "parquet", "jsonl"]

_SUFFIX_FORMATS: dict[str, FileFormat] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_PARSER_LINE = re.compile(r"line (\d+)")
logger = logging.getLogger(__name__)


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
            raise DataValidationError(
                f"a one-hot genre column must hold 0 or 1, got {frame[column].iloc[position]!r}",
                source=raw.source,
                row=raw.row_of(position),
                column=column,
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


def detect_format(path: str | Path) -> FileFormat:
    """The format implied by the extension (``.gz`` is looked through) or raise."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = Path(name).suffix
    if suffix not in _SUFFIX_FORMATS:
        raise DataValidationError(
            f"cannot tell the file format from the extension {suffix or '(none)'!r}; known: "
            f"{', '.join(sorted(_SUFFIX_FORMATS))}",
            source=str(path),
            hint="set `format:` (csv, tsv, parquet or jsonl) in the loader params",
        )
    return _SUFFIX_FORMATS[suffix]


def read_table(
    path: str | Path,
    *,
    format: FileFormat | None = None,
    encoding: str = "utf-8",
    delimiter: str | None = None,
    header: bool = True,
    names: list[str] | None = None,
) -> RawTable:
    """Read one file as it is (text columns stay text) for validation, or raise.

    ``names`` names the columns of a file without a header (``header=False``), or renames
    those of one with a header, in file order."""
    source = str(path)
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataValidationError(
            "file not found" if not file.exists() else "not a file",
            source=source,
            hint=f"check the path (relative paths are resolved from {Path.cwd()})",
        )
    chosen = format or detect_format(file)
    if chosen == "parquet":
        return _renamed(_read_parquet(file, source), names)
    data = file.read_bytes()
    if file.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DataValidationError(
                f"cannot decompress gzip file: {exc}", source=source, hint="re-create the file"
            ) from None
    if chosen == "jsonl":
        return _renamed(_read_jsonl(data, source, encoding), names)
    separator = delimiter or ("\t" if chosen == "tsv" else ",")
    return read_delimited(
        data, source=source, encoding=encoding, delimiter=separator, header=header, names=names
    )


def _renamed(raw: RawTable, names: list[str] | None) -> RawTable:
    if names is None:
        return raw
    if len(names) != len(raw.frame.columns):
        raise DataValidationError(
            f"names lists {len(names)} columns but the file has {len(raw.frame.columns)} "
            f"({raw.column_list})",
            source=raw.source,
            hint="give one name per column, in file order",
        )
    frame = raw.frame.set_axis(names, axis=1)
    return RawTable(frame, raw.source, raw.rows, list(raw.notes))


def read_delimited(
    data: bytes,
    *,
    source: str,
    encoding: str,
    delimiter: str,
    header: bool = True,
    names: list[str] | None = None,
) -> RawTable:
    """Parse delimited text, with a header row unless ``header`` is false (then ``names``
    names the columns); every cell stays text. Blank lines are skipped but counted, so row
    numbers match the file. A header naming a column twice is an error; an unnamed column is
    dropped with a note when empty and an error otherwise."""
    text = decode_text(data, source=source, encoding=encoding, header_lines=1 if header else 0)
    if not text.strip():
        raise DataValidationError("the file is empty", source=source, hint="write a header row")
    header_cells = _header_cells(text, delimiter) if header else None
    if header_cells is not None:
        _check_header(header_cells, source)
    if not header and not names:
        raise DataValidationError(
            "a file without a header needs names",
            source=source,
            hint="list the columns in the loader's files.<role>.names, in file order",
        )
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            engine="c",
            header=0 if header else None,
            names=None if header else names,
            index_col=False,
        )
    except pd.errors.ParserError as exc:
        match = _PARSER_LINE.search(str(exc))
        line = int(match.group(1)) if match else None
        raise DataValidationError(
            f"cannot parse as {'tab' if delimiter == chr(9) else repr(delimiter)}-separated "
            f"text: {str(exc).strip()}",
            source=source,
            row=line - 1 if line and line > 1 else None,
            hint="check that every row has as many fields as the header (quote fields that "
            "contain the delimiter), or set `delimiter:` in the loader params",
        ) from None
    notes: list[str] = []
    if header_cells is not None:
        frame, notes = _drop_unnamed(frame, header_cells, source)
    frame.columns = [str(c).strip() for c in frame.columns]
    blank = (frame == "").all(axis=1).to_numpy(dtype=bool) if len(frame.columns) else None
    rows = np.arange(1, len(frame) + 1)
    if blank is not None and blank.any():
        frame = frame.loc[~blank].reset_index(drop=True)
        rows = rows[~blank]
    raw = RawTable(frame, source, rows, notes)
    if header and names is not None:
        return _renamed(raw, names)
    return raw


def _header_cells(text: str, delimiter: str) -> list[str]:
    first = next((line for line in text.splitlines() if line.strip()), "")
    cells = next(csv.reader([first], delimiter=delimiter), [])
    return [c.strip() for c in cells]


def _check_header(cells: list[str], source: str) -> None:
    seen: dict[str, int] = {}
    for position, name in enumerate(cells, start=1):
        if not name:
            continue
        if name in seen:
            raise DataValidationError(
                f"the header names column {name!r} twice (columns {seen[name]} and {position}); "
                "one of them would be silently renamed or dropped",
                source=source,
                row=0,
                column=name,
                hint="give every column its own name (or read the file with header: false "
                "and names)",
            )
        seen[name] = position


def _drop_unnamed(
    frame: pd.DataFrame, cells: list[str], source: str
) -> tuple[pd.DataFrame, list[str]]:
    notes: list[str] = []
    drop = []
    for position, (column, name) in enumerate(zip(frame.columns, cells, strict=False), start=1):
        if name:
            continue
        filled = int((frame[column].astype(str).str.strip() != "").sum())
        if filled:
            raise DataValidationError(
                f"column {position} has no name in the header but holds {filled} values; it "
                "would become an attribute called " + repr(str(column)),
                source=source,
                row=0,
                column=str(column),
                hint="name it in the header (or read with header: false and names), or remove it",
            )
        drop.append(column)
        notes.append(f"{source}: column {position} has no name and no values; dropped")
    for note in notes:
        logger.warning(note)
    return frame.drop(columns=drop), notes


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _read_jsonl(data: bytes, source: str, encoding: str) -> RawTable:
    text = decode_text(data, source=source, encoding=encoding, header_lines=0)
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataValidationError(
                f"not valid JSON: {exc.msg} (character {exc.colno})",
                source=source,
                row=number,
                hint="write one JSON object per line",
            ) from None
        if not isinstance(record, dict):
            raise DataValidationError(
                f"expected a JSON object per line, got {type(record).__name__}",
                source=source,
                row=number,
                hint='write one object per line, e.g. {"user_id": "u1", "item_id": "t1"}',
            )
        if "\\ud" in line.lower():  # an escaped surrogate: only a pair is a character
            for key, value in record.items():
                if isinstance(value, str) and _LONE_SURROGATE.search(value):
                    raise DataValidationError(
                        "a lone UTF-16 surrogate escape (e.g. \\ud800) is not a character",
                        source=source,
                        row=number,
                        column=str(key),
                        hint="write the character itself, or a complete surrogate pair",
                    )
        records.append(record)
        lines.append(number)
    if not records:
        raise DataValidationError("the file has no records", source=source)
    frame = pd.DataFrame.from_records(records)
    return RawTable(frame, source, np.asarray(lines))


def _read_parquet(file: Path, source: str) -> RawTable:
    try:
        frame = pd.read_parquet(file)
    except ImportError:
        raise DataValidationError(
            "reading Parquet needs pyarrow",
            source=source,
            hint="pip install 'audit-sdk[parquet]'",
        ) from None
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise DataValidationError(
            f"cannot read as Parquet: {exc}",
            source=source,
            hint="check that the file is Parquet, or set `format:` in the loader params",
        ) from None
    frame = frame.reset_index(drop=isinstance(frame.index, pd.RangeIndex))
    frame.columns = [str(c) for c in frame.columns]
    return RawTable(frame, source)
