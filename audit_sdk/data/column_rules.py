"""Choosing many columns of a file at once: between two columns, by prefix, regex or list.

One definition shared by the tabular loader (one-hot genre columns) and the logged-outputs
adapter (share columns)::

    {between: [unknown, Western]}     # every column from 'unknown' to 'Western', file order
    {prefix: "g_"}                    # level = the rest of the name
    {regex: "^lt_(?P<level>.+)$"}     # level = group 'level' (else the first group, else all)
    {columns: [Action, Comedy]}       # level = the name
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from audit_sdk.errors import DataValidationError

__all__ = ["ColumnSelector", "select_columns"]


class ColumnSelector(BaseModel):
    """Which columns; exactly one of ``between``, ``prefix``, ``regex``, ``columns``."""

    model_config = ConfigDict(extra="forbid")

    between: tuple[str, str] | None = Field(
        None, description="first and last column (inclusive, file order)"
    )
    prefix: str | None = Field(None, description="columns starting with this; level = the rest")
    regex: str | None = Field(
        None, description="columns fully matching this; level = group 'level' (or the first)"
    )
    columns: list[str] | None = Field(None, description="these columns; level = the name")

    @model_validator(mode="after")
    def _one_selector(self) -> ColumnSelector:
        chosen = [
            k for k in ("between", "prefix", "regex", "columns") if getattr(self, k) is not None
        ]
        if len(chosen) != 1:
            raise ValueError(
                "a column rule needs exactly one of between, prefix, regex, columns "
                f"(got {', '.join(chosen) or 'none'})"
            )
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.regex!r}: {exc}") from None
        return self

    def label(self) -> str:
        chosen = {k: getattr(self, k) for k in ("between", "prefix", "regex", "columns")}
        return str({k: v for k, v in chosen.items() if v is not None})


def select_columns(
    selector: ColumnSelector, names: Sequence[str], *, source: str, param: str
) -> list[tuple[str, str]]:
    """``(column, level)`` pairs the selector picks from ``names`` (file order), or raise
    naming the rule (``param``) and the file's columns."""
    names = [str(n) for n in names]
    label = f"{param} rule {selector.label()}"
    listing = ", ".join(names)
    if selector.between is not None:
        first, last = selector.between
        for end in (first, last):
            if end not in names:
                raise DataValidationError(
                    f"{label}: no column {end!r} (columns: {listing}).",
                    source=source,
                    hint="name the first and last column exactly as in the header.",
                )
        i, j = names.index(first), names.index(last)
        if j < i:
            raise DataValidationError(
                f"{label}: {last!r} comes before {first!r} in the file.",
                source=source,
                hint="write between: [first, last] in file order.",
            )
        return [(c, c) for c in names[i : j + 1]]
    if selector.columns is not None:
        absent = [c for c in selector.columns if c not in names]
        if absent:
            raise DataValidationError(
                f"{label}: no column(s) {', '.join(map(repr, absent))} (columns: {listing}).",
                source=source,
            )
        return [(c, c) for c in selector.columns]
    if selector.prefix is not None:
        prefix = selector.prefix
        pairs = [(c, c[len(prefix) :]) for c in names if c.startswith(prefix) and c != prefix]
    else:
        assert selector.regex is not None
        pattern = re.compile(selector.regex)
        pairs = []
        for c in names:
            match = pattern.fullmatch(c)
            if match is None:
                continue
            if "level" in pattern.groupindex:
                level = match.group("level")
            elif pattern.groups:
                level = match.group(1)
            else:
                level = c
            pairs.append((c, level))
    if not pairs:
        raise DataValidationError(f"{label} matches no column (columns: {listing}).", source=source)
    return pairs
