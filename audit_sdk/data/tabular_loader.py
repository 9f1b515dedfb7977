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
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

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

__all__ = [
    "FileFormat",
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


class TabularParams(PluginParams):
    interactions: str = Field(description="path of the interactions file")
    catalog: str | None = Field(
        default=None, description="path of the catalog file (one row per item)"
    )
    users: str | None = Field(default=None, description="path of the users file (one row per user)")
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
        options: dict[str, Any] = {
            "format": params.format,
            "encoding": params.encoding,
            "delimiter": params.delimiter,
        }
        interactions = read_table(params.interactions, **options)
        catalog = read_table(params.catalog, **options) if params.catalog else None
        users = read_table(params.users, **options) if params.users else None
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
            catalog_columns=params.catalog_columns,
            user_columns=params.user_columns,
            genre_separator=params.genre_separator,
            timestamp_unit=params.timestamp_unit,
            metadata=metadata,
        )


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
) -> RawTable:
    """Read one file as it is (text columns stay text) for validation, or raise."""
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
        return _read_parquet(file, source)
    data = file.read_bytes()
    if file.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DataValidationError(
                f"cannot decompress gzip file: {exc}", source=source, hint="re-create the file"
            ) from None
    if chosen == "jsonl":
        return _read_jsonl(data, source, encoding)
    separator = delimiter or ("\t" if chosen == "tsv" else ",")
    return read_delimited(data, source=source, encoding=encoding, delimiter=separator)


def read_delimited(data: bytes, *, source: str, encoding: str, delimiter: str) -> RawTable:
    """Parse delimited text with a header row; every cell stays text. Blank lines are skipped
    but counted, so row numbers match the file."""
    text = decode_text(data, source=source, encoding=encoding, header_lines=1)
    if not text.strip():
        raise DataValidationError("the file is empty", source=source, hint="write a header row")
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            engine="c",
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
    frame.columns = [str(c).strip() for c in frame.columns]
    blank = (frame == "").all(axis=1).to_numpy(dtype=bool) if len(frame.columns) else None
    rows = np.arange(1, len(frame) + 1)
    if blank is not None and blank.any():
        frame = frame.loc[~blank].reset_index(drop=True)
        rows = rows[~blank]
    return RawTable(frame, source, rows)


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
