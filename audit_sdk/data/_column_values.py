"""Values in the columns of a raw table: ids, numbers, timestamps, text, genres, attributes.

The per-column parsing behind :mod:`audit_sdk.data.validation`; every error names the file,
the 1-based row (header excluded; for JSONL, the line) and the column, and says how to fix it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

import numpy as np
import pandas as pd

from audit_sdk.errors import DataValidationError

TimestampUnit = Literal["s", "ms", "iso"]


INTERACTION_KEYS = ("user_id", "item_id", "plays", "timestamp", "duration_s", "rating")


CATALOG_KEYS = ("item_id", "title", "artist", "genres", "country", "release_year")


USER_KEYS = ("user_id",)


_MAX_EXACT = float(2**53)  # largest integer a float64 holds exactly


_AGE_RANGE = (0.0, 120.0)


_MISSING_TOKENS = frozenset({"", "nan", "na", "n/a", "null", "none", "<na>", "nat"})


_ENCODING_HINT = (
    "set `encoding:` in the loader params to the file's encoding, e.g. `encoding: latin-1`"
)


@dataclass(frozen=True)
class RawTable:
    """A table as read from a file, before validation.

    ``rows`` gives, for each frame row, the 1-based number that error messages use: the data
    row (header excluded) for CSV/TSV/Parquet, the line for JSONL. ``None`` means 1..n.
    """

    frame: pd.DataFrame
    source: str
    rows: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)  # what reading changed (dropped columns)

    def row_of(self, position: int) -> int:
        """The 1-based row (or line) number of the frame row at ``position``."""
        if self.rows is None:
            return int(position) + 1
        return int(self.rows[position])

    def error_at(
        self, position: int, column: str, message: str, *, hint: str | None = None
    ) -> DataValidationError:
        """The error for the cell at frame row ``position`` of ``column``: names this table's
        file, the 1-based row and the column (``raise raw.error_at(...)``)."""
        return DataValidationError(
            message, source=self.source, row=self.row_of(position), column=column, hint=hint
        )

    @property
    def column_list(self) -> str:
        return ", ".join(repr(str(c)) for c in self.frame.columns) or "(none)"


def decode_text(data: bytes, *, source: str, encoding: str = "utf-8", header_lines: int = 1) -> str:
    """Decode a file's bytes, or raise naming the line (from the byte offset) and encoding.

    ``header_lines`` is how many lines precede the first data row (1 for CSV/TSV with a
    header, 0 for JSONL), so that the error's ``row`` is the data row.
    """
    try:
        return data.decode(encoding)
    except LookupError:
        raise DataValidationError(
            f"unknown encoding {encoding!r}",
            source=source,
            hint="use a Python codec name such as `utf-8`, `latin-1` or `cp1252`",
        ) from None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.start + 1].hex()
        row = line - header_lines if line > header_lines else None
        raise DataValidationError(
            f"cannot decode byte 0x{bad} at line {line} (byte offset {exc.start}) as {encoding!r}",
            source=source,
            row=row,
            hint=_ENCODING_HINT,
        ) from None


def _resolve_columns(
    raw: RawTable,
    mapping: Mapping[str, str] | None,
    *,
    keys: Sequence[str],
    required: Sequence[str],
    param: str,
    other_keys: bool = False,
) -> dict[str, str]:
    """Map canonical keys to the file's columns: explicit mapping first, else same name.
    ``other_keys`` allows mapping keys beyond ``keys`` (user attributes)."""
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(keys))
    if unknown and not other_keys:
        raise DataValidationError(
            f"unknown mapping key(s) {unknown} in `{param}`; allowed keys are {list(keys)}",
            source=raw.source,
            hint=f"rename the key(s) in `{param}` to one of the allowed keys",
        )
    present = {str(c) for c in raw.frame.columns}
    resolved: dict[str, str] = {}
    for key, column in mapping.items():
        if column not in present:
            raise DataValidationError(
                f"`{param}.{key}` names column {column!r}, which the file does not have; "
                f"the file has columns {raw.column_list}",
                source=raw.source,
                column=column,
                hint=f"set `{param}.{key}` to one of the file's columns",
            )
        resolved[key] = column
    for key in keys:
        if key not in resolved and key in present:
            resolved[key] = key
    for key in required:
        if key not in resolved:
            raise DataValidationError(
                f"required column for {key!r} is missing (no mapping `{param}.{key}` and no "
                f"column named {key!r}); the file has columns {raw.column_list}",
                source=raw.source,
                column=key,
                hint=f"add a {key!r} column, or set `{param}: {{{key}: <column>}}` in the "
                "loader params",
            )
    return resolved


def _missing_mask(series: pd.Series) -> np.ndarray:
    mask = series.isna().to_numpy(dtype=bool, na_value=True)
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        text = series.astype(object).map(lambda v: v.strip().lower() if isinstance(v, str) else v)
        mask = mask | text.isin(_MISSING_TOKENS).to_numpy(dtype=bool)
    return mask


def _show(value: Any) -> str:
    """repr() of a cell value, without numpy's type wrapper (``-2.0``, not ``np.float64(-2.0)``)."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _ids(raw: RawTable, column: str, key: str) -> pd.Series:
    series = raw.frame[column]
    if pd.api.types.is_bool_dtype(series.dtype):
        raise raw.error_at(
            0,
            column,
            f"{key} must be an id (text or integer), got the boolean {_show(series.iloc[0])}",
            hint=f"map `{key}` to the column that holds the ids",
        )
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.to_numpy(dtype=float)
        empty = np.isnan(values)
        if empty.any():
            _raise_empty(raw, _first(empty), column, key)
        if np.all(np.mod(values, 1.0) == 0.0):
            return pd.Series(values.astype(np.int64), index=series.index).astype(str)
        return series.astype(str)
    if pd.api.types.is_integer_dtype(series.dtype):
        if series.isna().any():
            _raise_empty(raw, _first(series.isna().to_numpy()), column, key)
        return series.astype(str)
    objects = series.astype(object)
    structured = objects.map(_is_structured).to_numpy(dtype=bool)
    if structured.any():
        position = _first(structured)
        raise raw.error_at(
            position,
            column,
            f"{key} must be text or an integer, got the JSON "
            f"{'object' if isinstance(_as_json(objects.iloc[position]), dict) else 'list'} "
            f"{_show(objects.iloc[position])}",
            hint=f"map `{key}` to the column that holds the ids, or write the id itself "
            '(e.g. "u1", not {"id": "u1"})',
        )
    text = objects.map(_id_text)
    empty = text.isna().to_numpy(dtype=bool) | _missing_mask(text)
    if empty.any():
        _raise_empty(raw, _first(empty), column, key)
    return text.astype(str)


def _as_json(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return value
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return None


def _is_structured(value: Any) -> bool:
    return isinstance(_as_json(value), (dict, list, tuple))


def _id_text(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (bool, list, dict, tuple)):
        return repr(value)
    return str(value)


def _raise_empty(raw: RawTable, position: int, column: str, key: str) -> NoReturn:
    raise raw.error_at(
        position,
        column,
        f"{key} is empty; every row needs a {key}",
        hint="fill in the value or remove the row",
    )


def _numbers(
    raw: RawTable,
    column: str,
    key: str,
    *,
    required: bool,
    non_negative: bool,
) -> np.ndarray:
    """Parse a numeric column to float64; NaN where missing (an error if ``required``)."""
    series = raw.frame[column]
    if pd.api.types.is_bool_dtype(series.dtype):
        raise raw.error_at(
            0,
            column,
            f"{key} must be a number, got the boolean {_show(series.iloc[0])}",
            hint=f"store {key} as numbers",
        )
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(values)
    else:
        missing = _missing_mask(series)
        objects = series.astype(object)
        bad_kind = objects.map(lambda v: isinstance(v, (bool, list, dict, tuple))).to_numpy(
            dtype=bool
        )
        cleaned = objects.map(lambda v: v.strip() if isinstance(v, str) else v)
        cleaned = cleaned.where(~(missing | bad_kind), np.nan)
        values = pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = (np.isnan(values) & ~missing) | bad_kind
        if bad.any():
            position = _first(bad)
            raise raw.error_at(
                position,
                column,
                f"{key} must be a number, got {_show(series.iloc[position])}",
                hint=f"correct the value, or map `{key}` to the right column",
            )
    infinite = np.isinf(values)
    if infinite.any():
        position = _first(infinite)
        raise raw.error_at(
            position,
            column,
            f"{key} must be a finite number, got {_show(series.iloc[position])}",
            hint="correct the value or remove the row",
        )
    if required and missing.any():
        _raise_empty(raw, _first(missing), column, key)
    huge = np.abs(np.where(missing, 0.0, values)) > _MAX_EXACT
    if huge.any():
        position = _first(huge)
        raise raw.error_at(
            position,
            column,
            f"{key} {_show(series.iloc[position])} is too large to count exactly (limit "
            f"{_MAX_EXACT:.3g}); sums over it would overflow or lose the user",
            hint="check the column's unit and parsing (a timestamp or id mapped as "
            f"{key}?), or correct the row",
        )
    if non_negative:
        negative = values < 0
        if negative.any():
            position = _first(negative)
            raise raw.error_at(
                position,
                column,
                f"{key} must be >= 0, got {_show(series.iloc[position])}",
                hint=f"{key} counts or measures something and cannot be negative; fix or "
                "remove the row",
            )
    return values


def _timestamps(raw: RawTable, column: str, unit: TimestampUnit | None) -> pd.Series:
    series = raw.frame[column]
    missing = _missing_mask(series)
    if missing.any():
        _raise_empty(raw, _first(missing), column, "timestamp")
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        parsed = series.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(series.dtype):
        parsed = series.dt.tz_localize("UTC")
    else:
        numeric = pd.to_numeric(series.astype(object), errors="coerce")
        all_numeric = bool(numeric.notna().all())
        if unit in ("s", "ms") or (unit is None and all_numeric):
            if not all_numeric:
                position = _first(numeric.isna().to_numpy())
                _raise_timestamp(raw, position, column, unit)
            chosen = unit or ("ms" if float(numeric.abs().max()) >= 1e11 else "s")
            parsed = pd.to_datetime(numeric.astype(float), unit=chosen, utc=True, errors="coerce")
        else:
            text = series.astype(object).map(lambda v: v.strip() if isinstance(v, str) else v)
            parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
            if unit is None and parsed.isna().any():
                retry = parsed.isna()
                parsed = parsed.copy()
                parsed[retry] = pd.to_datetime(
                    text[retry], utc=True, format="mixed", errors="coerce"
                )
    failed = parsed.isna().to_numpy(dtype=bool)
    if failed.any():
        _raise_timestamp(raw, _first(failed), column, unit)
    return parsed.dt.tz_convert("UTC").dt.as_unit("ns").reset_index(drop=True)


def _raise_timestamp(
    raw: RawTable, position: int, column: str, unit: TimestampUnit | None
) -> NoReturn:
    value = raw.frame[column].iloc[position]
    how = {"s": "epoch seconds", "ms": "epoch milliseconds", "iso": "ISO 8601"}.get(
        unit or "", "ISO 8601 or epoch seconds/milliseconds"
    )
    raise raw.error_at(
        position,
        column,
        f"cannot parse timestamp {_show(value)} as {how}",
        hint="write timestamps as ISO 8601 (2025-01-31T12:00:00Z) or epoch numbers, and set "
        "`timestamp_unit:` (s, ms or iso) in the loader params",
    )


def _text(values: Any) -> pd.Series:
    """A text column (pandas' string dtype where it is the default), missing kept missing."""
    series = pd.Series(values, dtype=object).reset_index(drop=True)
    missing = series.isna()
    return series.astype(str).where(~missing, np.nan)


def _optional_text(raw: RawTable, column: str, *, fill: Any) -> np.ndarray:
    series = raw.frame[column]
    missing = (
        _missing_mask(series)
        if not pd.api.types.is_numeric_dtype(series.dtype)
        else (series.isna().to_numpy(dtype=bool))
    )
    values = series.astype(object).map(lambda v: v.strip() if isinstance(v, str) else str(v))
    out = values.to_numpy(dtype=object)
    if missing.any():
        if isinstance(fill, np.ndarray):
            out[missing] = fill[missing]
        else:
            out[missing] = fill
    return out


def _genres(raw: RawTable, column: str, separator: str) -> list[tuple[str, ...]]:
    series = raw.frame[column]
    result: list[tuple[str, ...]] = []
    for position, value in enumerate(series.to_numpy(dtype=object)):
        if isinstance(value, str):
            parts: Sequence[Any] = value.split(separator) if separator else [value]
        elif isinstance(value, (list, tuple, np.ndarray)):
            parts = list(value)
        elif value is None or (isinstance(value, float) and np.isnan(value)):
            parts = []
        else:
            raise raw.error_at(
                position,
                column,
                f"genres must be text joined by {separator!r} or a list of text, got {_show(value)}",
                hint="write genres like `rock|indie`, or set `genre_separator:` in the loader "
                "params",
            )
        seen: dict[str, None] = {}
        for part in parts:
            if not isinstance(part, str):
                raise raw.error_at(
                    position,
                    column,
                    f"genres must be text, got {part!r}",
                    hint="store genre names as text",
                )
            name = " ".join(part.split()).lower()
            if name:
                seen.setdefault(name, None)
        result.append(tuple(seen))
    return result


def _check_ages(raw: RawTable, column: str, values: Any) -> None:
    """Numeric ages must lie in [0, 120]; a text age column (e.g. '18-24') is left alone."""
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(numbers).any() or pd.api.types.is_string_dtype(pd.Series(values).dtype):
        return
    low, high = _AGE_RANGE
    bad = np.isfinite(numbers) & ((numbers < low) | (numbers > high))
    if bad.any():
        position = _first(bad)
        raise raw.error_at(
            position,
            column,
            f"age {numbers[position]:g} is impossible (ages lie in {low:g} to {high:g}); "
            f"{int(bad.sum())} users have such an age",
            hint="correct or blank the value (a missing age is allowed), or map `age` to the "
            "right column (birth year? age in months?)",
        )


def _attribute(series: pd.Series) -> Any:
    values = series.reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy()
    missing = _missing_mask(values)
    objects = values.astype(object).map(lambda v: v.strip() if isinstance(v, str) else v)
    objects = objects.where(~missing, None)
    numeric = pd.to_numeric(objects, errors="coerce")
    present = ~missing
    if present.any() and bool(numeric[present].notna().all()):
        numbers = numeric.to_numpy(dtype=float, na_value=np.nan)
        if np.all(np.mod(numbers[present], 1.0) == 0.0):
            return pd.array(
                [None if m else int(x) for x, m in zip(numbers, missing, strict=True)],
                dtype="Int64",
            )
        return numbers
    return _text(objects.to_numpy(dtype=object)).array
