"""Treatments, outcomes and covariates for the causal detector, built from an audit context.

The unit is a user (or, with ``unit="profile"``, one profile row of a user, clustered by user).
For a family (``genre`` or ``country``) each user has an *exposure* to each level: the share of
their training plays on that genre (item genre weights from ``Catalog.genre_matrix``
semantics: an item's genres share its plays equally) or on artists from that country. Where the
audited system logged shares itself (``share:<genre>`` / ``share_country:<CC>`` columns in the
profiles table or the user table), those are used instead.

A treatment is a binarized exposure, or the share itself:

* ``"median"`` (among the exposed): the share is above the median share among the level's
  listeners (users with a nonzero share): heavy listeners versus everyone else (light listeners
  and non-listeners). A rare genre's median over *all* users is 0, which would make "any play
  at all" the treatment; the listeners' median keeps the contrast meaningful for rare levels;
* ``"median_all"``: the share is above its median over all units (for a level most units never
  touch the median is 0 and the treatment is "any exposure");
* ``"threshold"``: the share is above a user-given value (e.g. 0.2);
* ``"top_k"``: the level is among the user's k largest shares (ties count; zero shares never);
* ``"continuous"``: the share itself, estimated with the partially linear double-ML model
  (:mod:`audit_sdk.stats.partially_linear`): the effect per unit of share (0 to 1).

Covariates never encode the treated level's own share, or positivity fails by construction.
For a genre, ``other_shares`` is the composition of the user's *other* listening (the shares
of the most common other genres, renormalized to exclude the treated one) and
``taste_breadth`` the entropy of that composition, so both are built per treatment. For an
artist country they are the user's genre shares, the genre treatments (heavy-listener
indicators) and the entropy of the genre shares: a country's effect is estimated holding the
genre mix fixed (where genre and country are nearly the same thing, e.g. k-pop and KR, the
overlap diagnostic says so). ``age``, ``activity`` (log of 1 + training plays), ``gs_score``
(if a ``gs_score`` column exists), the user's ``country`` (one-hot, most common levels) and,
for profile units, the ``window`` (one-hot) are shared. Any other name is a column of the
users table or the user table (a shell pattern such as ``longterm:*`` takes every matching
column): numeric columns enter as numbers, others one-hot.

Shares are compositional: being a heavy listener of one genre mechanically lowers the others'
shares, so the effect of a share-derived treatment is a total effect that includes that
reallocation (a planted effect on metal shows up, faintly, on the genres metal crowds out).
Missing values are imputed with the median plus a missing indicator; a covariate that is not
available is left out with a note.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from ._causal_exposure import DesignError, binarize_exposure, exposure_from_history

if TYPE_CHECKING:
    from audit_sdk.interfaces.context import AuditContext

__all__ = [
    "COVARIATES",
    "SHARE_PREFIX",
    "Binarization",
    "CausalDesign",
    "CovariateName",
    "DesignError",
    "Family",
    "binarize_exposure",
    "build_design",
    "exposure_from_history",
]

Family = Literal["genre", "country"]
Binarization = Literal["median", "median_all", "threshold", "top_k", "continuous"]
Unit = Literal["user", "profile"]
CovariateName = Literal[
    "age", "activity", "taste_breadth", "gs_score", "country", "window", "other_shares"
]
COVARIATES: tuple[CovariateName, ...] = (
    "age",
    "activity",
    "taste_breadth",
    "gs_score",
    "country",
    "window",
    "other_shares",
)
SHARE_PREFIX: dict[Family, str] = {"genre": "share:", "country": "share_country:"}
_MAX_COUNTRY_LEVELS = 10


@dataclass
class CausalDesign:
    """Everything the estimator needs for one (family, outcome)."""

    family: Family
    outcome: str
    unit: Unit
    y: np.ndarray
    units: pd.DataFrame  # user_id (and window for profile units), one row per unit
    treatments: pd.DataFrame  # units x levels, 0/1
    covariates: Sequence[np.ndarray] | np.ndarray
    covariate_names: list[str]
    groups: np.ndarray | None
    share_source: str
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# exposure


# ---------------------------------------------------------------------------------------------
# the design


def build_design(
    context: AuditContext,
    *,
    family: Family,
    outcome: str,
    binarization: Binarization = "median",
    k: int = 3,
    threshold: float | None = None,
    covariates: Sequence[str] = COVARIATES,
    unit: Unit = "user",
    max_treatments: int = 20,
    max_share_covariates: int = 10,
    profiles: pd.DataFrame | None = None,
) -> CausalDesign:
    """Outcome, treatments and covariates for one (family, outcome) of an audit.

    ``profiles`` replaces ``context.subject.profiles`` (e.g. one generator's rows of a log that
    holds several).
    """
    notes: list[str] = []
    if profiles is None:
        profiles = context.subject.profiles
    units, y, outcome_unit = _outcome(context, profiles, outcome, unit, notes)
    shares_all, source = _shares(context, profiles, family, units, outcome_unit)
    levels_nonzero = (shares_all > 0).sum(axis=0)
    if not (levels_nonzero > 0).any():
        raise DesignError(f"no unit has any {family} exposure ({source})")
    # levels nobody is exposed to stay, last, as rows the estimator skips with the reason
    ranked = levels_nonzero.sort_values(ascending=False, kind="stable")
    levels = list(ranked.index[:max_treatments])
    if len(ranked) > max_treatments:
        notes.append(
            f"{len(ranked) - max_treatments} rarer {family} levels not tested "
            f"(max_treatments={max_treatments})"
        )
    shares_all = shares_all.loc[:, list(ranked.index)]
    treatments = binarize_exposure(shares_all, method=binarization, k=k, threshold=threshold).loc[
        :, levels
    ]

    base, base_names = _shared_covariates(context, units, outcome_unit, covariates, notes)
    per_treatment = [c for c in ("other_shares", "taste_breadth") if c in covariates]
    groups = None
    if outcome_unit == "profile":
        _, groups = np.unique(units["user_id"].astype(str).to_numpy(), return_inverse=True)
    design_covariates: Sequence[np.ndarray] | np.ndarray
    names = list(base_names)
    if per_treatment and family == "country":
        # A country's effect is estimated holding the user's genre mix fixed.
        base, names = _genre_mix_covariates(
            context,
            profiles,
            units,
            outcome_unit,
            base,
            names,
            per_treatment,
            max_share_covariates,
            notes,
            binarization=binarization,
            k=k,
            threshold=threshold,
        )
        design_covariates = base
    elif per_treatment:
        others = list(ranked.index[: max_share_covariates + 1])
        design_covariates = _PerTreatmentCovariates(
            base,
            shares_all.to_numpy(dtype=float),
            [list(ranked.index).index(level) for level in levels],
            [list(ranked.index).index(level) for level in others],
            with_shares="other_shares" in per_treatment,
            with_breadth="taste_breadth" in per_treatment,
        )
        if "other_shares" in per_treatment:
            names.append(f"shares of the {len(others) - 1} most common other {family} levels")
        if "taste_breadth" in per_treatment:
            names.append(f"taste breadth (entropy of the other {family} shares)")
    else:
        design_covariates = base
    return CausalDesign(
        family=family,
        outcome=outcome,
        unit=outcome_unit,
        y=y,
        units=units,
        treatments=treatments,
        covariates=design_covariates,
        covariate_names=names,
        groups=groups,
        share_source=source,
        notes=notes,
    )


def _genre_mix_covariates(
    context: AuditContext,
    profiles: pd.DataFrame | None,
    units: pd.DataFrame,
    unit: Unit,
    base: np.ndarray,
    names: list[str],
    wanted: list[str],
    max_share_covariates: int,
    notes: list[str],
    *,
    binarization: Binarization,
    k: int,
    threshold: float | None,
) -> tuple[np.ndarray, list[str]]:
    try:
        genre_shares, _ = _shares(context, profiles, "genre", units, unit)
    except DesignError as exc:
        notes.append(f"genre mix covariates not available ({exc}); left out")
        return base, names
    values = genre_shares.to_numpy(dtype=float)
    if values.shape[1] == 0:
        notes.append("genre mix covariates not available (no genre exposure); left out")
        return base, names
    blocks = [base]
    names = list(names)
    if "other_shares" in wanted:
        order = np.argsort(-(values > 0).sum(axis=0), kind="stable")[:max_share_covariates]
        blocks.append(values[:, order])
        if binarization != "continuous":
            heavy = binarize_exposure(
                genre_shares.iloc[:, order], method=binarization, k=k, threshold=threshold
            )
            blocks.append(heavy.to_numpy(dtype=float))
        names.append(
            f"shares of the {len(order)} most common genres and the user's heavy-listener "
            "indicators of them (the genre treatments)"
        )
    if "taste_breadth" in wanted:
        blocks.append(_entropy(values)[:, None])
        names.append("taste breadth (entropy of the genre shares)")
    return np.column_stack(blocks), names


def _entropy(shares: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(shares > 0, -shares * np.log(shares), 0.0)
    return terms.sum(axis=1)


def _outcome(
    context: AuditContext,
    profiles: pd.DataFrame | None,
    outcome: str,
    unit: Unit,
    notes: list[str],
) -> tuple[pd.DataFrame, np.ndarray, Unit]:
    table = context.user_table
    if outcome in table.columns:
        values = pd.to_numeric(table[outcome], errors="coerce")
        if unit == "profile":
            notes.append(f"{outcome} is a per-user column; units are users")
        frame = pd.DataFrame({"user_id": table.index.astype(str), "y": values.to_numpy()})
        chosen: Unit = "user"
    elif profiles is not None and outcome in profiles.columns:
        rows = profiles.assign(
            user_id=profiles["user_id"].astype(str),
            y=pd.to_numeric(profiles[outcome], errors="coerce"),
        )
        if unit == "profile":
            keep = ["user_id", "y"] + (["window"] if "window" in rows.columns else [])
            frame = rows[keep].reset_index(drop=True)
            frame["_row"] = np.arange(len(frame))  # position in the profiles table
            chosen = "profile"
        else:
            frame = rows.groupby("user_id", sort=True)["y"].mean().reset_index()
            chosen = "user"
    else:
        where = f"user_table columns: {', '.join(map(str, table.columns)) or 'none'}"
        if profiles is not None:
            where += f"; profiles columns: {', '.join(map(str, profiles.columns))}"
        raise DesignError(f"outcome {outcome!r} not found ({where})")
    missing = ~np.isfinite(frame["y"].to_numpy(dtype=float))
    if missing.any():
        notes.append(f"{int(missing.sum())} units without a numeric {outcome} left out")
        frame = frame.loc[~missing].reset_index(drop=True)
    if frame.empty:
        raise DesignError(f"no unit has a numeric value of {outcome!r}")
    y = frame.pop("y").to_numpy(dtype=float)
    return frame, y, chosen


def _shares(
    context: AuditContext,
    profiles: pd.DataFrame | None,
    family: Family,
    units: pd.DataFrame,
    unit: Unit,
) -> tuple[pd.DataFrame, str]:
    prefix = SHARE_PREFIX[family]
    table = context.user_table

    def columns(frame: pd.DataFrame | None) -> list[str]:
        if frame is None:
            return []
        return [c for c in frame.columns if isinstance(c, str) and c.startswith(prefix)]

    def strip(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.apply(pd.to_numeric, errors="coerce").fillna(0.0).clip(lower=0.0)
        out.columns = [c[len(prefix) :] for c in out.columns]
        return out

    user_ids = units["user_id"].astype(str)
    profile_cols = columns(profiles)
    if unit == "profile" and profile_cols:
        assert profiles is not None
        rows = units["_row"].to_numpy()
        shares = strip(profiles[profile_cols]).iloc[rows].reset_index(drop=True)
        return shares, f"logged {prefix}* columns of the profiles"
    table_cols = columns(table)
    if table_cols:
        per_user = strip(table[table_cols])
        per_user.index = per_user.index.astype(str)
        return (
            per_user.reindex(user_ids, fill_value=0.0).reset_index(drop=True),
            f"logged {prefix}* columns of the user table",
        )
    if profile_cols:
        assert profiles is not None
        per_user = strip(profiles[profile_cols]).groupby(profiles["user_id"].astype(str)).mean()
        return (
            per_user.reindex(user_ids, fill_value=0.0).reset_index(drop=True),
            f"logged {prefix}* columns of the profiles (mean per user)",
        )
    interactions = context.train.interactions.frame
    if interactions.empty:
        raise DesignError(
            f"no {family} exposure: no {prefix}<level> columns and no training interactions"
        )
    # the one definition of a user's shares (audit_sdk.features), computed once per audit
    features = context.features
    per_user = features.genre_shares if family == "genre" else features.country_shares
    per_user = per_user.set_axis(per_user.index.astype(str))
    return (
        per_user.reindex(user_ids, fill_value=0.0).reset_index(drop=True),
        "training history joined with the catalog",
    )


def _user_attribute(context: AuditContext, column: str) -> pd.Series | None:
    for frame in (context.dataset.users.frame, context.user_table):
        if column in frame.columns:
            series = frame[column].set_axis(frame.index.astype(str))
            return series[~series.index.duplicated()]
    return None


def _user_columns_matching(context: AuditContext, pattern: str) -> list[str]:
    """Users-table and user-table columns named ``pattern`` (a shell pattern), or raise."""
    available: list[str] = []
    for frame in (context.dataset.users.frame, context.user_table):
        available.extend(str(c) for c in frame.columns if str(c) not in available)
    matched = [c for c in available if fnmatch.fnmatchcase(c, pattern)]
    if not matched:
        raise DesignError(
            f"covariate {pattern!r} is neither a built-in covariate "
            f"({', '.join(COVARIATES)}) nor a column of the users or user table "
            f"(columns: {', '.join(available) or 'none'})"
        )
    return matched


def _numeric_block(
    values: pd.Series, name: str, names: list[str], blocks: list[np.ndarray], notes: list[str]
) -> None:
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(numeric)
    if not finite.any():
        notes.append(f"covariate {name} has no numeric values; left out")
        return
    if not finite.all():
        filled = np.where(finite, numeric, np.median(numeric[finite]))
        blocks.extend([filled, (~finite).astype(float)])
        names.extend([name, f"{name} missing"])
        notes.append(f"covariate {name}: {int((~finite).sum())} missing values imputed (median)")
    else:
        blocks.append(numeric)
        names.append(name)


def _one_hot(
    values: pd.Series, name: str, names: list[str], blocks: list[np.ndarray], max_levels: int
) -> None:
    labels = values.astype("string").fillna("unknown").to_numpy(dtype=object)
    counts = pd.Series(labels).value_counts()
    kept = list(counts.index[:max_levels])
    labels = np.where(np.isin(labels, kept), labels, "other")
    levels = list(pd.Series(labels).value_counts().index)
    for level in levels[1:]:  # the most common level is the reference
        blocks.append((labels == level).astype(float))
        names.append(f"{name}={level}")


def _shared_covariates(
    context: AuditContext,
    units: pd.DataFrame,
    unit: Unit,
    wanted: Sequence[str],
    notes: list[str],
) -> tuple[np.ndarray, list[str]]:
    user_ids = units["user_id"].astype(str)
    blocks: list[np.ndarray] = []
    names: list[str] = []
    for name in wanted:
        if name in ("other_shares", "taste_breadth"):
            continue
        if name in ("age", "gs_score"):
            series = _user_attribute(context, name)
            if series is None:
                notes.append(f"covariate {name} not available; left out")
                continue
            _numeric_block(series.reindex(user_ids), name, names, blocks, notes)
        elif name == "activity":
            frame = context.train.interactions.frame
            if frame.empty:
                notes.append("covariate activity not available (no training interactions)")
                continue
            # plays summed: event rows (plays 1) and (user, item) aggregates alike
            events = frame.groupby(frame["user_id"].astype(str))["plays"].sum()
            blocks.append(np.log1p(events.reindex(user_ids, fill_value=0).to_numpy(dtype=float)))
            names.append("activity (log 1 + training plays)")
        elif name == "country":
            series = _user_attribute(context, "country")
            if series is None:
                notes.append("covariate country not available; left out")
                continue
            _one_hot(series.reindex(user_ids), "country", names, blocks, _MAX_COUNTRY_LEVELS)
        elif name == "window":
            if unit != "profile" or "window" not in units.columns:
                continue
            _one_hot(units["window"], "window", names, blocks, 50)
        else:
            for column in _user_columns_matching(context, name):
                series = _user_attribute(context, column)
                assert series is not None
                values = series.reindex(user_ids)
                numeric = pd.to_numeric(values, errors="coerce")
                if numeric.notna().sum() >= max(1, int(0.9 * values.notna().sum())):
                    _numeric_block(values, column, names, blocks, notes)
                else:
                    _one_hot(values, column, names, blocks, _MAX_COUNTRY_LEVELS)
    if not blocks:
        return np.zeros((len(units), 0)), names
    return np.column_stack(blocks), names


class _PerTreatmentCovariates(Sequence[np.ndarray]):
    """Shared covariates plus, per treatment, the composition of the *other* levels."""

    def __init__(
        self,
        base: np.ndarray,
        shares: np.ndarray,
        own: list[int],
        common: list[int],
        *,
        with_shares: bool,
        with_breadth: bool,
    ) -> None:
        self.base = base
        self.shares = shares
        self.own = own
        self.common = common
        self.with_shares = with_shares
        self.with_breadth = with_breadth

    def __len__(self) -> int:
        return len(self.own)

    def __getitem__(self, j: int) -> np.ndarray:  # type: ignore[override]
        own = self.own[j]
        # renormalize by the other levels' total (1 - own share when shares sum to 1; logged
        # shares need not), so that nothing here encodes the own share
        rest = self.shares.sum(axis=1) - self.shares[:, own]
        scale = np.divide(1.0, rest, out=np.zeros_like(rest), where=rest > 1e-12)
        blocks = [self.base]
        if self.with_shares:
            cols = [c for c in self.common if c != own][: len(self.common) - 1]
            blocks.append(self.shares[:, cols] * scale[:, None])
        if self.with_breadth:
            others = np.delete(self.shares, own, axis=1) * scale[:, None]
            blocks.append(_entropy(others)[:, None])
        return np.column_stack(blocks)
