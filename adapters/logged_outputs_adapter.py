"""Audit outputs a team already has: a table of logged profiles or recommendation lists.

The file (CSV, TSV, Parquet or JSON lines) has one row per (user, model, window):

==================  ============================================================================
``user_id``         required
``model``           required: which system wrote the row (a file may hold several)
``window``          optional (default ``"all"``): the time window the output describes
``prompt``          optional: the prompt sent (lets ``generate`` answer by exact prompt text)
``text``            the generated profile (``output`` is accepted as another name)
``items``           a recommendation list, best first: a JSON list (``["a", "b"]``) or ids
                    separated by ``|`` (``a|b|c``)
``rating``          optional: a human rating of the output (a number)
others              kept as they are, e.g. ``share:<genre>`` / ``share_country:<CC>`` (numbers
                    in [0, 1]) for the causal detector
==================  ============================================================================

Each row needs ``text`` or ``items``. Loading validates everything once, and an error names the
file, the row (1-based, header excluded; the line number in JSON lines) and the column.

Capabilities follow the file: ``recommend`` where item lists are logged (rank = list order),
``generate`` where prompts and texts are logged. :meth:`LoggedOutputsAdapter.logged_profiles`
returns the texts in the profile pipeline's format, so an audit needs no model at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from audit_sdk.data.tabular_loader import read_table
from audit_sdk.errors import AdapterError, DataValidationError
from audit_sdk.hookspecs import RegisterAdapter, hookimpl
from audit_sdk.interfaces._params import PluginParams
from audit_sdk.interfaces.adapter import Capability, GenerationParams, GeneratorAdapter
from audit_sdk.profile_pipeline import PROFILE_COLUMNS
from audit_sdk.profile_prompts import prompt_sha256

__all__ = ["LoggedOutputsAdapter", "LoggedOutputsParams", "read_logged_outputs"]

logger = logging.getLogger(__name__)

REQUIRED = ("user_id", "model")
SHARE_PREFIXES = ("share:", "share_country:")
_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_FORMATS.update({".jsonl": "jsonl", ".ndjson": "jsonl"})


class LoggedOutputsParams(PluginParams):
    path: str = Field(description="the logged outputs file")
    format: Literal["auto", "csv", "tsv", "parquet", "jsonl"] = Field(
        "auto", description="file format; auto: from the file extension"
    )
    model: str | None = Field(
        None, description="which logged model recommend/generate serve (needed if several)"
    )
    window: str | None = Field(
        None, description="which window recommend serves (needed if the model has several)"
    )


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


def _read_table(path: Path, fmt: str) -> tuple[pd.DataFrame, list[int]]:
    """The raw table and each record's 1-based row (line, for JSON lines), read by the same
    reader as the tabular dataset loader (so errors read the same)."""
    if not path.is_file():
        raise DataValidationError("no such logged-outputs file.", source=str(path))
    raw = read_table(path, format=fmt)  # type: ignore[arg-type]
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
    path: str | Path, *, format: Literal["auto", "csv", "tsv", "parquet", "jsonl"] = "auto"
) -> pd.DataFrame:
    """Read and validate a logged-outputs file.

    Returns one row per record with ``user_id, model, window`` (strings), ``prompt``,
    ``text`` (``None`` where absent), ``items`` (a list or ``None``), ``rating`` (float or NaN)
    and any extra columns, plus ``source_row`` (the record's row or line in the file).
    """
    path = Path(path)
    source = str(path)
    fmt = format if format != "auto" else _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataValidationError(
            f"cannot tell the format from the extension {path.suffix!r}.",
            source=source,
            hint="use .csv, .tsv, .parquet or .jsonl, or set params.format.",
        )
    frame, rows = _read_table(path, fmt)
    frame = frame.copy()
    if "output" in frame.columns and "text" not in frame.columns:
        frame = frame.rename(columns={"output": "text"})
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"missing column(s) {', '.join(missing)} (found: "
            f"{', '.join(map(str, frame.columns)) or 'none'}).",
            source=source,
            hint="a logged-outputs file needs user_id, model, and text or items.",
        )
    if "text" not in frame.columns and "items" not in frame.columns:
        raise DataValidationError(
            f"needs a column 'text' (or 'output') with generated text, or 'items' with "
            f"recommendation lists (found: {', '.join(map(str, frame.columns))}).",
            source=source,
        )
    if len(frame) == 0:
        raise DataValidationError("the file holds no rows.", source=source)

    out: dict[str, list[Any]] = {
        "user_id": [],
        "model": [],
        "window": [],
        "prompt": [],
        "text": [],
        "items": [],
    }
    has_window = "window" in frame.columns
    has_prompt = "prompt" in frame.columns
    has_text = "text" in frame.columns
    has_items = "items" in frame.columns
    for position, record in enumerate(frame.to_dict("records")):
        row = rows[position]
        for column in ("user_id", "model"):
            if _missing(record[column]) or str(record[column]).strip() == "":
                raise DataValidationError(
                    f"{column} is empty.", source=source, row=row, column=column
                )
        window = record["window"] if has_window else "all"
        if _missing(window) or str(window).strip() == "":
            raise DataValidationError(
                "window is empty.",
                source=source,
                row=row,
                column="window",
                hint="name the window (e.g. 30d), or drop the column to use 'all'.",
            )
        text = record["text"] if has_text else None
        if not _missing(text) and not isinstance(text, str):
            raise DataValidationError(
                f"text must be a string, not {type(text).__name__}.",
                source=source,
                row=row,
                column="text",
            )
        items = _parse_items(record["items"], source=source, row=row) if has_items else None
        if _missing(text) and items is None:
            raise DataValidationError(
                "the row has neither text nor items.",
                source=source,
                row=row,
                column="text" if has_text else "items",
            )
        prompt = record["prompt"] if has_prompt else None
        out["user_id"].append(_to_id(record["user_id"]))
        out["model"].append(str(record["model"]))
        out["window"].append(str(window))
        out["prompt"].append(None if _missing(prompt) else str(prompt))
        out["text"].append(None if _missing(text) else text)
        out["items"].append(items)

    table = pd.DataFrame(out, dtype=object)
    table["source_row"] = rows
    if "rating" in frame.columns:
        table["rating"] = _numeric_column(frame, "rating", rows, source=source)
    for column in frame.columns:
        if column in table.columns or column in ("output",):
            continue
        if str(column).startswith(SHARE_PREFIXES):
            values = _numeric_column(frame, column, rows, source=source)
            bad = values.notna() & ((values < 0) | (values > 1))
            if bool(bad.any()):
                where = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataValidationError(
                    f"a share must lie in [0, 1], got {values.iloc[where]:g}.",
                    source=source,
                    row=rows[where],
                    column=str(column),
                )
            table[column] = values
        else:
            table[column] = frame[column].to_numpy()

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
    return table


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


class LoggedOutputsAdapter(GeneratorAdapter):
    """Serves logged profiles and recommendation lists as if a model produced them now."""

    name = "logged_outputs"
    description = "Outputs already generated: a CSV/TSV/Parquet/JSONL log of profiles or lists."
    # What a log may provide; ``supports`` answers for the configured file.
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"generate", "recommend", "replay"})
    Params = LoggedOutputsParams

    def __init__(self, params: PluginParams | None = None) -> None:
        super().__init__(params)
        self._table: pd.DataFrame | None = None
        self._file_sha256: str | None = None

    @property
    def _params(self) -> LoggedOutputsParams:
        assert isinstance(self.params, LoggedOutputsParams)
        return self.params

    # -- loading ----------------------------------------------------------------------------
    def load(self) -> pd.DataFrame:
        """The validated log (read once)."""
        if self._table is None:
            table = read_logged_outputs(self._params.path, format=self._params.format)
            model = self._params.model
            if model is not None and model not in set(table["model"]):
                raise DataValidationError(
                    f"no rows for model {model!r} (models in the file: "
                    f"{', '.join(sorted(set(table['model'])))}).",
                    source=self._params.path,
                    column="model",
                )
            self._table = table
        return self._table

    def models(self) -> list[str]:
        return sorted(set(self.load()["model"]))

    def _model_rows(self, capability: str) -> pd.DataFrame:
        table = self.load()
        model = self._params.model
        if model is None:
            models = sorted(set(table["model"]))
            if len(models) > 1:
                raise AdapterError(
                    f"logged_outputs: {self._params.path} holds {len(models)} models "
                    f"({', '.join(models)}); set params.model to choose which one {capability} "
                    f"serves."
                )
            model = models[0]
        return table[table["model"] == model]

    def supports(self, capability: Capability) -> bool:
        table = self.load()
        if self._params.model is not None:
            table = table[table["model"] == self._params.model]
        if capability == "recommend":
            return bool(table["items"].map(lambda v: v is not None).any())
        if capability == "generate":
            return bool((table["prompt"].notna() & table["text"].notna()).any())
        if capability == "replay":
            return bool(table["text"].notna().any())
        return False

    # -- identity ---------------------------------------------------------------------------
    def _sha256(self) -> str:
        if self._file_sha256 is None:
            digest = hashlib.sha256()
            with Path(self._params.path).open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            self._file_sha256 = digest.hexdigest()
        return self._file_sha256

    def fingerprint(self) -> str:
        """The file's content hash and the chosen model."""
        self.load()
        return f"logged_outputs:{self._sha256()[:16]}:{self._params.model or '*'}"

    def describe(self) -> dict[str, Any]:
        table = self.load()
        return {
            "adapter": self.name,
            "model": self._params.model or ", ".join(self.models()),
            "path": str(self._params.path),
            "sha256": self._sha256(),
            "rows": len(table),
        }

    # -- outputs ----------------------------------------------------------------------------
    def logged_profiles(self) -> pd.DataFrame:
        """The logged texts as the profile pipeline's table (:data:`PROFILE_COLUMNS`, plus
        ``rating`` and extra columns where logged). All models, or ``params.model`` only."""
        table = self.load()
        if self._params.model is not None:
            table = table[table["model"] == self._params.model]
        table = table[table["text"].notna()]
        fingerprint = self.fingerprint()
        n = len(table)

        def objects(values: Any) -> pd.Series:
            return pd.Series(list(values), dtype=object, index=range(n))

        frame = pd.DataFrame(
            {
                "user_id": objects(table["user_id"]),
                "window": objects(table["window"]),
                "model": objects(table["model"]),
                "adapter": objects([self.name] * n),
                "model_fingerprint": objects([fingerprint] * n),
                "prompt": objects(table["prompt"]),
                "prompt_sha256": objects(
                    prompt_sha256(p) if isinstance(p, str) else None for p in table["prompt"]
                ),
                "text": objects(table["text"]),
                "temperature": np.full(n, np.nan),
                "top_p": np.full(n, np.nan),
                "max_new_tokens": pd.array([pd.NA] * n, dtype="Int64"),
                "seed": pd.array([pd.NA] * n, dtype="Int64"),
                "cached": np.zeros(n, dtype=bool),
                "error": objects([None] * n),
            },
            columns=list(PROFILE_COLUMNS),
        )
        extras = [
            c
            for c in table.columns
            if c not in ("user_id", "model", "window", "prompt", "text", "items", "source_row")
        ]
        for column in extras:
            frame[column] = table[column].to_numpy()
        return frame.reset_index(drop=True)

    def recommend(self, user_ids: Sequence[str], *, k: int) -> pd.DataFrame:
        """Logged lists, cut at ``k``; rank is list order, score ``1 / rank``. Users without a
        logged list are left out (a warning says how many)."""
        rows = self._model_rows("recommend")
        rows = rows[rows["items"].map(lambda v: v is not None)]
        windows = sorted(set(rows["window"]))
        window = self._params.window
        if window is None:
            if len(windows) > 1:
                raise AdapterError(
                    f"logged_outputs: the logged lists cover {len(windows)} windows "
                    f"({', '.join(windows)}); set params.window to choose one."
                )
        else:
            if window not in windows:
                raise AdapterError(
                    f"logged_outputs: no logged lists for window {window!r} "
                    f"(windows: {', '.join(windows) or 'none'})."
                )
            rows = rows[rows["window"] == window]
        if len(rows) == 0:
            raise self._missing("recommend")
        by_user = dict(zip(rows["user_id"], rows["items"], strict=True))
        wanted = [str(u) for u in user_ids]
        absent = [u for u in wanted if u not in by_user]
        if absent:
            logger.warning(
                "logged_outputs: %d of %d users have no logged list (e.g. %s)",
                len(absent),
                len(wanted),
                ", ".join(absent[:3]),
            )
        records = [
            (user, rank, item, 1.0 / rank)
            for user in wanted
            if user in by_user
            for rank, item in enumerate(by_user[user][:k], start=1)
        ]
        frame = pd.DataFrame(records, columns=["user_id", "rank", "item_id", "score"])
        frame["rank"] = frame["rank"].astype(int)
        return frame

    def generate(self, prompts: Sequence[str], *, params: GenerationParams) -> list[str]:
        """The logged text of each prompt, found by exact prompt text (the first logged row
        wins where a prompt was logged twice). Sampling parameters are not checked."""
        rows = self._model_rows("generate")
        rows = rows[rows["prompt"].notna() & rows["text"].notna()]
        if len(rows) == 0:
            raise self._missing("generate")
        lookup: dict[str, str] = {}
        for prompt, text in zip(rows["prompt"], rows["text"], strict=True):
            lookup.setdefault(prompt, text)
        absent = [i for i, p in enumerate(prompts) if p not in lookup]
        if absent:
            first = prompts[absent[0]]
            raise AdapterError(
                f"logged_outputs: {len(absent)} of {len(prompts)} prompts are not in "
                f"{self._params.path} (first: prompt {absent[0] + 1}, sha256 "
                f"{prompt_sha256(first)[:12]}). The log answers only prompts it recorded, "
                f"character for character."
            )
        return [lookup[p] for p in prompts]


@hookimpl
def audit_sdk_register_adapters(register: RegisterAdapter) -> None:
    register(LoggedOutputsAdapter)
