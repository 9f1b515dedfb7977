"""Popularity and exposure bias of recommendation lists.

Per user (on the top-k list, against the training history):

* ``arp``: average recommendation popularity, the mean share of training users who played each
  recommended item (Yin et al., VLDB 2012; Abdollahpouri et al., FLAIRS 2019, Eq. 1).
* ``aplt``: average percentage of long-tail items, the share of recommended items outside the
  short head, the head being the ``head_share`` (20%) most popular catalog items, the Pareto
  convention (Abdollahpouri et al., FLAIRS 2019, Eq. 2).
* ``popularity_lift``: (ARP of the list - ARP of the user's history) / ARP of the history
  (Abdollahpouri et al., UMAP 2021; Kowald et al., ECIR 2020).
* ``calibration_kl``: miscalibration of genres, KL(p || q~) between the genre distribution of
  the history p and of the list q, with q~ = (1 - alpha) q + alpha p (Steck, RecSys 2018, Eq. 5).

Over the catalog: ``gini_exposure``, the Gini coefficient of how often each item is
recommended (0 = equal exposure), with a CI from resampling users.

Each metric is reported overall (subject beside the reference baselines) and per user group.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field
from scipy import sparse

from audit_sdk.finding_builders import group_disparity_finding, interval_finding, model_rows
from audit_sdk.group_statistics import compare_groups_many
from audit_sdk.hookspecs import hookimpl
from audit_sdk.interfaces import AuditContext, Detector, PluginParams, SubjectOutputs
from audit_sdk.interfaces.requirements import MetricSpec, Needs, Requirement
from audit_sdk.report_model import Finding, GroupEstimate
from audit_sdk.stats.bootstrap import Interval, statistic_ci
from audit_sdk.stats.resampling_weights import poisson_weight_blocks
from audit_sdk.thresholds import Threshold

__all__ = ["PopularityBiasDetector", "gini", "user_popularity_metrics"]

PER_USER_METRICS = ("arp", "aplt", "popularity_lift", "calibration_kl")
REFERENCE_BY_METRIC = {
    "arp": "Abdollahpouri, Burke & Mobasher, FLAIRS 2019, Eq. 1 (ARP)",
    "aplt": "Abdollahpouri, Burke & Mobasher, FLAIRS 2019, Eq. 2 (APLT)",
    "popularity_lift": "Abdollahpouri et al., UMAP 2021 (popularity lift); Kowald et al., ECIR 2020",
    "calibration_kl": "Steck, 'Calibrated recommendations', RecSys 2018, Eq. 5",
}


class PopularityBiasParams(PluginParams):
    head_share: float = Field(0.2, gt=0, lt=1, description="share of items in the short head")
    calibration_alpha: float = Field(0.01, gt=0, lt=1)
    group_metrics: list[str] = Field(
        default_factory=lambda: ["popularity_lift", "calibration_kl", "aplt"]
    )
    group_by: list[str] | None = None


def gini(values: np.ndarray, *, n_zeros: int = 0) -> np.ndarray:
    """Gini coefficient along the last axis, G = 2 sum_i i x_(i) / (n sum x) - (n + 1) / n
    over the ascending values x_(i) (Lorenz-curve formula), counting ``n_zeros`` more items
    with no exposure at all (they take the lowest ranks)."""
    x = np.sort(np.asarray(values, dtype=float), axis=-1)
    n = x.shape[-1] + n_zeros
    total = x.sum(axis=-1)
    ranks = np.arange(n_zeros + 1, n + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = (2.0 * (x * ranks).sum(axis=-1) / (n * total)) - (n + 1.0) / n
    return np.where(total > 0, g, 0.0)


Triples = tuple[np.ndarray, np.ndarray, np.ndarray]  # user codes, item codes (-1: unknown), weight


@dataclass(frozen=True)
class _Inputs:
    """What every model's metrics share, coded once per audit: users, items, popularity, the
    short head, the training history and the genre matrix."""

    users: pd.Index
    items: pd.Index
    popularity: np.ndarray  # per item, with a trailing 0 for items outside the catalog
    head: np.ndarray  # per item (and the trailing one), in the short head
    history: Triples  # user codes, item codes (-1: outside the catalog), plays
    hist_arp: np.ndarray  # per user, mean popularity of the distinct items heard
    genres: sparse.csr_matrix | None  # items x genres, None without genres

    @classmethod
    def of(cls, context: AuditContext, head_share: float) -> _Inputs:
        users = context.user_table.index
        items = context.dataset.catalog.frame.index
        popularity = context.item_popularity.reindex(items, fill_value=0.0).to_numpy(float)
        head = np.zeros(len(items) + 1, dtype=bool)
        head[np.argsort(-popularity, kind="stable")[: max(1, round(head_share * len(items)))]] = (
            True
        )
        train = context.train.interactions.frame
        u = users.get_indexer(train["user_id"])
        known = u >= 0
        i = items.get_indexer(train["item_id"])[known]
        plays = train["plays"].to_numpy(dtype=float)[known]
        pop_ext = np.append(popularity, 0.0)
        # Distinct (user, item) pairs of the history, unknown items in the extra column.
        history = sparse.csr_matrix(
            (np.ones(len(i)), (u[known], np.where(i < 0, len(items), i))),
            shape=(len(users), len(items) + 1),
        )
        history.data[:] = 1.0
        with np.errstate(invalid="ignore", divide="ignore"):
            hist_arp = (history @ pop_ext) / np.diff(history.indptr)
        genres = None
        if _has_genres(context):
            genres = sparse.csr_matrix(context.dataset.catalog.genre_matrix().to_numpy())
        return cls(users, items, pop_ext, head, (u[known], i, plays), hist_arp, genres)

    def list_codes(self, recommendations: pd.DataFrame, k: int) -> tuple[np.ndarray, np.ndarray]:
        """User and item codes of the top-k slots of audited users."""
        recs = recommendations[recommendations["rank"].to_numpy() <= k]
        u = self.users.get_indexer(recs["user_id"])
        on = u >= 0
        return u[on], self.items.get_indexer(recs["item_id"])[on]


def user_popularity_metrics(
    recommendations: pd.DataFrame,
    context: AuditContext,
    *,
    head_share: float,
    alpha: float,
    inputs: _Inputs | None = None,
) -> pd.DataFrame:
    """One row per audited user with the four per-user metrics (``calibration_kl`` NaN when
    the catalog has no genres). One pass over the top-k lists and one over the training
    interactions, on integer codes; memory linear in users + items + interactions."""
    inputs = inputs or _Inputs.of(context, head_share)
    n_users = len(inputs.users)
    rec_user, rec_item = inputs.list_codes(recommendations, context.k)
    # Items outside the catalog (code -1: the trailing entry) have popularity 0, long tail.
    n_recs = np.bincount(rec_user, minlength=n_users).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        arp = np.bincount(rec_user, weights=inputs.popularity[rec_item], minlength=n_users) / n_recs
        aplt = np.bincount(rec_user, weights=~inputs.head[rec_item], minlength=n_users) / n_recs

    with np.errstate(invalid="ignore", divide="ignore"):
        lift = (arp - inputs.hist_arp) / np.where(inputs.hist_arp == 0, np.nan, inputs.hist_arp)

    kl = np.full(n_users, np.nan)
    if inputs.genres is not None:
        kl = _calibration_kl(
            inputs.history,
            (rec_user, rec_item, np.ones(len(rec_user))),
            inputs.genres,
            n_users,
            alpha,
        )
    out = pd.DataFrame(
        {"arp": arp, "aplt": aplt, "popularity_lift": lift, "calibration_kl": kl},
        index=inputs.users,
    )
    out.index.name = "user_id"
    return out


def _has_genres(context: AuditContext) -> bool:
    frame = context.dataset.catalog.frame
    return "genres" in frame.columns and bool(frame["genres"].explode().notna().any())


def _calibration_kl(
    history: Triples, lists: Triples, genres: sparse.csr_matrix, n_users: int, alpha: float
) -> np.ndarray:
    """Steck (2018), Eq. 5: KL(p || (1-alpha) q + alpha p), per user; users x genres dense
    (genres are few), users x items sparse."""

    def distribution(triples: Triples) -> np.ndarray:
        rows, cols, weight = triples
        ok = cols >= 0
        m = sparse.csr_matrix((weight[ok], (rows[ok], cols[ok])), shape=(n_users, genres.shape[0]))
        dist = np.asarray((m @ genres).todense())
        totals = dist.sum(axis=1, keepdims=True)
        return np.divide(dist, totals, out=np.zeros_like(dist), where=totals > 0)

    p = distribution(history)
    q = distribution(lists)
    q_tilde = (1 - alpha) * q + alpha * p
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / q_tilde), 0.0)
    kl = terms.sum(axis=1)
    has_both = (p.sum(axis=1) > 0) & (q.sum(axis=1) > 0)
    return np.where(has_both, kl, np.nan)


def _most_exposed(exposed: pd.Series, context: AuditContext, top: int = 10) -> list[dict[str, Any]]:
    """The items that take the most slots in the subject's lists, with their share."""
    catalog = context.dataset.catalog.frame
    total = float(exposed.sum()) or 1.0
    out = []
    for item_id, count in exposed.head(top).items():
        row = catalog.loc[item_id]
        out.append(
            {
                "item_id": str(item_id),
                "title": str(row.get("title", item_id)),
                "artist": str(row.get("artist", "")),
                "share_of_slots": round(float(count) / total, 4),
            }
        )
    return out


class PopularityBiasDetector(Detector):
    name = "popularity_bias"
    description = "Popularity and exposure bias of recommendation lists, overall and per group."
    requires: ClassVar[frozenset[Requirement]] = frozenset({Needs.RECOMMENDATIONS})
    Params = PopularityBiasParams
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("*:group_gap", "lower_is_better", 0.0, None, "largest minus smallest group"),
        MetricSpec("arp", "lower_is_better", 0.0, 1.0, "average recommendation popularity"),
        MetricSpec("aplt", "higher_is_better", 0.0, 1.0, "share of long-tail items in lists"),
        MetricSpec("popularity_lift", "lower_is_better", -1.0, None),
        MetricSpec("calibration_kl", "lower_is_better", 0.0, None),
        MetricSpec("gini_exposure", "lower_is_better", 0.0, 1.0),
    )
    default_thresholds: ClassVar[dict[str, Threshold]] = {
        # Lists twice as popular as the user's own history, with evidence.
        "popularity_lift": Threshold(statistic="ci_low", warn_above=1.0),
    }

    def detect(self, context: AuditContext) -> list[Finding]:
        params: PopularityBiasParams = self.params  # type: ignore[assignment]
        models: dict[str, SubjectOutputs] = {context.subject.name: context.subject}
        models.update(context.baselines)
        inputs = _Inputs.of(context, params.head_share)
        per_model: dict[str, pd.DataFrame] = {}
        for label, outputs in models.items():
            if outputs.recommendations is None:
                continue
            per_model[label] = user_popularity_metrics(
                outputs.recommendations,
                context,
                head_share=params.head_share,
                alpha=params.calibration_alpha,
                inputs=inputs,
            )
        subject_metrics = per_model[context.subject.name]
        # Calibration needs item genres; without them it is skipped, the rest still runs.
        no_genres = None if _has_genres(context) else "the catalog has no item genres"
        findings = [
            self._skipped(metric, None, no_genres)
            if metric == "calibration_kl" and no_genres
            else self._overall(context, metric, per_model)
            for metric in PER_USER_METRICS
        ]
        findings.append(self._gini(context, models, inputs))
        attributes = params.group_by or context.group_columns
        pairs = [
            (metric, attribute)
            for metric in params.group_metrics
            for attribute in attributes
            if not (metric == "calibration_kl" and no_genres)
        ]
        # Every group comparison from one stream of resampling weights.
        comparisons = dict(
            zip(
                pairs,
                compare_groups_many(
                    [(subject_metrics[m], context.user_table[a]) for m, a in pairs],
                    min_group_size=context.min_group_size,
                    confidence=context.bootstrap.confidence,
                    n_resamples=context.bootstrap.n_resamples,
                    rng=context.rng(f"{self.name}:groups"),
                )
                if pairs
                else [],
                strict=True,
            )
        )
        for metric in params.group_metrics:
            for attribute in attributes:
                if (metric, attribute) not in comparisons:
                    findings.append(
                        self._skipped(f"{metric}:group_gap", attribute, no_genres or "")
                    )
                    continue
                findings.append(
                    group_disparity_finding(
                        context,
                        detector=self.name,
                        metric=metric,
                        values=subject_metrics[metric],
                        attribute=attribute,
                        summary="gap",
                        threshold=self.threshold_for(f"{metric}:group_gap"),
                        reference=REFERENCE_BY_METRIC[metric],
                        comparison=comparisons[metric, attribute],
                    )
                )
        return findings

    def _skipped(self, metric: str, attribute: str | None, reason: str) -> Finding:
        return Finding(
            detector=self.name,
            metric=metric,
            group_by=attribute,
            status="skipped",
            explanation=f"{metric} skipped: {reason} (calibration compares genre distributions; "
            "add a 'genres' column to the catalog to audit it)",
        )

    def _overall(
        self, context: AuditContext, metric: str, per_model: dict[str, pd.DataFrame]
    ) -> Finding:
        rows, intervals = model_rows(
            context,
            {label: frame[metric] for label, frame in per_model.items()},
            salt=f"{self.name}:{metric}",
        )
        own = intervals[context.subject.name]
        threshold = self.threshold_for(metric)
        baselines = ", ".join(
            f"{label} {iv.estimate:.3g}"
            for label, iv in intervals.items()
            if label != context.subject.name
        )
        return interval_finding(
            context,
            own,
            detector=self.name,
            metric=metric,
            rows=rows,
            group_by="model",
            threshold=threshold,
            explanation=(
                f"{context.subject.name}: mean {metric} {own.estimate:.3g} "
                f"[{own.low:.3g}, {own.high:.3g}] over {own.n} users"
                + (f" (baselines: {baselines})" if baselines else "")
            ),
            reference=REFERENCE_BY_METRIC[metric],
        )

    def _gini(
        self, context: AuditContext, models: dict[str, SubjectOutputs], inputs: _Inputs
    ) -> Finding:
        items = context.dataset.catalog.frame.index
        rows: list[GroupEstimate] = []
        details: dict[str, Any] = {}
        for label, outputs in models.items():
            if outputs.recommendations is None:
                continue
            result = self._exposure_gini(
                context, label, inputs.list_codes(outputs.recommendations, context.k)
            )
            interval, plug_in, bias, exposed = result
            rows.append(
                GroupEstimate(
                    group=label,
                    n=interval.n,
                    estimate=interval.estimate,
                    ci_low=interval.low,
                    ci_high=interval.high,
                    extra={
                        "items_recommended": len(exposed),
                        "plug_in": round(plug_in, 6),
                        "bootstrap_bias": round(bias, 6),
                    },
                )
            )
            if label == context.subject.name:
                own, own_plug_in = interval, plug_in
                details["most_exposed_items"] = _most_exposed(exposed, context)
        return interval_finding(
            context,
            own,
            detector=self.name,
            metric="gini_exposure",
            rows=rows,
            group_by="model",
            threshold=self.threshold_for("gini_exposure"),
            explanation=(
                f"Gini of item exposure in top-{context.k} lists over {len(items)} catalog items: "
                f"{own.estimate:.3f} [{own.low:.3f}, {own.high:.3f}] (bias-corrected; "
                f"{own_plug_in:.3f} over these {own.n} users; 1 = all exposure on one item)"
            ),
            reference=(
                "Gini coefficient of exposure (Fleder & Hosanagar, Manag. Sci. 2009); bootstrap "
                "bias correction (Efron & Tibshirani 1993, Eq. 10.7)"
            ),
            details=details,
        )

    def _exposure_gini(
        self, context: AuditContext, label: str, codes: tuple[np.ndarray, np.ndarray]
    ) -> tuple[Interval, float, float, pd.Series]:
        users = context.user_table.index
        items = context.dataset.catalog.frame.index
        rows_idx, cols = codes
        ok = cols >= 0
        # Users x exposed items; items never recommended enter the Gini as zeros.
        per_item = np.bincount(cols[ok], minlength=len(items))
        exposed_cols = np.flatnonzero(per_item)
        position = np.cumsum(per_item > 0) - 1
        exposure = sparse.csr_matrix(
            (np.ones(int(ok.sum()), dtype=np.float32), (rows_idx[ok], position[cols[ok]])),
            shape=(len(users), len(exposed_cols)),
        )
        n_zeros = len(items) - len(exposed_cols)
        counts = per_item[exposed_cols].astype(float)
        plug_in = float(gini(counts, n_zeros=n_zeros))
        # Resampling users can only hide items, so resampled Ginis run high: a bias the
        # bootstrap measures and removes (Efron & Tibshirani 1993, Eq. 10.7), with the basic
        # interval around the corrected value. Users get Poisson(1) weights, drawn in blocks.
        rng = context.rng(f"{self.name}:gini:{label}")
        n_boot = min(context.bootstrap.n_resamples, 400)
        by_item = exposure.T.tocsr()
        boot = np.concatenate(
            [
                gini((by_item @ np.ascontiguousarray(weights.T)).T, n_zeros=n_zeros)
                for weights in poisson_weight_blocks(len(users), n_boot, rng)
            ]
        )
        bias = float(boot.mean() - plug_in)
        interval = statistic_ci(
            boot,
            plug_in,
            confidence=context.bootstrap.confidence,
            n=len(users),
            method="bias-corrected basic bootstrap over users",
            kind="basic",
            bounds=(0.0, 1.0),
        )
        estimate = float(np.clip(plug_in - bias, interval.low, interval.high))
        exposed = pd.Series(counts, index=items[exposed_cols]).sort_values(ascending=False)
        return replace(interval, estimate=estimate), plug_in, bias, exposed


@hookimpl
def audit_sdk_register_detectors(register: Any) -> None:
    register(PopularityBiasDetector)
