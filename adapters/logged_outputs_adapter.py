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

Other names: ``columns`` maps canonical names to the file's, ``share_columns`` rules turn many
columns into shares at once (every column between two, a prefix, a regex; see
:mod:`audit_sdk.adapters.logged_columns`), ``model_name`` names the model of a file without a
``model`` column. Extra columns whose every value is a number become numbers (those listed in
``numeric_columns`` must be). With ``drop_incomplete`` rows without a user, text or items are
dropped instead of failing; :meth:`LoggedOutputsAdapter.row_report` says how many rows were
kept and why the others were dropped, and :meth:`LoggedOutputsAdapter.check_users` fails when
no logged user is in the audit's data.

A log can be the whole audit: :meth:`LoggedOutputsAdapter.logged_dataset` derives the users
(joined with an optional per-user table, ``users``, and a long-term shares table,
``longterm``, by ``user_id``) and the items (from the logged lists) from it.

Capabilities follow the file: ``recommend`` where item lists are logged (rank = list order),
``generate`` where prompts and texts are logged. :meth:`LoggedOutputsAdapter.logged_profiles`
returns the texts in the profile pipeline's format, so an audit needs no model at all.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from audit_sdk.adapters.logged_columns import ShareRule, map_columns
from audit_sdk.adapters.logged_outputs_reading import (
    SHARE_PREFIXES,
    LoggedOutputsParams,
    LoggedRowReport,
    load_logged_outputs,
    read_logged_outputs,
)

from audit_sdk.data.tables import Catalog, Dataset, Interactions, Users
from audit_sdk.data.tabular_loader import read_table
from audit_sdk.data.validation import RawTable, minimal_catalog, validate_users
from audit_sdk.errors import AdapterError, DataValidationError
from audit_sdk.hookspecs import RegisterAdapter, RegisterDatasetLoader, hookimpl
from audit_sdk.interfaces import DatasetLoader
from audit_sdk.interfaces._params import PluginParams
from audit_sdk.interfaces.adapter import Capability, GenerationParams, GeneratorAdapter
from audit_sdk.profile_pipeline import PROFILE_COLUMNS
from audit_sdk.profile_prompts import prompt_sha256

__all__ = [
    "LoggedOutputsAdapter",
    "LoggedOutputsLoader",
    "LoggedOutputsParams",
    "LoggedRowReport",
    "ShareRule",
    "read_logged_outputs",
]

logger = logging.getLogger(__name__)


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
        self._report: LoggedRowReport | None = None
        self._file_sha256: str | None = None

    @property
    def _params(self) -> LoggedOutputsParams:
        assert isinstance(self.params, LoggedOutputsParams)
        return self.params

    # -- loading ----------------------------------------------------------------------------
    def load(self) -> pd.DataFrame:
        """The validated log (read once)."""
        if self._table is None:
            table, self._report = load_logged_outputs(self._params)
            if self._report.dropped:
                logger.warning("logged_outputs: %s", self._report.summary())
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

    def fit(self, train: Dataset) -> None:
        """Nothing is trained; the log is checked against the audit's users instead: an error
        when none of its users is there (a log audited against the wrong data), a warning
        naming how many rows are left out when some are not."""
        users = set(map(str, train.users.frame.index))
        users.update(map(str, train.interactions.frame["user_id"].unique()))
        report = self.check_users(sorted(users))
        if report.dropped:
            logger.warning("logged_outputs: %s", report.summary())

    def row_report(self) -> LoggedRowReport:
        """Rows read, kept and dropped (with the reason), and rows per model."""
        self.load()
        assert self._report is not None
        return self._report

    def check_users(self, user_ids: Sequence[str]) -> LoggedRowReport:
        """How many kept rows belong to ``user_ids`` (the audit's users); fails when none do,
        naming examples from both sides (the usual cause: a log audited against another
        dataset, or ids written differently)."""
        table = self.load()
        known = {str(u) for u in user_ids}
        matched = table["user_id"].isin(known)
        base = self.row_report()
        if not bool(matched.any()):
            logged = ", ".join(map(repr, list(dict.fromkeys(table["user_id"]))[:3]))
            theirs = ", ".join(map(repr, sorted(known)[:3])) or "none"
            raise DataValidationError(
                f"none of the {len(table)} logged rows belongs to a user of the audit's data "
                f"({len(known)} users; e.g. {theirs}; the log has e.g. {logged}).",
                source=self._params.path,
                column="user_id",
                hint="audit the log alone (no dataset: section; the users come from the log), "
                "or point dataset: at the data the log was made from.",
            )
        dropped = dict(base.dropped)
        outside = int((~matched).sum())
        if outside:
            dropped["user not in the audit's data"] = outside
        return LoggedRowReport(
            source=base.source,
            rows_read=base.rows_read,
            rows_kept=int(matched.sum()),
            dropped=dropped,
            models={str(k): int(v) for k, v in table.loc[matched, "model"].value_counts().items()},
        )

    def logged_dataset(self) -> Dataset:
        """Users and items derived from the log: the logged users (joined with ``users`` and
        ``longterm`` by user_id; a user in those tables but not in the log is left out), the
        items of the logged lists (a minimal catalog), and no interactions."""
        table = self.load()
        params = self._params
        user_ids = pd.Index(list(dict.fromkeys(table["user_id"])), name="user_id").astype(str)
        users = pd.DataFrame(index=user_ids)
        notes = [f"users and items derived from the log {params.path}; no interactions"]
        sources: dict[str, str] = {"log": str(Path(params.path).resolve())}
        if params.users is not None:
            extra = self._user_table(params.users, params.user_columns, rules=[], prefix="")
            users = users.join(extra, how="left")
            notes.append(self._coverage(extra.index, user_ids, "users table"))
            sources["users"] = str(Path(params.users).resolve())
        if params.longterm is not None:
            rules = params.longterm_columns
            longterm = self._user_table(
                params.longterm, params.user_columns, rules=rules, prefix=params.longterm_prefix
            )
            clash = [c for c in longterm.columns if c in users.columns]
            users = users.join(longterm.rename(columns={c: f"{c} (longterm)" for c in clash}))
            notes.append(self._coverage(longterm.index, user_ids, "long-term table"))
            sources["longterm"] = str(Path(params.longterm).resolve())
        items = [i for lst in table["items"] if lst is not None for i in lst]
        interactions = pd.DataFrame(
            {
                "user_id": pd.Series([], dtype=object),
                "item_id": pd.Series([], dtype=object),
                "plays": pd.Series([], dtype=float),
            }
        )
        return Dataset(
            name=f"log:{Path(params.path).stem}",
            interactions=Interactions(interactions),
            catalog=Catalog(minimal_catalog(items)),
            users=Users(users),
            metadata={"loader": "logged_outputs", "sources": sources, "notes": notes},
        )

    def _user_table(
        self, path: str, columns: dict[str, str], *, rules: list[ShareRule], prefix: str
    ) -> pd.DataFrame:
        """A per-user table, validated like the tabular loader's users; share columns (by the
        rules, or already named ``share:*``) as numbers in [0, 1] under ``prefix``."""
        raw = read_table(path, delimiter=self._params.delimiter, encoding=self._params.encoding)
        frame = raw.frame
        scaled: set[str] = set()
        if rules:
            id_column = columns.get("user_id", "user_id")
            names = [str(c) for c in frame.columns if c != id_column]
            rename, percent = map_columns(names, columns={}, share_rules=rules, source=path)
            frame = frame.rename(columns=rename)
            scaled = {rename[c] for c in percent}
        users = validate_users(RawTable(frame, raw.source, raw.rows), columns=columns)
        out: dict[str, Any] = {}
        for column in users.columns:
            name = str(column)
            if not name.startswith(SHARE_PREFIXES):
                out[name] = users[column]
                continue
            numbers = pd.to_numeric(users[column], errors="coerce").astype(float)
            if name in scaled:
                numbers = numbers / 100.0
            bad = numbers.notna() & ((numbers < 0) | (numbers > 1))
            if bool(bad.any()):
                raise DataValidationError(
                    f"a share must lie in [0, 1], got {numbers[bad].iloc[0]:g} (user "
                    f"{numbers[bad].index[0]!r}).",
                    source=path,
                    column=name,
                    hint="for percentages set percent: true on its longterm_columns rule.",
                )
            out[f"{prefix}{name}"] = numbers
        return pd.DataFrame(out, index=users.index)

    @staticmethod
    def _coverage(have: pd.Index, wanted: pd.Index, what: str) -> str:
        missing = int((~wanted.isin(have.astype(str))).sum())
        return f"{what}: {len(wanted) - missing} of {len(wanted)} logged users found" + (
            f" ({missing} without a row there)" if missing else ""
        )

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
            "rows_report": self.row_report().summary(),
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


class LoggedOutputsLoader(DatasetLoader):
    """The data a log implies (:meth:`LoggedOutputsAdapter.logged_dataset`) as a dataset
    loader, for a config that names the log twice (``dataset:`` and ``subject:``), same params."""

    name: ClassVar[str] = "logged_outputs"
    description: ClassVar[str] = (
        "Users (with an optional per-user and long-term shares table) and items derived from a "
        "logged-outputs file"
    )
    Params: ClassVar[type[PluginParams]] = LoggedOutputsParams

    def load(self) -> Dataset:
        return LoggedOutputsAdapter(self.params).logged_dataset()


@hookimpl
def audit_sdk_register_dataset_loaders(register: RegisterDatasetLoader) -> None:
    register(LoggedOutputsLoader)
