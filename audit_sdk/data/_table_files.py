"""Reading one table file (CSV, TSV, Parquet or JSONL, optionally gzipped) into a
:class:`~audit_sdk.data.validation.RawTable`: the format from the extension, delimited text with
header checks (unnamed and duplicate columns), JSON lines and Parquet, each problem a
:class:`~audit_sdk.errors.DataValidationError` naming the file and row. Re-exported by
:mod:`audit_sdk.data.tabular_loader`.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from audit_sdk.data.validation import (
    RawTable,
    decode_text,
)
from audit_sdk.errors import DataValidationError

__all__ = ["FileFormat", "detect_format", "read_delimited", "read_table"]

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
# the loader's logger, so the notes keep the name they had before the readers moved here
logger = logging.getLogger("audit_sdk.data.tabular_loader")


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
