"""Reading and validating a logged-outputs file: the parameters, the column mapping applied,
typed columns, and the report of rows kept and dropped (used by
:class:`audit_sdk.adapters.logged_outputs_adapter.LoggedOutputsAdapter`)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from audit_sdk.adapters.logged_columns import ShareRule, map_columns, matches_any
from pydantic import Field

from audit_sdk.data.tabular_loader import read_table
from audit_sdk.errors import DataValidationError
from audit_sdk.interfaces._params import PathParam, PluginParams

__all__ = [
    "SHARE_PREFIXES",
    "LoggedOutputsParams",
    "LoggedRowReport",
    "load_logged_outputs",
    "read_logged_outputs",
]

REQUIRED = ("user_id", "model")
SHARE_PREFIXES = ("share:", "share_country:")
_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_FORMATS.update({".jsonl": "jsonl", ".ndjson": "jsonl"})


class LoggedOutputsParams(PluginParams):
    path: Annotated[str, PathParam()] = Field(description="the logged outputs file")
    format: Literal["auto", "csv", "tsv", "parquet", "jsonl"] = Field(
        "auto", description="file format; auto: from the file extension"
    )
    model: str | None = Field(
        None, description="which logged model recommend/generate serve (needed if several)"
    )
    window: str | None = Field(
        None, description="which window recommend serves (needed if the model has several)"
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="canonical name (user_id, model, window, prompt, text, items, rating) -> "
        "the file's column; unmapped names are looked up as they are",
    )
    share_columns: list[ShareRule] = Field(
        default_factory=list,
        description="rules that make columns shares: {between: [A, B]}, {prefix: 'g_'}, "
        "{regex: '...'} or {columns: [...]}, each with family genre|country and percent",
    )
    numeric_columns: list[str] = Field(
        default_factory=list,
        description="extra columns (shell patterns) that must be numbers; an error names the "
        "row and column of a value that is not",
    )
    model_name: str | None = Field(
        None, description="the model of every row, for a file without a model column"
    )
    drop_incomplete: bool = Field(
        False,
        description="drop rows with no user_id, or neither text nor items, instead of failing "
        "(row_report says how many)",
    )
    users: Annotated[str, PathParam()] | None = Field(
        None, description="per-user table (CSV/TSV/Parquet/JSONL) joined by user_id"
    )
    user_columns: dict[str, str] = Field(
        default_factory=dict, description="user_id -> the users table's column"
    )
    longterm: Annotated[str, PathParam()] | None = Field(
        None, description="long-term shares table (one row per user) joined by user_id"
    )
    longterm_columns: list[ShareRule] = Field(
        default_factory=list,
        description="share rules for the long-term table (default: its share:* columns)",
    )
    longterm_prefix: str = Field(
        "longterm_",
        description="prefix put before the long-term share names (longterm_share:rock); use "
        "'' to make them the exposures the causal detector reads",
    )
    delimiter: str | None = Field(None, description="field delimiter of CSV/TSV files")
    encoding: str = Field("utf-8", description="text encoding of CSV/TSV/JSONL files")


@dataclass(frozen=True)
class LoggedRowReport:
    """What loading kept: rows read, kept, and dropped per reason; rows per model."""

    source: str
    rows_read: int
    rows_kept: int
    dropped: dict[str, int]
    models: dict[str, int]

    def summary(self) -> str:
        text = f"{self.source}: {self.rows_kept} of {self.rows_read} rows kept"
        if self.dropped:
            text += " (dropped: " + ", ".join(f"{n} {r}" for r, n in self.dropped.items()) + ")"
        return text


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _read_table(
    path: Path, fmt: str, *, delimiter: str | None = None, encoding: str = "utf-8"
) -> tuple[pd.DataFrame, list[int]]:
    """The raw table and each record's 1-based row (line, for JSON lines), read by the same
    reader as the tabular dataset loader (so errors read the same)."""
    if not path.is_file():
        raise DataValidationError("no such logged-outputs file.", source=str(path))
    raw = read_table(path, format=fmt, delimiter=delimiter, encoding=encoding)  # type: ignore[arg-type]
    # An empty cell is a missing value here (cells may also hold JSON lists).
    frame = raw.frame.mask(raw.frame.map(lambda v: isinstance(v, str) and v == ""))
    return frame, [raw.row_of(i) for i in range(len(raw.frame))]


def _parse_items(value: Any, *, source: str, row: int) -> list[str] | None:
    if _missing(value):
        return None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataValidationError(
                    f"not a valid JSON list ({exc.msg}, character {exc.colno}): {text[:60]!r}.",
                    source=source,
                    row=row,
                    column="items",
                    hint='write ["id1", "id2"] or id1|id2.',
                ) from None
        else:
            value = [part.strip() for part in text.split("|")] if text else []
            if any(part == "" for part in value):
                raise DataValidationError(
                    f"an empty item id in {text[:60]!r}.",
                    source=source,
                    row=row,
                    column="items",
                )
    if not isinstance(value, (list, tuple)):
        raise DataValidationError(
            f"items must be a list, not {type(value).__name__}.",
            source=source,
            row=row,
            column="items",
        )
    items = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise DataValidationError(
                f"item ids must be strings or integers, not {type(item).__name__} ({item!r}).",
                source=source,
                row=row,
                column="items",
            )
        items.append(str(item))
    seen: set[str] = set()
    for item in items:
        if item in seen:
            raise DataValidationError(
                f"item {item!r} appears twice in one list.",
                source=source,
                row=row,
                column="items",
            )
        seen.add(item)
    return items


def _to_id(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_logged_outputs(
    path: str | Path,
    *,
    format: Literal["auto", "csv", "tsv", "parquet", "jsonl"] = "auto",
    **options: Any,
) -> pd.DataFrame:
    """Read and validate a logged-outputs file (``options``: the other
    :class:`LoggedOutputsParams` fields, e.g. ``columns``, ``share_columns``).

    Returns one row per record with ``user_id, model, window`` (strings), ``prompt``,
    ``text`` (``None`` where absent), ``items`` (a list or ``None``), ``rating`` (float or NaN)
    and any extra columns, plus ``source_row`` (the record's row or line in the file).
    """
    params = LoggedOutputsParams(path=str(path), format=format, **options)
    return load_logged_outputs(params)[0]


def load_logged_outputs(params: LoggedOutputsParams) -> tuple[pd.DataFrame, LoggedRowReport]:
    """The validated log and the report of rows kept and dropped."""
    path = Path(params.path)
    source = str(path)
    fmt = params.format if params.format != "auto" else _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataValidationError(
            f"cannot tell the format from the extension {path.suffix!r}.",
            source=source,
            hint="use .csv, .tsv, .parquet or .jsonl, or set params.format.",
        )
    frame, rows = _read_table(path, fmt, delimiter=params.delimiter, encoding=params.encoding)
    frame = frame.copy()
    rename, percent = map_columns(
        list(frame.columns), columns=params.columns, share_rules=params.share_columns, source=source
    )
    percent_targets = {rename[c] for c in percent}
    frame = frame.rename(columns=rename)
    if "output" in frame.columns and "text" not in frame.columns:
        frame = frame.rename(columns={"output": "text"})
    if "model" not in frame.columns and params.model_name is not None:
        frame["model"] = params.model_name
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"missing column(s) {', '.join(missing)} (found: "
            f"{', '.join(map(str, frame.columns)) or 'none'}).",
            source=source,
            hint="map them with params.columns (e.g. {user_id: uid, model: llm}), or set "
            "params.model_name for a file of one model.",
        )
    if "text" not in frame.columns and "items" not in frame.columns:
        raise DataValidationError(
            f"needs a column 'text' (or 'output') with generated text, or 'items' with "
            f"recommendation lists (found: {', '.join(map(str, frame.columns))}).",
            source=source,
            hint="map yours with params.columns, e.g. {text: profile}.",
        )
    rows_read = len(frame)
    if rows_read == 0:
        raise DataValidationError("the file holds no rows.", source=source)

    out: dict[str, list[Any]] = {
        "user_id": [],
        "model": [],
        "window": [],
        "prompt": [],
        "text": [],
        "items": [],
    }
    kept: list[int] = []
    dropped: dict[str, int] = {}
    has_window = "window" in frame.columns
    has_prompt = "prompt" in frame.columns
    has_text = "text" in frame.columns
    has_items = "items" in frame.columns
    for position, record in enumerate(frame.to_dict("records")):
        row = rows[position]
        problem = None
        for column in ("user_id", "model"):
            value = record[column]
            if isinstance(value, (dict, list, tuple, np.ndarray, bool)):
                raise DataValidationError(
                    f"{column} must be text or an integer, not {type(value).__name__} "
                    f"({str(value)[:60]!r}).",
                    source=source,
                    row=row,
                    column=column,
                    hint='write the id itself (e.g. "u1", not {"id": "u1"}).',
                )
            if _missing(value) or str(value).strip() == "":
                problem = (f"{column} is empty.", column, f"no {column}")
                break
        window = record["window"] if has_window else "all"
        if problem is None and (_missing(window) or str(window).strip() == ""):
            problem = ("window is empty.", "window", "no window")
        text = record["text"] if has_text else None
        if not _missing(text) and not isinstance(text, str):
            raise DataValidationError(
                f"text must be a string, not {type(text).__name__}.",
                source=source,
                row=row,
                column="text",
            )
        items = _parse_items(record["items"], source=source, row=row) if has_items else None
        if problem is None and _missing(text) and items is None:
            which = "text" if has_text else "items"
            problem = ("the row has neither text nor items.", which, "neither text nor items")
        if problem is not None:
            message, column, reason = problem
            if not params.drop_incomplete:
                raise DataValidationError(
                    message,
                    source=source,
                    row=row,
                    column=column,
                    hint="fix the row, or set params.drop_incomplete: true to drop such rows.",
                )
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        prompt = record["prompt"] if has_prompt else None
        kept.append(position)
        out["user_id"].append(_to_id(record["user_id"]))
        out["model"].append(str(record["model"]).strip())
        out["window"].append(str(window).strip())
        out["prompt"].append(None if _missing(prompt) else str(prompt))
        out["text"].append(None if _missing(text) else text)
        out["items"].append(items)
    if not kept:
        raise DataValidationError(
            f"no row is usable: all {rows_read} rows were dropped ("
            + ", ".join(f"{n} {r}" for r, n in dropped.items())
            + ").",
            source=source,
            hint="check the columns mapping (user_id, model, text or items).",
        )

    frame = frame.iloc[kept].reset_index(drop=True)
    rows = [rows[i] for i in kept]
    table = pd.DataFrame(out, dtype=object)
    table["source_row"] = rows
    if "rating" in frame.columns:
        table["rating"] = _numeric_column(frame, "rating", rows, source=source)
    for column in frame.columns:
        if column in table.columns or column in ("output",):
            continue
        name = str(column)
        if name.startswith(SHARE_PREFIXES):
            values = _numeric_column(frame, column, rows, source=source)
            if column in percent_targets:
                values = values / 100.0
            bad = values.notna() & ((values < 0) | (values > 1))
            if bool(bad.any()):
                where = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataValidationError(
                    f"a share must lie in [0, 1], got {values.iloc[where]:g}.",
                    source=source,
                    row=rows[where],
                    column=name,
                    hint="for percentages set percent: true on its share_columns rule.",
                )
            table[column] = values
        elif matches_any(name, params.numeric_columns):
            table[column] = _numeric_column(frame, column, rows, source=source)
        else:
            table[column] = _typed(frame[column])
    _reject_duplicates(table, rows, source)
    report = LoggedRowReport(
        source=source,
        rows_read=rows_read,
        rows_kept=len(table),
        dropped=dropped,
        models={str(k): int(v) for k, v in table["model"].value_counts(sort=False).items()},
    )
    return table, report


def _typed(values: pd.Series) -> Any:
    """A column whose every present value is a number, as floats; otherwise as it is."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy()
    present = values.map(lambda v: not _missing(v) and str(v).strip() != "")
    if not bool(present.any()):
        return values.to_numpy()
    numeric = pd.to_numeric(values.where(present), errors="coerce")
    if bool(numeric[present].notna().all()):
        return numeric.astype(float).to_numpy()
    return values.to_numpy()


def _reject_duplicates(table: pd.DataFrame, rows: list[int], source: str) -> None:
    keys = table[["user_id", "model", "window"]]
    duplicated = keys.duplicated(keep=False)
    if bool(duplicated.any()):
        first = keys[duplicated].iloc[0]
        same = table.index[
            (keys["user_id"] == first["user_id"])
            & (keys["model"] == first["model"])
            & (keys["window"] == first["window"])
        ]
        raws = [str(rows[i]) for i in same]
        raise DataValidationError(
            f"user {first['user_id']!r}, model {first['model']!r}, window "
            f"{first['window']!r} appears {len(raws)} times (rows {', '.join(raws)}).",
            source=source,
            row=rows[same[1]],
            hint="keep one output per (user_id, model, window).",
        )


def _numeric_column(frame: pd.DataFrame, column: str, rows: list[int], *, source: str) -> pd.Series:
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").astype(float)
    bad = raw.map(lambda v: not _missing(v) and str(v).strip() != "") & values.isna()
    if bool(bad.any()):
        where = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataValidationError(
            f"{raw.iloc[where]!r} is not a number.",
            source=source,
            row=rows[where],
            column=column,
        )
    infinite = np.isinf(values.to_numpy())
    if bool(infinite.any()):
        where = int(np.flatnonzero(infinite)[0])
        raise DataValidationError(
            "infinite values are not allowed.", source=source, row=rows[where], column=column
        )
    return values.reset_index(drop=True)
