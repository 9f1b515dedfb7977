"""Per-generator regression of profile ratings on user characteristics (Sguerra et al., RecSys
2025, Sec. 5.3: which users rate a generator's profiles higher or lower).

For each generator, OLS of the rating on the characteristics (GS-score, age, activity,
mainstreamness, ... : numeric columns of the profiles or of the user table), and pooled with
generator fixed effects. Standard errors are cluster-robust by user when a user contributes
several rows (windows, others' profiles): the sandwich estimator of Liang & Zeger (Biometrika
1986) / Cameron & Miller (J. Human Resources 2015, Eq. 11, with the small-sample factor
G/(G-1) (N-1)/(N-K) and t(G-1) quantiles), statsmodels ``OLS.fit(cov_type="cluster")``;
heteroskedasticity-robust HC1 (MacKinnon & White 1985) when every user has one row. Row-level
errors would treat a user's repeated ratings as independent and understate the uncertainty
(``tests/test_profile_ratings_regression.py`` shows both coverages on a planted world).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from audit_sdk.errors import AuditSDKError

__all__ = ["DEFAULT_CHARACTERISTICS", "Coefficient", "rating_regressions"]

DEFAULT_CHARACTERISTICS = ("gs_score", "age", "activity", "mainstreamness")


@dataclass(frozen=True)
class Coefficient:
    """One characteristic's coefficient in one regression (``generator`` None: pooled)."""

    generator: str | None
    characteristic: str
    estimate: float
    low: float
    high: float
    n_users: int
    n_rows: int
    method: str


def numeric_column(values: pd.Series, what: str, fix: str) -> pd.Series:
    """``values`` as numbers; a value that is not one is an error naming ``what`` (e.g.
    "profiles column 'rating'"), the value, its row, and ``fix``."""
    converted = pd.to_numeric(values, errors="coerce")
    bad = converted.isna() & values.notna()
    if bad.any():
        raise AuditSDKError(
            f"detector profile_ratings: {what} holds a non-number {values[bad].iloc[0]!r} at "
            f"row {values[bad].index[0]!r}; {fix}"
        )
    return converted.astype(float)


def characteristic_columns(
    frame: pd.DataFrame,
    profiles: pd.DataFrame,
    user_table: pd.DataFrame,
    names: Sequence[str] | None,
) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` (one row per rated profile) with each characteristic as a column: from the
    profiles' column of that name, else the user table's (joined by user). Named ones must
    exist; the defaults are taken where present."""
    out = frame.copy()
    used = []
    for name in names or DEFAULT_CHARACTERISTICS:
        if name in profiles.columns:
            values = profiles[name].reindex(frame.index)
        elif name in user_table.columns:
            column = user_table[name].set_axis(user_table.index.astype(str))
            values = column.reindex(frame["user_id"]).set_axis(frame.index)
        elif names:
            raise AuditSDKError(
                f"detector profile_ratings: no characteristic {name!r} in the profiles or the "
                "user table; name existing columns in params.characteristics"
            )
        else:
            continue
        if not names and not pd.api.types.is_numeric_dtype(values):
            continue
        out[name] = numeric_column(
            values,
            f"characteristic {name!r}",
            "give numbers, or leave it out of params.characteristics",
        )
        used.append(name)
    return out, used


def _fit(data: pd.DataFrame, columns: list[str], fixed: list[str], confidence: float) -> dict:
    import statsmodels.api as sm

    design = data[columns]
    if fixed:
        design = pd.concat(
            [design, pd.get_dummies(data[fixed], drop_first=True, dtype=float)], axis=1
        )
    design = sm.add_constant(design, has_constant="add")
    codes = pd.factorize(data["user_id"])[0]
    repeated = len(codes) > codes.max() + 1
    model = sm.OLS(data["rating"].to_numpy(float), design.to_numpy(float))
    if repeated:
        result = model.fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True)
        method = "cluster-robust by user (CR1, t with G-1 df)"
    else:
        result = model.fit(cov_type="HC1", use_t=True)
        method = "HC1 (one row per user)"
    bounds = np.asarray(result.conf_int(alpha=1 - confidence))
    return {
        c: (float(result.params[i + 1]), float(bounds[i + 1, 0]), float(bounds[i + 1, 1]))
        for i, c in enumerate(columns)
    } | {"_method": method}


def rating_regressions(
    frame: pd.DataFrame, characteristics: list[str], *, confidence: float
) -> list[Coefficient]:
    """Coefficients of every characteristic, pooled (generator fixed effects) then per
    generator; NaN where a regression has too few users (fewer than characteristics + 3)
    or a characteristic does not vary."""
    data = frame.dropna(subset=["rating", *characteristics])
    scopes: list[tuple[str | None, pd.DataFrame]] = [(None, data)]
    if data["generator"].nunique() > 1:
        scopes += [(str(g), part) for g, part in data.groupby("generator")]
    out = []
    for generator, part in scopes:
        fixed = ["generator"] if generator is None and part["generator"].nunique() > 1 else []
        n_users = int(part["user_id"].nunique())
        varying = [c for c in characteristics if part[c].nunique() > 1]
        fits: dict = {}
        if varying and n_users >= len(varying) + 3:
            fits = _fit(part, varying, fixed, confidence)
        for name in characteristics:
            estimate, low, high = fits.get(name, (np.nan, np.nan, np.nan))
            out.append(
                Coefficient(
                    generator,
                    name,
                    estimate,
                    low,
                    high,
                    n_users,
                    len(part),
                    str(fits.get("_method", "not estimated")),
                )
            )
    return out
