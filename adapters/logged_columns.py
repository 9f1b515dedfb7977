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
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import Field

from audit_sdk.data.column_rules import ColumnSelector, select_columns
from audit_sdk.errors import DataValidationError

__all__ = ["CANONICAL", "SHARE_PREFIX", "ShareRule", "map_columns"]

CANONICAL = ("user_id", "model", "window", "prompt", "text", "items", "rating")
SHARE_PREFIX: dict[str, str] = {"genre": "share:", "country": "share_country:"}


class ShareRule(ColumnSelector):
    """Which file columns are shares of one family (a :class:`ColumnSelector`)."""

    family: Literal["genre", "country"] = Field("genre", description="genre or artist country")
    percent: bool = Field(False, description="values are percentages (0-100)")


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
        for column, level in select_columns(rule, names, source=source, param="share_columns"):
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
