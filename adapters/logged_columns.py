"""Column mapping for logged-outputs files: canonical names, share-column rules, typed extras.

A log rarely uses the adapter's names. ``columns`` maps each canonical name to the file's
column (as the tabular loader's ``columns`` does), and ``share_columns`` turns many columns at
once into ``share:<genre>`` / ``share_country:<CC>`` columns::

    columns: {user_id: uid, model: llm, window: period, text: profile, rating: score}
    share_columns:
      - {between: [rock, jazz]}                       # every column from rock to jazz
      - {prefix: "cty_", family: country}            # cty_US -> share_country:US
      - {regex: "^g_(?P<level>.+)_pct$", percent: true}  # g_metal_pct (0-100) -> share:metal
      - {columns: [ambient, drone]}

The level is the column name (``between``, ``columns``), the rest after the prefix (``prefix``)
or the regex's ``level`` group (else its first group, else the whole name).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from audit_sdk.errors import DataValidationError

__all__ = ["CANONICAL", "SHARE_PREFIX", "ShareRule", "map_columns"]

CANONICAL = ("user_id", "model", "window", "prompt", "text", "items", "rating")
SHARE_PREFIX: dict[str, str] = {"genre": "share:", "country": "share_country:"}


class ShareRule(BaseModel):
    """Which file columns are shares of one family; exactly one selector."""

    model_config = ConfigDict(extra="forbid")

    family: Literal["genre", "country"] = Field("genre", description="genre or artist country")
    between: tuple[str, str] | None = Field(
        None, description="first and last column (inclusive, file order)"
    )
    prefix: str | None = Field(None, description="columns starting with this; level = the rest")
    regex: str | None = Field(
        None, description="columns fully matching this; level = group 'level' (or the first)"
    )
    columns: list[str] | None = Field(None, description="these columns; level = the name")
    percent: bool = Field(False, description="values are percentages (0-100)")

    @model_validator(mode="after")
    def _one_selector(self) -> ShareRule:
        chosen = [
            k for k in ("between", "prefix", "regex", "columns") if getattr(self, k) is not None
        ]
        if len(chosen) != 1:
            raise ValueError(
                "a share_columns rule needs exactly one of between, prefix, regex, columns "
                f"(got {', '.join(chosen) or 'none'})"
            )
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.regex!r}: {exc}") from None
        return self


def _rule_columns(rule: ShareRule, names: list[str], source: str) -> list[tuple[str, str]]:
    """(file column, level) pairs selected by one rule."""
    label = rule.model_dump(exclude_none=True, exclude={"family", "percent"})
    if rule.between is not None:
        first, last = rule.between
        for end in (first, last):
            if end not in names:
                raise DataValidationError(
                    f"share_columns rule {label}: no column {end!r} (columns: {', '.join(names)}).",
                    source=source,
                    hint="name the first and last share column exactly as in the header.",
                )
        i, j = names.index(first), names.index(last)
        if j < i:
            raise DataValidationError(
                f"share_columns rule {label}: {last!r} comes before {first!r} in the file.",
                source=source,
                hint="write between: [first, last] in file order.",
            )
        return [(c, c) for c in names[i : j + 1]]
    if rule.columns is not None:
        absent = [c for c in rule.columns if c not in names]
        if absent:
            raise DataValidationError(
                f"share_columns rule {label}: no column(s) {', '.join(map(repr, absent))}.",
                source=source,
            )
        return [(c, c) for c in rule.columns]
    if rule.prefix is not None:
        prefix = rule.prefix
        pairs = [(c, c[len(prefix) :]) for c in names if c.startswith(prefix) and c != prefix]
    else:
        assert rule.regex is not None
        pattern = re.compile(rule.regex)
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
        raise DataValidationError(
            f"share_columns rule {label} matches no column (columns: {', '.join(names)}).",
            source=source,
        )
    return pairs


def map_columns(
    names: Sequence[str],
    *,
    columns: Mapping[str, str],
    share_rules: Sequence[ShareRule],
    source: str,
) -> tuple[dict[str, str], set[str]]:
    """File column -> the name the adapter uses, and the set of file columns in percent.

    Unmapped canonical names are looked up as they are; share columns already named
    ``share:<level>`` stay. An error names the rule or mapping that does not fit the file.
    """
    names = [str(n) for n in names]
    rename: dict[str, str] = {}
    unknown = sorted(set(columns) - set(CANONICAL))
    if unknown:
        raise DataValidationError(
            f"unknown key(s) {', '.join(unknown)} in columns; allowed: {', '.join(CANONICAL)}.",
            source=source,
        )
    for key, column in columns.items():
        if column not in names:
            raise DataValidationError(
                f"columns.{key} names {column!r}, which the file does not have (columns: "
                f"{', '.join(names)}).",
                source=source,
                hint="map each canonical name to a header of the file.",
            )
        rename[column] = key
    percent: set[str] = set()
    for rule in share_rules:
        for column, level in _rule_columns(rule, names, source):
            target = f"{SHARE_PREFIX[rule.family]}{level.strip()}"
            if column in rename and rename[column] != target:
                raise DataValidationError(
                    f"column {column!r} is both {rename[column]!r} and {target!r}.",
                    source=source,
                    hint="make the share_columns rules and columns mapping disjoint.",
                )
            rename[column] = target
            if rule.percent:
                percent.add(column)
    targets: dict[str, str] = {}
    for column in names:
        target = rename.get(column, column)
        if target in targets:
            raise DataValidationError(
                f"columns {targets[target]!r} and {column!r} both become {target!r}.",
                source=source,
                hint="map only one file column to each name.",
            )
        targets[target] = column
    return rename, percent


def matches_any(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)
