"""Generalist gap: are generalists (low GS-score) served worse than specialists?

Per profile (downstream utility or a human rating, when the audit has profiles with such a
column) or per user (the subject's recommendation NDCG@k), the detector

* regresses quality on the GS-score (:mod:`audit_sdk.plugins.features.generalist_specialist`)
  and covariates (log activity, age when known, the generator when profiles come from several)
  by OLS and reports the GS coefficient (``gs_gap:<quality>:slope``, quality per unit of GS);
* splits users into GS quantile bins (quintiles by default) and reports the mean quality of
  the top bin (specialists) minus the bottom bin (generalists)
  (``gs_gap:<quality>:quintile_gap``), with one row per bin for the chart;

both with percentile bootstrap CIs that resample users (a cluster bootstrap when a user has
several rows: windows, generators), per generator as well as pooled. Positive values mean
generalists are served worse. By default the gap fails when even the lower end of its CI is
above 0.01 (in the quality's units) and warns when it is above 0.

Sguerra et al., "Biases in LLM-generated musical taste profiles for recommendation" (RecSys
2025, Sec. 5.2) report this gap for LLM-written profiles; the GS-score is Waller & Anderson
(WWW 2019, Eq. 1) and Anderson et al. (WWW 2020).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from audit_sdk.plugins.detectors._generalist_gap_stats import METHOD, GapEstimates, estimate_gap
from pydantic import Field

from audit_sdk import Detector, Finding, GroupEstimate, MetricSpec, PluginParams, hookimpl
from audit_sdk.errors import AuditSDKError
from audit_sdk.interfaces import AuditContext
from audit_sdk.thresholds import Threshold, evaluate_threshold

__all__ = ["GeneralistGapDetector", "GeneralistGapParams"]

REFERENCE = (
    "Generalist gap as in Sguerra et al., RecSys 2025, Sec. 5.2; GS-score: Waller & Anderson, "
    "WWW 2019, Eq. 1; OLS slope (Wooldridge 2010, Eq. 4.8) and top-minus-bottom GS-quantile "
    "gap with a percentile cluster bootstrap over users (Cameron, Gelbach & Miller 2008)"
)
PROFILE_QUALITY = ("downstream_ndcg@10", "ndcg@10", "downstream_recall@10", "rating")
MIN_USERS = 20


class GeneralistGapParams(PluginParams):
    quality: str | None = None
    """Quality column: a profile column (e.g. ``downstream_ndcg@10``, ``rating``) or a per-user
    metric (e.g. ``ndcg@10``); ``downstream_ndcg@10`` or ``downstream_recall@10`` absent from
    the profiles is computed by the ``downstream_utility`` bi-encoder. Default: the first of ``downstream_ndcg@10``, ``ndcg@10``,
    ``downstream_recall@10``, ``rating`` in the profiles, else the audit's first NDCG metric."""
    covariates: list[str] | None = None
    """User-table columns to adjust the slope for (default: log activity, and age if known)."""
    feature: str = "gs_score"
    """The GS feature (or a ``gs_score`` column of the profiles or user table, which wins)."""
    embedding_role: str | None = None
    """Compute GS from item vectors of this ``models:`` role's ``embed`` (of each item's text:
    title, artist, genres, country, year) instead of the PPMI-SVD ``gs_score`` feature."""
    min_items: int = Field(default=5, ge=1, description="with embedding_role: fewest items")
    bins: int = Field(default=5, ge=2, le=20)
    """GS quantile bins (5: quintiles)."""
    n_resamples: int | None = Field(default=None, ge=100)
    """Bootstrap resamples (default: the audit's ``stats.bootstrap_resamples``)."""


@dataclass(frozen=True)
class _Rows:
    """The rows to analyse: quality, GS, covariates, the user and generator of each."""

    frame: pd.DataFrame
    quality: str
    level: str  # "profile" or "user"
    covariates: list[str]
    dropped: int


class GeneralistGapDetector(Detector):
    name = "generalist_gap"
    description = "Gap in recommendation or profile quality between generalists and specialists."
    Params = GeneralistGapParams
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec(
            "gs_gap:*:quintile_gap",
            "closer_to_zero",
            description="mean quality of the top GS bin (specialists) minus the bottom bin "
            "(generalists); positive: generalists served worse",
        ),
        MetricSpec(
            "gs_gap:*:slope",
            "closer_to_zero",
            description="OLS coefficient of quality on GS (per unit GS), adjusted for covariates",
        ),
    )
    default_thresholds: ClassVar[dict[str, Threshold]] = {
        "gs_gap:*:quintile_gap": Threshold(statistic="ci_low", fail_above=0.01, warn_above=0.0),
        "gs_gap:*:slope": Threshold(statistic="ci_low", warn_above=0.0),
    }

    def detect(self, context: AuditContext) -> list[Finding]:
        params: GeneralistGapParams = self.params  # type: ignore[assignment]
        try:
            rows = self._rows(context, params)
        except _Skip as skip:
            return [self._skipped(skip.metric, str(skip))]
        findings: list[Finding] = []
        generators = sorted(rows.frame["generator"].unique())
        scopes: list[tuple[str | None, pd.DataFrame]] = [(None, rows.frame)]
        if len(generators) > 1:
            scopes += [(g, rows.frame[rows.frame["generator"] == g]) for g in generators]
        for generator, frame in scopes:
            findings.extend(self._scope(context, params, rows, generator, frame))
        return findings

    # -- the rows ---------------------------------------------------------------------------
    def _rows(self, context: AuditContext, params: GeneralistGapParams) -> _Rows:
        profiles = context.subject.profiles
        table = context.user_table
        quality = params.quality
        level = "user"
        if quality is None:
            if profiles is not None:
                quality = next((c for c in PROFILE_QUALITY if c in profiles.columns), None)
            if quality is not None:
                level = "profile"
            else:
                quality = next((m for m in context.metric_columns if m.startswith("ndcg")), None)
        elif profiles is not None and quality in profiles.columns:
            level = "profile"
        elif profiles is not None and quality.startswith("downstream_"):
            profiles = _with_downstream_utility(context, profiles)
            if quality not in profiles.columns:
                raise _Skip(f"no downstream metric {quality!r}", f"gs_gap:{quality}:quintile_gap")
            level = "profile"
        if quality is None:
            raise _Skip(
                "no quality to compare: the audit has no recommendation NDCG and its profiles "
                f"have none of the columns {', '.join(PROFILE_QUALITY)}; set params.quality",
                "gs_gap:quality:quintile_gap",
            )
        metric = f"gs_gap:{quality}:quintile_gap"
        if level == "profile":
            assert profiles is not None
            frame = pd.DataFrame(
                {
                    "user_id": profiles["user_id"].astype(str).to_numpy(),
                    "generator": (
                        profiles["model"].astype(str).to_numpy()
                        if "model" in profiles.columns
                        else context.subject.name
                    ),
                    "quality": _numeric(profiles[quality], f"profiles column {quality!r}"),
                }
            )
            if "gs_score" in profiles.columns:
                frame["gs"] = _numeric(profiles["gs_score"], "profiles column 'gs_score'")
        elif quality in table.columns:
            frame = pd.DataFrame(
                {
                    "user_id": table.index.astype(str),
                    "generator": context.subject.name,
                    "quality": _numeric(table[quality], f"user metric {quality!r}"),
                }
            )
        else:
            raise _Skip(f"no per-user metric or profile column {quality!r}", metric)
        frame = frame.reset_index(drop=True)
        if "gs" not in frame.columns:
            frame["gs"] = self._gs(context, params, metric).reindex(frame["user_id"]).to_numpy()
        covariates = self._covariates(context, params, frame)
        before = len(frame)
        frame = frame.replace([np.inf, -np.inf], np.nan).dropna()
        if frame["user_id"].nunique() < MIN_USERS:
            raise _Skip(
                f"only {frame['user_id'].nunique()} users have both {quality} and a GS-score "
                f"(at least {MIN_USERS} needed)",
                metric,
            )
        return _Rows(frame, quality, level, covariates, before - len(frame))

    def _gs(self, context: AuditContext, params: GeneralistGapParams, metric: str) -> pd.Series:
        if params.embedding_role is not None:
            return _gs_from_role(context, params.embedding_role, params.min_items)
        if "gs_score" in context.user_table.columns:
            return _numeric(context.user_table["gs_score"], "user table column 'gs_score'")
        features = context.features
        if params.feature not in features.names():
            raise _Skip(
                f"no GS-score: the feature {params.feature!r} is not registered (install "
                "audit-sdk's built-in features) and no 'gs_score' column was given",
                metric,
            )
        gs = features.get(params.feature)
        if isinstance(gs, pd.DataFrame):
            raise _Skip(f"feature {params.feature!r} is a table, not one score per user", metric)
        return gs.set_axis(gs.index.astype(str))

    def _covariates(
        self, context: AuditContext, params: GeneralistGapParams, frame: pd.DataFrame
    ) -> list[str]:
        table = context.user_table.set_axis(context.user_table.index.astype(str))
        names: list[str] = []
        if params.covariates is None:
            activity = context.features.activity_events
            frame["log_activity"] = np.log1p(
                activity.set_axis(activity.index.astype(str)).reindex(frame["user_id"]).to_numpy()
            )
            names.append("log_activity")
            wanted = ["age"] if "age" in table.columns else []
        else:
            wanted = list(params.covariates)
        for column in wanted:
            if column not in table.columns:
                raise AuditSDKError(
                    f"detector generalist_gap: covariate {column!r} is not a user-table column "
                    f"(columns: {', '.join(map(str, table.columns))}); fix params.covariates"
                )
            values = _numeric(table[column], f"covariate {column!r}")
            frame[f"cov:{column}"] = values.reindex(frame["user_id"]).to_numpy()
            names.append(f"cov:{column}")
        return names

    # -- one scope (pooled or one generator) -------------------------------------------------
    def _scope(
        self,
        context: AuditContext,
        params: GeneralistGapParams,
        rows: _Rows,
        generator: str | None,
        frame: pd.DataFrame,
    ) -> list[Finding]:
        label = rows.quality if generator is None else f"{rows.quality}@{generator}"
        users = pd.Index(pd.unique(frame["user_id"]))
        if len(users) < MIN_USERS:
            reason = f"only {len(users)} users (at least {MIN_USERS} needed)"
            return [self._skipped(f"gs_gap:{label}:quintile_gap", reason)]
        codes = users.get_indexer(frame["user_id"])
        user_gs = frame.groupby("user_id", sort=False)["gs"].mean().reindex(users)
        edges = np.unique(np.quantile(user_gs.to_numpy(), np.linspace(0, 1, params.bins + 1)))
        if len(edges) < 3:
            return [self._skipped(f"gs_gap:{label}:quintile_gap", "GS-score is constant")]
        n_bins = len(edges) - 1
        bins = np.clip(
            np.searchsorted(edges, frame["gs"].to_numpy(), side="right") - 1, 0, n_bins - 1
        )
        covariates = list(rows.covariates)
        design = frame[covariates].to_numpy(dtype=float)
        if generator is None and frame["generator"].nunique() > 1:
            dummies = pd.get_dummies(frame["generator"], drop_first=True, dtype=float)
            design = np.column_stack([design, dummies.to_numpy()])
        spread = design.std(axis=0)
        design = (design[:, spread > 0] - design[:, spread > 0].mean(axis=0)) / spread[spread > 0]
        estimates = estimate_gap(
            frame["quality"].to_numpy(dtype=float),
            frame["gs"].to_numpy(dtype=float),
            design,
            codes,
            bins,
            n_bins,
            n_resamples=params.n_resamples or context.bootstrap.n_resamples,
            confidence=context.bootstrap.confidence,
            rng=context.rng(f"{self.name}:{label}"),
        )
        unit = (
            f"users (cluster bootstrap: a user's {len(frame) / len(users):.2g} rows on average "
            "resampled together)"
            if len(frame) > len(users)
            else "users"
        )
        common = {
            "generator": generator,
            "level": rows.level,
            "resampled_unit": unit,
            "n_rows": estimates.n_rows,
            "n_users": estimates.n_users,
            "covariates": [c.removeprefix("cov:") for c in covariates],
            "rows_dropped_missing": rows.dropped,
        }
        bin_rows = self._bin_rows(context, estimates, edges)
        warnings = [f"{r.group}: {r.warning}" for r in bin_rows if r.warning]
        gap, slope = estimates.gap, estimates.slope
        who = f"{generator}: " if generator else ""
        gap_metric, slope_metric = f"gs_gap:{label}:quintile_gap", f"gs_gap:{label}:slope"
        gap_threshold, slope_threshold = (
            self.threshold_for(gap_metric),
            self.threshold_for(slope_metric),
        )
        worse = "generalists served worse" if gap.estimate > 0 else "specialists served worse"
        return [
            Finding(
                detector=self.name,
                metric=gap_metric,
                estimate=gap.estimate,
                ci_low=gap.low,
                ci_high=gap.high,
                confidence=context.bootstrap.confidence,
                ci_method=METHOD,
                n=estimates.n_users,
                groups=bin_rows,
                group_by="gs_quintile" if n_bins == 5 else "gs_bin",
                subject=context.subject.name,
                threshold=gap_threshold,
                status=evaluate_threshold(gap_threshold, gap.estimate, gap.low, gap.high),
                explanation=(
                    f"{who}{rows.quality} is {estimates.bins[-1].estimate:.3g} for the most "
                    f"specialised GS bin and {estimates.bins[0].estimate:.3g} for the most "
                    f"generalist: gap {gap.estimate:.3g} [{gap.low:.3g}, {gap.high:.3g}] "
                    f"({worse}); resampled unit: {unit}"
                ),
                warnings=warnings,
                chart="bars",
                reference=REFERENCE,
                details=common,
            ),
            Finding(
                detector=self.name,
                metric=slope_metric,
                estimate=slope.estimate,
                ci_low=slope.low,
                ci_high=slope.high,
                confidence=context.bootstrap.confidence,
                ci_method=METHOD,
                n=estimates.n_users,
                subject=context.subject.name,
                threshold=slope_threshold,
                status=evaluate_threshold(slope_threshold, slope.estimate, slope.low, slope.high),
                explanation=(
                    f"{who}{rows.quality} changes by {slope.estimate:.3g} [{slope.low:.3g}, "
                    f"{slope.high:.3g}] per unit of GS-score, adjusted for "
                    f"{', '.join(common['covariates']) or 'nothing'}; resampled unit: {unit}"
                ),
                reference=REFERENCE,
                details=common,
            ),
        ]

    def _bin_rows(
        self, context: AuditContext, estimates: GapEstimates, edges: np.ndarray
    ) -> list[GroupEstimate]:
        rows = []
        last = len(estimates.bins) - 1
        for b, interval in enumerate(estimates.bins):
            role = " (generalists)" if b == 0 else " (specialists)" if b == last else ""
            n = estimates.bin_users[b]
            rows.append(
                GroupEstimate(
                    group=f"Q{b + 1}{role} GS {edges[b]:.2f}-{edges[b + 1]:.2f}",
                    n=n,
                    estimate=interval.estimate,
                    ci_low=interval.low,
                    ci_high=interval.high,
                    warning=(
                        f"only {n} users (< {context.min_group_size}); the estimate is noisy"
                        if n < context.min_group_size
                        else None
                    ),
                    extra={"gs_low": float(edges[b]), "gs_high": float(edges[b + 1])},
                )
            )
        return rows

    def _skipped(self, metric: str, reason: str) -> Finding:
        return Finding(detector=self.name, metric=metric, status="skipped", explanation=reason)


class _Skip(Exception):
    def __init__(self, reason: str, metric: str) -> None:
        super().__init__(reason)
        self.metric = metric


def _gs_from_role(context: AuditContext, role: str, min_items: int) -> pd.Series:
    """GS-score (Waller & Anderson 2019, Eq. 1) on item vectors from a model role's ``embed``."""
    from audit_sdk.plugins.detectors._profile_utility import item_texts
    from audit_sdk.plugins.features.generalist_specialist import gs_scores

    features = context.features
    vectors = np.asarray(context.models.get(role).embed(item_texts(features.catalog).tolist()))
    if vectors.ndim != 2 or len(vectors) != len(features.catalog):
        raise AuditSDKError(
            f"detector generalist_gap: models.{role}.embed returned shape {vectors.shape} for "
            f"{len(features.catalog)} items; it must return one vector per text"
        )
    scores = gs_scores(features.plays, vectors, min_items=min_items)
    return pd.Series(scores, index=features.users.astype(str), name="gs_score")


def _with_downstream_utility(context: AuditContext, profiles: pd.DataFrame) -> pd.DataFrame:
    """The profiles with ``downstream_recall@10`` and ``downstream_ndcg@10`` columns from the
    ``downstream_utility`` detector's bi-encoder (computed once per audit)."""
    from audit_sdk.plugins.detectors.downstream_utility import downstream_utility_table

    utility = downstream_utility_table(context).drop(columns=["n_positives"])
    return profiles.join(utility.add_prefix("downstream_"))


def _numeric(values: pd.Series, where: str) -> pd.Series:
    """``values`` as floats, or a clear error naming the column and the first bad value."""
    converted = pd.to_numeric(values, errors="coerce")
    bad = converted.isna() & values.notna()
    if bad.any():
        first = values[bad].iloc[0]
        raise AuditSDKError(
            f"detector generalist_gap: {where} holds non-numeric values (first: {first!r} at "
            f"row {values[bad].index[0]!r}); give numbers (NaN for missing)"
        )
    return converted.astype(float)


@hookimpl
def audit_sdk_register_detectors(register: Any) -> None:
    register(GeneralistGapDetector)
