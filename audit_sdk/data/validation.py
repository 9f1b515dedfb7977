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

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

import numpy as np
import pandas as pd

from audit_sdk.data.tables import Catalog, Dataset, Interactions, Users
from audit_sdk.errors import DataValidationError

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


# --------------------------------------------------------------------------------------
# column resolution


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


# --------------------------------------------------------------------------------------
# per-column parsing


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
        raise DataValidationError(
            f"{key} must be an id (text or integer), got the boolean {_show(series.iloc[0])}",
            source=raw.source,
            row=raw.row_of(0),
            column=column,
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
        raise DataValidationError(
            f"{key} must be text or an integer, got the JSON "
            f"{'object' if isinstance(_as_json(objects.iloc[position]), dict) else 'list'} "
            f"{_show(objects.iloc[position])}",
            source=raw.source,
            row=raw.row_of(position),
            column=column,
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
    raise DataValidationError(
        f"{key} is empty; every row needs a {key}",
        source=raw.source,
        row=raw.row_of(position),
        column=column,
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
        raise DataValidationError(
            f"{key} must be a number, got the boolean {_show(series.iloc[0])}",
            source=raw.source,
            row=raw.row_of(0),
            column=column,
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
            raise DataValidationError(
                f"{key} must be a number, got {_show(series.iloc[position])}",
                source=raw.source,
                row=raw.row_of(position),
                column=column,
                hint=f"correct the value, or map `{key}` to the right column",
            )
    infinite = np.isinf(values)
    if infinite.any():
        position = _first(infinite)
        raise DataValidationError(
            f"{key} must be a finite number, got {_show(series.iloc[position])}",
            source=raw.source,
            row=raw.row_of(position),
            column=column,
            hint="correct the value or remove the row",
        )
    if required and missing.any():
        _raise_empty(raw, _first(missing), column, key)
    huge = np.abs(np.where(missing, 0.0, values)) > _MAX_EXACT
    if huge.any():
        position = _first(huge)
        raise DataValidationError(
            f"{key} {_show(series.iloc[position])} is too large to count exactly (limit "
            f"{_MAX_EXACT:.3g}); sums over it would overflow or lose the user",
            source=raw.source,
            row=raw.row_of(position),
            column=column,
            hint="check the column's unit and parsing (a timestamp or id mapped as "
            f"{key}?), or correct the row",
        )
    if non_negative:
        negative = values < 0
        if negative.any():
            position = _first(negative)
            raise DataValidationError(
                f"{key} must be >= 0, got {_show(series.iloc[position])}",
                source=raw.source,
                row=raw.row_of(position),
                column=column,
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
    raise DataValidationError(
        f"cannot parse timestamp {_show(value)} as {how}",
        source=raw.source,
        row=raw.row_of(position),
        column=column,
        hint="write timestamps as ISO 8601 (2025-01-31T12:00:00Z) or epoch numbers, and set "
        "`timestamp_unit:` (s, ms or iso) in the loader params",
    )


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
            raise DataValidationError(
                f"duplicate row: rows {raw.row_of(first)} and {raw.row_of(second)} have the "
                f"same {described} ({int(duplicated.sum())} rows are duplicates in all)",
                source=raw.source,
                row=raw.row_of(second),
                column=resolved["item_id"],
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
    raise DataValidationError(
        f"{key} {_show(value)} appears twice, in rows {raw.row_of(same[0])} and "
        f"{raw.row_of(same[1])}; {noun} must be unique",
        source=raw.source,
        row=raw.row_of(same[1]),
        column=column,
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
            raise DataValidationError(
                f"release_year must be a whole year, got {_show(raw.frame[resolved['release_year']].iloc[position])}",
                source=raw.source,
                row=raw.row_of(position),
                column=resolved["release_year"],
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
            raise DataValidationError(
                f"genres must be text joined by {separator!r} or a list of text, got {_show(value)}",
                source=raw.source,
                row=raw.row_of(position),
                column=column,
                hint="write genres like `rock|indie`, or set `genre_separator:` in the loader "
                "params",
            )
        seen: dict[str, None] = {}
        for part in parts:
            if not isinstance(part, str):
                raise DataValidationError(
                    f"genres must be text, got {part!r}",
                    source=raw.source,
                    row=raw.row_of(position),
                    column=column,
                    hint="store genre names as text",
                )
            name = " ".join(part.split()).lower()
            if name:
                seen.setdefault(name, None)
        result.append(tuple(seen))
    return result


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


def _check_ages(raw: RawTable, column: str, values: Any) -> None:
    """Numeric ages must lie in [0, 120]; a text age column (e.g. '18-24') is left alone."""
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(numbers).any() or pd.api.types.is_string_dtype(pd.Series(values).dtype):
        return
    low, high = _AGE_RANGE
    bad = np.isfinite(numbers) & ((numbers < low) | (numbers > high))
    if bad.any():
        position = _first(bad)
        raise DataValidationError(
            f"age {numbers[position]:g} is impossible (ages lie in {low:g} to {high:g}); "
            f"{int(bad.sum())} users have such an age",
            source=raw.source,
            row=raw.row_of(position),
            column=column,
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
    raise DataValidationError(
        f"{key} {_show(value)} is not in the {table} ({table_source}); {n_rows} interaction rows "
        f"({n_distinct} distinct {key}s) reference {key}s missing from the {table}",
        source=raw.source,
        row=raw.row_of(position),
        column=column,
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
