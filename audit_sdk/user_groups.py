"""User groups to audit by: attributes from the users table and groups derived from behaviour.

Derived groups (all computed on the training split only):

* ``age_bucket``: ``age`` cut at ``groups.age_bins`` ("<25", "25-34", ..., "55+").
* ``activity``: tertiles of the number of training events ("low", "medium", "high").
* ``mainstreamness``: tertiles of the mean popularity of the items a user played
  ("niche", "mid", "mainstream"); cf. Kowald et al., "The unfairness of popularity bias in
  music recommendation", ECIR 2020.
* ``taste_breadth``: tertiles of the entropy of a user's genre shares
  ("specialist", "mid", "generalist").

Every derived group reads its feature from :class:`~audit_sdk.features.UserFeatures`, the one
definition of each. Categorical attributes keep their ``max_levels`` largest levels and pool
the rest as "other (pooled)" (a label no data value can already hold: a suffix is added if one
does); numeric attributes (other than age) are cut into quartiles.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from audit_sdk.config import GroupsConfig
from audit_sdk.data.tables import Dataset
from audit_sdk.errors import ConfigError
from audit_sdk.features.store import UserFeatures

__all__ = ["POOLED_LABEL", "age_bucket_labels", "build_group_columns", "intersection_name"]

POOLED_LABEL = "other (pooled)"


def age_bucket_labels(ages: pd.Series, bins: Sequence[int]) -> pd.Series:
    edges = sorted(bins)
    labels = [f"<{edges[0]}"]
    labels += [f"{lo}-{hi - 1}" for lo, hi in itertools.pairwise(edges)]
    labels.append(f"{edges[-1]}+")
    cut = pd.cut(
        pd.to_numeric(ages, errors="coerce"),
        bins=[-np.inf, *edges, np.inf],
        right=False,
        labels=labels,
    )
    return cut.astype("string").fillna("unknown")


def _tertiles(values: pd.Series, labels: tuple[str, str, str]) -> pd.Series:
    ranks = values.rank(method="first", pct=True)
    out = pd.Series(labels[1], index=values.index, dtype="string")
    out[ranks <= 1 / 3] = labels[0]
    out[ranks > 2 / 3] = labels[2]
    return out


def _quartile_labels(values: pd.Series) -> pd.Series:
    """Quartile bins labelled by rank and range, e.g. "Q1: 1–3", "Q2: 4–6" (tied edges merge
    bins, so there may be fewer than four)."""
    numbers = values.astype(float)
    edges = np.unique(np.nanquantile(numbers, [0, 0.25, 0.5, 0.75, 1.0]))
    if len(edges) < 2:
        return pd.Series("all", index=values.index, dtype="string")
    integral = bool(np.all(np.mod(numbers.dropna(), 1) == 0))
    codes = np.searchsorted(edges[1:-1], numbers, side="left")
    labels = []
    for i in range(len(edges) - 1):
        if integral:
            low = edges[i] if i == 0 else np.floor(edges[i]) + 1
            labels.append(f"Q{i + 1}: {low:g}–{np.floor(edges[i + 1]):g}")
        else:
            sign = "" if i == 0 else ">"
            labels.append(f"Q{i + 1}: {sign}{edges[i]:.3g}–{edges[i + 1]:.3g}")
    out = pd.Series(np.array(labels, dtype=object)[codes], index=values.index, dtype="string")
    return out.where(numbers.notna(), "unknown")


def _pool_levels(values: pd.Series, max_levels: int) -> pd.Series:
    values = values.astype("string").fillna("unknown")
    counts = values.value_counts()
    if len(counts) <= max_levels:
        return values
    keep = set(counts.index[: max_levels - 1])
    label, n = POOLED_LABEL, 2
    while label in set(counts.index):
        label, n = f"{POOLED_LABEL} {n}", n + 1
    return values.where(values.isin(keep), label)


def intersection_name(attributes: Sequence[str]) -> str:
    return " × ".join(attributes)


def build_group_columns(
    users: Sequence[str],
    train: Dataset,
    config: GroupsConfig,
    *,
    features: UserFeatures | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """A frame indexed by ``users`` with one string column per group attribute, and the list
    of columns to audit by (``config.attributes`` plus intersections). Derived groups are
    tertiles of the shared features (:mod:`audit_sdk.features.listening`)."""
    index = pd.Index(list(users), name="user_id")
    table = pd.DataFrame(index=index)
    attrs = train.users.frame.reindex(index)
    features = features if features is not None else UserFeatures(train, list(index))

    listened = len(features.interactions) > 0
    for derived in config.derived:
        if derived != "age_bucket" and not listened:
            continue  # derived from listening, and there is none (a log audited as it is)
        if derived == "age_bucket":
            if "age" in attrs.columns:
                table["age_bucket"] = age_bucket_labels(attrs["age"], config.age_bins)
        elif derived == "activity":
            counts = features.activity_events.reindex(index, fill_value=0)
            table["activity"] = _tertiles(counts.astype(float), ("low", "medium", "high"))
        elif derived == "mainstreamness":
            score = features.mainstreamness.reindex(index)
            table["mainstreamness"] = _tertiles(score.fillna(0.0), ("niche", "mid", "mainstream"))
        elif derived == "taste_breadth":
            entropy = features.genre_entropy.reindex(index)
            table["taste_breadth"] = _tertiles(
                entropy.fillna(0.0), ("specialist", "mid", "generalist")
            )

    columns: list[str] = []
    requested = config.attributes
    if requested is None:
        requested = [c for c in attrs.columns if c != "age" or "age_bucket" not in table.columns]
        requested = [c for c in requested if attrs[c].notna().any()]
    for attribute in requested:
        if attribute in table.columns:
            columns.append(attribute)
            continue
        if attribute not in attrs.columns:
            available = sorted({*attrs.columns, *table.columns})
            raise ConfigError(
                f"groups.attributes: {attribute!r} is neither a column of the users table nor a "
                f"derived group. Available: {', '.join(available) or 'none'}."
            )
        values = attrs[attribute]
        if pd.api.types.is_numeric_dtype(values) and values.nunique() > config.max_levels:
            table[attribute] = _quartile_labels(values)
        else:
            table[attribute] = _pool_levels(values, config.max_levels)
        columns.append(attribute)
    for derived in config.derived:
        if derived in table.columns and derived not in columns:
            columns.append(derived)
    for combo in config.intersections:
        missing = [a for a in combo if a not in table.columns]
        if missing:
            raise ConfigError(
                f"groups.intersections: {missing} are not audited attributes; add them to "
                "groups.attributes or groups.derived first."
            )
        name = intersection_name(combo)
        parts = [table[a].astype("string").fillna("unknown") for a in combo]
        table[name] = parts[0].str.cat(parts[1:], sep=" × ")
        columns.append(name)
    for column in columns:
        table[column] = table[column].astype("string").fillna("unknown")
    return table, columns
