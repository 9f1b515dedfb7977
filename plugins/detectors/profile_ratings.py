"""Rating analyses of taste profiles, for audits with human (or simulated) ratings on a Likert
scale (Sguerra et al., RecSys 2025, Secs. 5.1 and 5.3):

* ``rating:relative``: a user's rating of their own profile minus their rating of other
  users' profiles (the study's ``delta_rating``), from an ``is_own_profile`` column (own and
  others' profiles as rows) or a ``baseline_rating`` column (the user's rating of others'
  profiles beside each own one); the mean over users with a BCa bootstrap CI, per generator;
* ``rating:anova:<term>``: two-way ANOVA of rating by generator x time window with the
  interaction, type II sums of squares (statsmodels ``anova_lm(typ=2)``; Langsrud, Stat.
  Comput. 2003); the estimate is the partial eta squared ``SS_term / (SS_term + SS_resid)``
  (Cohen 1973) with a percentile cluster-bootstrap CI over users; F and p are in the details
  (they treat rows as independent, which repeated ratings by one user are not: the CI is the
  honest uncertainty);
* ``rating:spearman:<utility>``: Spearman's rho between ratings and downstream recall/NDCG
  ("perceived accuracy vs utility"), pooled and per generator, percentile cluster-bootstrap
  CIs over users (Efron & Tibshirani 1993, Sec. 13.3);
* ``rating:regression:<characteristic>``: OLS of users' ratings of their own profiles on user
  characteristics, per generator and pooled, cluster-robust by user
  (:mod:`audit_sdk.plugins.detectors.profile_ratings_regression`).

Every resample draws users with replacement and keeps all of a drawn user's rows (the cluster
bootstrap, Field & Welsh, JRSS-B 2007).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from audit_sdk.plugins.detectors.profile_ratings_regression import (
    DEFAULT_CHARACTERISTICS,
    characteristic_columns,
    numeric_column,
    rating_regressions,
)
from pydantic import Field
from scipy import stats

from audit_sdk import Detector, Finding, GroupEstimate, MetricSpec, Needs, PluginParams, hookimpl
from audit_sdk.errors import AuditSDKError
from audit_sdk.finding_builders import interval_row
from audit_sdk.interfaces import AuditContext
from audit_sdk.interfaces.requirements import Requirement
from audit_sdk.stats.bootstrap import Interval, mean_ci, statistic_ci
from audit_sdk.thresholds import evaluate_threshold

__all__ = ["ProfileRatingsDetector", "ProfileRatingsParams", "cluster_resample"]

REFERENCE = (
    "Rating analyses of Sguerra et al., RecSys 2025, Secs. 5.1, 5.3: relative rating "
    "(delta_rating), two-way type II ANOVA (statsmodels anova_lm typ=2) with partial eta^2, "
    "Spearman rho of rating vs downstream utility; cluster bootstrap over users (Field & Welsh 2007)"
)
UTILITY_COLUMNS = ("downstream_ndcg@10", "downstream_recall@10", "ndcg@10", "recall@10")
CLUSTER = "percentile cluster bootstrap (users resampled with their rows)"


class ProfileRatingsParams(PluginParams):
    rating: str = "rating"
    """Profile column holding the rating."""
    baseline: str = "baseline_rating"
    """Profile column with the user's rating of other users' profiles (relative rating =
    rating - baseline), used when there is no ``is_own_profile`` column."""
    scale: tuple[float, float] = (1.0, 7.0)
    """The rating scale; a rating outside it is an error."""
    utility: list[str] | None = None
    """Utility columns to correlate with ratings (default: those of ``downstream_ndcg@10``,
    ``downstream_recall@10``, ``ndcg@10``, ``recall@10`` the profiles have)."""
    anova_resamples: int = Field(default=200, ge=50, description="bootstrap fits of the ANOVA")
    characteristics: list[str] | None = None
    """User characteristics to regress ratings on, per generator (numeric columns of the
    profiles or the user table; default: those of gs_score, age, activity, mainstreamness
    the audit has)."""


def cluster_resample(users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row indices of one cluster-bootstrap resample: users drawn with replacement, each with
    all of its rows. ``users``: user code of each row (``0 .. n - 1``)."""
    order = np.argsort(users, kind="stable")
    counts = np.bincount(users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    drawn = rng.integers(len(counts), size=len(counts))
    lengths = counts[drawn]
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return order[np.repeat(starts[drawn], lengths) + offsets]


class ProfileRatingsDetector(Detector):
    name = "profile_ratings"
    description = "Relative ratings, generator x window ANOVA, and rating vs utility correlation."
    requires: ClassVar[frozenset[Requirement]] = frozenset({Needs.PROFILES})
    Params = ProfileRatingsParams
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("rating:relative", "higher_is_better", description="own minus others' rating"),
        MetricSpec("rating:anova:*", "none", 0.0, 1.0, "partial eta squared"),
        MetricSpec("rating:spearman:*", "higher_is_better", -1.0, 1.0, "Spearman rho"),
        MetricSpec("rating:regression:*", "none", description="rating change per unit"),
    )

    def detect(self, context: AuditContext) -> list[Finding]:
        params: ProfileRatingsParams = self.params  # type: ignore[assignment]
        profiles = context.subject.profiles
        if profiles is None or params.rating not in profiles.columns:
            return [self._skipped("rating:relative", f"the profiles have no {params.rating!r}")]
        frame = self._frame(context, profiles, params)
        regressions = self._regressions(context, frame, profiles, params)  # checks inputs first
        findings = [self._relative(context, frame)]
        findings += self._anova(context, frame, params)
        utility = params.utility or [c for c in UTILITY_COLUMNS if c in profiles.columns]
        for column in utility:
            findings.append(self._spearman(context, frame, profiles, column))
        return findings + regressions

    # -- regression on user characteristics -------------------------------------------------
    def _regressions(
        self,
        context: AuditContext,
        frame: pd.DataFrame,
        profiles: pd.DataFrame,
        params: ProfileRatingsParams,
    ) -> list[Finding]:
        own = frame[frame["own"]] if "own" in frame else frame  # users' ratings of their own
        data, used = characteristic_columns(
            own, profiles, context.user_table, params.characteristics
        )
        if not used:
            return [
                self._skipped(
                    "rating:regression:gs_score",
                    "no user characteristic to regress ratings on (none of "
                    f"{', '.join(DEFAULT_CHARACTERISTICS)}); set params.characteristics",
                )
            ]
        conf = context.bootstrap.confidence
        coefficients = rating_regressions(data, used, confidence=conf)
        findings = []
        for name in used:
            mine = [c for c in coefficients if c.characteristic == name]
            pooled = next(c for c in mine if c.generator is None)
            rows = [
                GroupEstimate(
                    group=str(c.generator),
                    n=c.n_users,
                    estimate=c.estimate if np.isfinite(c.estimate) else None,
                    ci_low=c.low if np.isfinite(c.low) else None,
                    ci_high=c.high if np.isfinite(c.high) else None,
                    warning=(
                        f"only {c.n_users} users (< {context.min_group_size})"
                        if c.n_users < context.min_group_size
                        else None
                    ),
                )
                for c in mine
                if c.generator is not None
            ]
            interval = Interval(
                pooled.estimate, pooled.low, pooled.high, pooled.n_users, pooled.method
            )
            others = ", ".join(n for n in used if n != name)
            findings.append(
                self._finding(
                    context,
                    f"rating:regression:{name}",
                    interval,
                    rows,
                    f"one unit more {name} goes with a rating {pooled.estimate:+.3g} "
                    f"[{pooled.low:.3g}, {pooled.high:.3g}]"
                    + (f", holding {others} fixed" if others else "")
                    + f" (OLS over {pooled.n_rows} ratings by {pooled.n_users} users"
                    + (", generator fixed effects" if rows else "")
                    + f"; {pooled.method})",
                    details={
                        "characteristics": used,
                        "n_rows": pooled.n_rows,
                        "standard_errors": pooled.method,
                        "resampled_unit": "users (clusters)"
                        if "cluster" in pooled.method
                        else "rows (one per user)",
                    },
                )
            )
        return findings

    def _frame(
        self, context: AuditContext, profiles: pd.DataFrame, params: ProfileRatingsParams
    ) -> pd.DataFrame:
        raw = profiles[params.rating]
        rating = numeric_column(raw, f"profiles column {params.rating!r}", "give numbers")
        low, high = params.scale
        outside = (rating < low) | (rating > high)
        if outside.any():
            raise AuditSDKError(
                f"detector profile_ratings: rating {rating[outside].iloc[0]:g} at row "
                f"{rating[outside].index[0]!r} is outside the scale [{low:g}, {high:g}]; fix "
                "the rating or set params.scale"
            )
        frame = pd.DataFrame(
            {
                "user_id": profiles["user_id"].astype(str),
                "generator": profiles["model"].astype(str)
                if "model" in profiles
                else context.subject.name,
                "window": profiles["window"].astype(str) if "window" in profiles else "all",
                "rating": rating,
            }
        )
        if "is_own_profile" in profiles:
            frame["own"] = profiles["is_own_profile"].astype(bool)
        elif params.baseline in profiles:
            baseline = pd.to_numeric(profiles[params.baseline], errors="coerce")
            if ((baseline < low) | (baseline > high)).any():
                raise AuditSDKError(
                    f"detector profile_ratings: {params.baseline!r} has values outside the "
                    f"scale [{low:g}, {high:g}]; fix them or set params.scale"
                )
            frame["baseline"] = baseline
        frame = frame.dropna(subset=["rating"])
        frame["code"] = pd.factorize(frame["user_id"])[0]
        return frame

    # -- relative rating --------------------------------------------------------------------
    def _relative(self, context: AuditContext, frame: pd.DataFrame) -> Finding:
        metric = "rating:relative"
        if "baseline" in frame:
            own = frame.assign(own=True)
            others = frame.assign(own=False, rating=frame["baseline"]).dropna(subset=["rating"])
            frame = pd.concat([own, others], ignore_index=True)
        if "own" not in frame:
            return self._skipped(
                metric, "no is_own_profile or baseline_rating column: no relative rating"
            )
        means = frame.groupby(["generator", "user_id", "own"])["rating"].mean().unstack("own")
        paired = means.dropna(subset=[c for c in (True, False) if c in means.columns])
        if True not in means.columns or False not in means.columns or paired.empty:
            return self._skipped(
                metric,
                "no user rated both their own and another user's profile (a relative rating "
                "needs both rows)",
            )
        delta = (paired[True] - paired[False]).rename("delta")
        unpaired = int(len(means) - len(paired))
        rng = context.rng(f"{self.name}:relative")
        conf, b = context.bootstrap.confidence, context.bootstrap.n_resamples
        rows = [
            self._row(
                str(g), mean_ci(d.to_numpy(), confidence=conf, n_resamples=b, rng=rng), context
            )
            for g, d in delta.groupby(level="generator")
        ]
        pooled = delta.groupby(level="user_id").mean()
        overall = mean_ci(pooled.to_numpy(), confidence=conf, n_resamples=b, rng=rng)
        warnings = [f"{r.group}: {r.warning}" for r in rows if r.warning]
        if unpaired:
            warnings.append(f"{unpaired} user x generator pairs lack an own or another's rating")
        return self._finding(
            context,
            metric,
            overall,
            rows,
            f"users rate their own profile {overall.estimate:+.3g} [{overall.low:.3g}, "
            f"{overall.high:.3g}] above others' profiles ({overall.n} users)",
            warnings=warnings,
        )

    # -- ANOVA ------------------------------------------------------------------------------
    def _anova(
        self, context: AuditContext, frame: pd.DataFrame, params: ProfileRatingsParams
    ) -> list[Finding]:
        import statsmodels.api as sm
        import statsmodels.formula.api as smf

        factors = [f for f in ("generator", "window") if frame[f].nunique() > 1]
        if not factors:
            return [self._skipped("rating:anova:generator", "one generator and one window")]
        terms = [f"C({f})" for f in factors]
        formula = "rating ~ " + " * ".join(terms)

        def eta(data: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
            table = sm.stats.anova_lm(smf.ols(formula, data=data).fit(), typ=2)
            ss = table["sum_sq"]
            return ss.drop("Residual") / (ss.drop("Residual") + ss["Residual"]), table

        estimate, table = eta(frame)
        rng = context.rng(f"{self.name}:anova")
        codes = frame["code"].to_numpy()
        reps = []
        for _ in range(params.anova_resamples):
            sample = frame.iloc[cluster_resample(codes, rng)]
            if all(sample[f].nunique() > 1 for f in factors):
                reps.append(eta(sample)[0].reindex(estimate.index))
        replicates = pd.DataFrame(reps)
        findings = []
        n_users = int(frame["user_id"].nunique())
        for term in estimate.index:
            label = term.replace("C(", "").replace(")", "")
            ci = statistic_ci(
                replicates[term].to_numpy(dtype=float),
                float(estimate[term]),
                confidence=context.bootstrap.confidence,
                n=n_users,
                method=CLUSTER,
                bounds=(0.0, 1.0),
            )
            # eta^2 is biased upward, so for a null term the plug-in can sit below the
            # resamples' 2.5% quantile: the interval is widened to include it
            ci = Interval(ci.estimate, min(ci.low, ci.estimate), ci.high, ci.n, ci.method)
            row = table.loc[term]
            findings.append(
                self._finding(
                    context,
                    f"rating:anova:{label}",
                    ci,
                    [],
                    f"{label} explains a partial eta^2 of {ci.estimate:.3g} [{ci.low:.3g}, "
                    f"{ci.high:.3g}] of rating variance (type II ANOVA, F={row['F']:.3g}, "
                    f"p={row['PR(>F)']:.3g} assuming independent rows); resampled unit: users",
                    details={
                        "F": float(row["F"]),
                        "df": float(row["df"]),
                        "p_value": float(row["PR(>F)"]),
                        "anova": {t: table.loc[t].astype(float).to_dict() for t in table.index},
                    },
                )
            )
        return findings

    # -- Spearman ---------------------------------------------------------------------------
    def _spearman(
        self, context: AuditContext, frame: pd.DataFrame, profiles: pd.DataFrame, column: str
    ) -> Finding:
        metric = f"rating:spearman:{column}"
        if column not in profiles:
            return self._skipped(metric, f"the profiles have no {column!r} column")
        data = frame.assign(utility=pd.to_numeric(profiles[column], errors="coerce")).dropna()
        rng = context.rng(f"{self.name}:{metric}")
        rows = []
        for generator, part in data.groupby("generator"):
            rows.append(self._row(str(generator), self._rho(part, context, rng), context))
        overall = self._rho(data, context, rng)
        return self._finding(
            context,
            metric,
            overall,
            rows if len(rows) > 1 else [],
            f"Spearman rho between rating and {column}: {overall.estimate:.3g} "
            f"[{overall.low:.3g}, {overall.high:.3g}] over {overall.n} users",
        )

    def _rho(self, data: pd.DataFrame, context: AuditContext, rng: np.random.Generator) -> Interval:
        n_users = int(data["user_id"].nunique())
        if n_users < 3:
            return Interval(float("nan"), float("nan"), float("nan"), n_users, CLUSTER)
        x, y = data["rating"].to_numpy(), data["utility"].to_numpy()
        codes = pd.factorize(data["user_id"])[0]
        estimate = float(stats.spearmanr(x, y).statistic)
        reps = np.empty(context.bootstrap.n_resamples)
        for i in range(len(reps)):
            rows = cluster_resample(codes, rng)
            reps[i] = stats.spearmanr(x[rows], y[rows]).statistic
        return statistic_ci(
            reps,
            estimate,
            confidence=context.bootstrap.confidence,
            n=n_users,
            method=CLUSTER,
            bounds=(-1.0, 1.0),
        )

    # -- building findings ------------------------------------------------------------------
    def _row(self, group: str, interval: Interval, context: AuditContext) -> GroupEstimate:
        return interval_row(group, interval, min_n=context.min_group_size)

    def _finding(
        self,
        context: AuditContext,
        metric: str,
        interval: Interval,
        rows: list[GroupEstimate],
        explanation: str,
        *,
        warnings: list[str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> Finding:
        if not np.isfinite(interval.estimate):
            return self._skipped(metric, f"too few users ({interval.n}) for {metric}")
        threshold = self.threshold_for(metric)
        return Finding(
            detector=self.name,
            metric=metric,
            estimate=interval.estimate,
            ci_low=interval.low,
            ci_high=interval.high,
            confidence=context.bootstrap.confidence,
            ci_method=interval.method,
            n=interval.n,
            groups=rows,
            group_by="generator" if rows else None,
            subject=context.subject.name,
            threshold=threshold,
            status=evaluate_threshold(threshold, interval.estimate, interval.low, interval.high),
            explanation=explanation,
            warnings=(warnings if warnings is not None else [])
            + [f"{r.group}: {r.warning}" for r in rows if r.warning and warnings is None],
            chart="bars" if rows else None,
            reference=REFERENCE,
            details={"resampled_unit": "users", **(details or {})},
        )

    def _skipped(self, metric: str, reason: str) -> Finding:
        return Finding(detector=self.name, metric=metric, status="skipped", explanation=reason)


@hookimpl
def audit_sdk_register_detectors(register: Any) -> None:
    register(ProfileRatingsDetector)
