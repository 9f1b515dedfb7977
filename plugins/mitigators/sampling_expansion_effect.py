"""What sampling expansion changed: each user's profiles before and after, paired.

Runs on the subject a ``sampling_expansion`` mitigation produced (elsewhere it says there is
nothing to compare). Rows are profiles (user x window x generator) present before and after;
the unit resampled is the user (Poisson-weight cluster bootstrap over users, percentile CIs:
Cameron, Gelbach & Miller, REStat 2008), through the generalist-gap estimator
(:func:`audit_sdk.plugins.detectors._generalist_gap_stats.estimate_gap`) applied to the paired
differences: bin means and OLS slopes are linear in the quality, so the estimator on
``after - before`` gives the paired change per GS quintile, of the top-minus-bottom gap and of
the slope, with CIs that keep each user's before and after together.

Per generator:

* ``expansion:<metric>:change`` for the fidelity metrics of
  :mod:`audit_sdk.metrics.profile_fidelity` (artist and genre recall, hallucination rate), the
  genre divergence (below) and the ``downstream_utility`` bi-encoder's NDCG@10
  (:func:`~audit_sdk.plugins.detectors.downstream_utility.downstream_utility_table`, the
  same negatives before and after): mean change over users with a BCa CI, one row per GS
  quintile with its paired change and the before and after levels;
* ``expansion:gs_gap:<quality>:quintile_gap_change`` and ``...:slope_change``: the change of
  the generalist gap (Sguerra et al., RecSys 2025, Sec. 5.2), negative = narrower;
* ``expansion:prompt_chars:added`` and the generation cost (prompts re-generated, reused);
* with the mitigator's ``diagnosis_n``, ``expansion:diagnosis:<quality>``: the study's test
  (arXiv 2507.16708, Sec. 6), the generalists' paired change at n = 30 against n = 15 with the
  same generator: a CI above zero is a **sampling limit** (more items help), otherwise a
  **summarising limit** (the generator does not use them).

**Genre divergence.** The Jensen-Shannon divergence (base 2, in [0, 1]; Lin, IEEE Trans. Inf.
Theory 1991, Eq. 4.1, via :func:`scipy.spatial.distance.jensenshannon`) between the genres a
profile names (uniform over them, found as ``genre_recall`` finds them) and the user's
long-term genre mix (the ``genre_shares`` feature of the training history); NaN for a profile
that names no genre. Lower is better.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from audit_sdk.plugins.detectors._generalist_gap_stats import METHOD, GapEstimates, estimate_gap
from audit_sdk.plugins.detectors.downstream_utility import (
    DownstreamUtilityParams,
    downstream_utility_table,
)
from pydantic import Field
from scipy.spatial.distance import jensenshannon

from audit_sdk import Detector, Finding, GroupEstimate, MetricSpec, PluginParams, hookimpl
from audit_sdk.interfaces import AuditContext
from audit_sdk.metrics.profile_fidelity import _genre_mentioned, _normalize
from audit_sdk.stats.bootstrap import mean_ci
from audit_sdk.thresholds import evaluate_threshold

__all__ = ["SamplingExpansionEffect", "genre_divergence"]

REFERENCE = (
    "Sampling expansion (Sguerra et al., RecSys 2025, arXiv 2507.16708, Sec. 6); paired change "
    "with a cluster bootstrap over users (Cameron, Gelbach & Miller 2008); Jensen-Shannon "
    "divergence (Lin 1991, Eq. 4.1)"
)
FIDELITY = ("artist_recall", "genre_recall", "hallucination_rate")
LOWER_IS_BETTER = ("hallucination_rate", "genre_divergence")
KEYS = ["user_id", "window", "model"]


class SamplingExpansionEffectParams(PluginParams):
    downstream: bool = Field(
        True, description="measure the bi-encoder downstream NDCG (needs its encoder)"
    )
    utility: DownstreamUtilityParams = Field(default_factory=DownstreamUtilityParams)
    quality: str | None = Field(
        None,
        description="the quality of the generalist gap and the diagnosis (default: "
        "downstream_ndcg@10, or genre_divergence without the downstream measure)",
    )
    bins: int = Field(5, ge=2, le=20, description="GS quantile bins (5: quintiles)")
    n_resamples: int | None = Field(None, ge=100)


def genre_divergence(profiles: pd.DataFrame, genre_shares: pd.DataFrame) -> pd.Series:
    """Per profile, JS divergence between the genres it names and its user's genre mix."""
    genres = [str(g) for g in genre_shares.columns]
    shares = genre_shares.set_axis(genre_shares.index.astype(str))
    out = np.full(len(profiles), np.nan)
    for row, (user, text) in enumerate(
        zip(profiles["user_id"].astype(str), profiles["text"], strict=True)
    ):
        if not isinstance(text, str) or user not in shares.index:
            continue
        normalized = _normalize(text)
        named = np.array([_genre_mentioned(g, normalized) for g in genres], dtype=float)
        mix = shares.loc[user].to_numpy(dtype=float)
        if named.sum() == 0 or mix.sum() == 0:
            continue
        out[row] = float(jensenshannon(named / named.sum(), mix / mix.sum(), base=2) ** 2)
    return pd.Series(out, index=profiles.index, name="genre_divergence")


class SamplingExpansionEffect(Detector):
    name = "sampling_expansion_effect"
    description = "Profiles before and after sampling expansion, per GS quintile, paired."
    Params = SamplingExpansionEffectParams
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("expansion:gs_gap:*", "lower_is_better", description="change of the gap"),
        MetricSpec("expansion:hallucination_rate:change", "lower_is_better"),
        MetricSpec("expansion:genre_divergence:change", "lower_is_better"),
        MetricSpec("expansion:prompt_chars:added", "none", 0.0, None, "per changed profile"),
        MetricSpec("expansion:diagnosis:*", "none", description="generalists: after - before"),
        MetricSpec("expansion:*:change", "higher_is_better", description="after - before"),
    )

    def detect(self, context: AuditContext) -> list[Finding]:
        params: SamplingExpansionEffectParams = self.params  # type: ignore[assignment]
        info = context.mitigation
        before = info.before_context if info is not None else None
        if info is None or info.mitigator != "sampling_expansion" or before is None:
            return [self._skipped("expansion:(all)", "not a sampling_expansion mitigation")]
        findings: list[Finding] = []
        if params.downstream:
            try:
                for ctx in (before, context):
                    downstream_utility_table(ctx, params.utility)
            except Exception as exc:  # the other measures do not depend on it
                findings.append(
                    self._skipped(
                        "expansion:downstream_ndcg@10:change",
                        f"the downstream_utility bi-encoder failed ({type(exc).__name__}: "
                        f"{exc}); fidelity and genre divergence are measured without it",
                    )
                )
                params = params.model_copy(update={"downstream": False})
        paired = self._paired(before, context, params)
        if paired.empty:
            return [self._skipped("expansion:(all)", "no profile was written before and after")]
        gs = context.features.get("gs_score")
        assert isinstance(gs, pd.Series)
        paired["gs"] = gs.set_axis(gs.index.astype(str)).reindex(paired["user_id"]).to_numpy()
        activity = context.features.activity_events
        paired["log_activity"] = np.log1p(
            activity.set_axis(activity.index.astype(str)).reindex(paired["user_id"]).to_numpy()
        )
        paired = paired[np.isfinite(paired["gs"].to_numpy(dtype=float))]
        quality = params.quality or (
            "downstream_ndcg@10" if params.downstream else "genre_divergence"
        )
        allowed = [*FIDELITY, "genre_divergence"] + ["downstream_ndcg@10"] * params.downstream
        if quality not in allowed:
            return [
                self._skipped(
                    f"expansion:gs_gap:{quality}:quintile_gap_change",
                    f"params.quality {quality!r} is not measured here; choose one of "
                    f"{', '.join(allowed)}",
                )
            ]
        models = sorted(paired["model"].astype(str).unique())
        for model in models:
            own = paired[paired["model"] == model].reset_index(drop=True)
            tag = model if len(models) > 1 else None
            for metric in allowed:
                findings += self._change(context, params, own, metric, tag, quality)
            findings.append(self._cost(context, own, tag))
            if info.details.get("mode") == "diagnosis":
                findings.append(self._diagnosis(context, own, quality, tag, info.details))
        return findings

    # -- the paired table --------------------------------------------------------------------
    def _paired(
        self, before: AuditContext, after: AuditContext, params: SamplingExpansionEffectParams
    ) -> pd.DataFrame:
        sides = []
        for label, ctx in (("before", before), ("after", after)):
            profiles = ctx.subject.profiles
            if profiles is None:
                return pd.DataFrame()
            frame = profiles[[*KEYS, "prompt", "prompt_sha256", "text", "cached", *FIDELITY]]
            frame = frame.assign(
                genre_divergence=genre_divergence(profiles, ctx.features.genre_shares),
                prompt_chars=profiles["prompt"].astype(str).str.len(),
                text_chars=profiles["text"].fillna("").astype(str).str.len(),
            )
            if params.downstream:
                table = downstream_utility_table(ctx, params.utility)
                frame = frame.assign(
                    **{"downstream_ndcg@10": table[f"ndcg@{params.utility.k}"].to_numpy()}
                )
            ok = profiles["error"].isna() if "error" in profiles else True
            sides.append(frame[ok].astype(dict.fromkeys(KEYS, str)).add_suffix(f":{label}"))
        b, a = sides
        merged = b.merge(
            a,
            left_on=[f"{k}:before" for k in KEYS],
            right_on=[f"{k}:after" for k in KEYS],
            how="inner",
        )
        for k in KEYS:
            merged[k] = merged.pop(f"{k}:before")
            merged.pop(f"{k}:after")
        merged["changed"] = merged["prompt_sha256:before"] != merged["prompt_sha256:after"]
        return merged

    def _bins(self, frame: pd.DataFrame, bins: int) -> tuple[np.ndarray, np.ndarray, int]:
        user_gs = frame.groupby("user_id", sort=False)["gs"].mean()
        edges = np.unique(np.quantile(user_gs.to_numpy(), np.linspace(0, 1, bins + 1)))
        n_bins = max(len(edges) - 1, 1)
        codes = np.clip(
            np.searchsorted(edges, frame["gs"].to_numpy(), side="right") - 1, 0, n_bins - 1
        )
        return codes, edges, n_bins

    def _estimate(
        self,
        context: AuditContext,
        params: SamplingExpansionEffectParams,
        frame: pd.DataFrame,
        values: np.ndarray,
        salt: str,
        covariates: bool,
    ) -> GapEstimates:
        users = pd.Index(pd.unique(frame["user_id"]))
        codes, _, n_bins = self._bins(frame, params.bins)
        design = (
            frame[["log_activity"]].to_numpy(dtype=float)
            if covariates and frame["log_activity"].std() > 0
            else np.empty((len(frame), 0))
        )
        if design.shape[1]:
            design = (design - design.mean(axis=0)) / design.std(axis=0)
        return estimate_gap(
            values,
            frame["gs"].to_numpy(dtype=float),
            design,
            users.get_indexer(frame["user_id"]),
            codes,
            n_bins,
            n_resamples=params.n_resamples or context.bootstrap.n_resamples,
            confidence=context.bootstrap.confidence,
            rng=context.rng(f"{self.name}:{salt}"),
        )

    # -- findings ----------------------------------------------------------------------------
    def _change(
        self,
        context: AuditContext,
        params: SamplingExpansionEffectParams,
        own: pd.DataFrame,
        metric: str,
        tag: str | None,
        quality: str,
    ) -> list[Finding]:
        name = f"expansion:{metric}:change"
        b = own[f"{metric}:before"].to_numpy(dtype=float)
        a = own[f"{metric}:after"].to_numpy(dtype=float)
        keep = np.isfinite(a) & np.isfinite(b)
        frame = own[keep].reset_index(drop=True)
        if frame["user_id"].nunique() < 2 * params.bins:
            return [self._skipped(name, f"only {frame['user_id'].nunique()} users with {metric}")]
        a, b = a[keep], b[keep]
        salt = f"{metric}:{tag}"
        level_b = self._estimate(context, params, frame, b, salt, metric == quality)
        level_a = self._estimate(context, params, frame, a, salt, metric == quality)
        change = self._estimate(context, params, frame, a - b, salt, metric == quality)
        per_user = pd.Series(a - b).groupby(frame["user_id"].to_numpy()).mean()
        overall = mean_ci(
            per_user.to_numpy(),
            confidence=context.bootstrap.confidence,
            n_resamples=context.bootstrap.n_resamples,
            rng=context.rng(f"{self.name}:{salt}:mean"),
        )
        _, edges, _ = self._bins(frame, params.bins)
        rows = []
        for q, interval in enumerate(change.bins):
            n = change.bin_users[q]
            role = (
                " (generalists)"
                if q == 0
                else " (specialists)"
                if q == len(change.bins) - 1
                else ""
            )
            rows.append(
                GroupEstimate(
                    group=f"Q{q + 1}{role} GS {edges[q]:.2f}-{edges[q + 1]:.2f}",
                    n=n,
                    estimate=interval.estimate,
                    ci_low=interval.low,
                    ci_high=interval.high,
                    warning=f"only {n} users" if n < context.min_group_size else None,
                    extra={
                        "before": level_b.bins[q].estimate,
                        "before_ci_low": level_b.bins[q].low,
                        "before_ci_high": level_b.bins[q].high,
                        "after": level_a.bins[q].estimate,
                        "after_ci_low": level_a.bins[q].low,
                        "after_ci_high": level_a.bins[q].high,
                    },
                )
            )
        common = {"generator": tag, "resampled_unit": "users", "n_rows": len(frame)}
        findings = [
            self._finding(
                context,
                name,
                overall.estimate,
                overall.low,
                overall.high,
                overall.n,
                overall.method,
                tag,
                f"{metric}: {np.mean(b):.3g} before, {np.mean(a):.3g} after; mean change per "
                f"user {overall.estimate:.3g} [{overall.low:.3g}, {overall.high:.3g}] over "
                f"{overall.n} users (paired; resampled unit: users)",
                groups=rows,
                details={**common, "before": float(np.mean(b)), "after": float(np.mean(a))},
            )
        ]
        if metric == quality:
            for kind, b_i, a_i, c_i in (
                ("quintile_gap", level_b.gap, level_a.gap, change.gap),
                ("slope", level_b.slope, level_a.slope, change.slope),
            ):
                findings.append(
                    self._finding(
                        context,
                        f"expansion:gs_gap:{metric}:{kind}_change",
                        c_i.estimate,
                        c_i.low,
                        c_i.high,
                        change.n_users,
                        METHOD,
                        tag,
                        f"generalist gap in {metric} ({kind.replace('_', ' ')}): "
                        f"{b_i.estimate:.3g} [{b_i.low:.3g}, {b_i.high:.3g}] before, "
                        f"{a_i.estimate:.3g} [{a_i.low:.3g}, {a_i.high:.3g}] after; paired "
                        f"change {c_i.estimate:.3g} [{c_i.low:.3g}, {c_i.high:.3g}] "
                        f"({'narrower' if abs(a_i.estimate) < abs(b_i.estimate) else 'not narrower'})",
                        details={
                            **common,
                            "before": [b_i.estimate, b_i.low, b_i.high],
                            "after": [a_i.estimate, a_i.low, a_i.high],
                            "covariates": ["log_activity"],
                        },
                    )
                )
        return findings

    def _cost(self, context: AuditContext, own: pd.DataFrame, tag: str | None) -> Finding:
        changed = own[own["changed"]]
        added = (changed["prompt_chars:after"] - changed["prompt_chars:before"]).to_numpy(float)
        name = "expansion:prompt_chars:added"
        details = {
            "generator": tag,
            "profiles": len(own),
            "profiles_changed": len(changed),
            "profiles_reused": int(len(own) - len(changed)),
            "generated_uncached": int((~changed["cached:after"].astype(bool)).sum()),
            "prompt_chars_added_total": float(added.sum()),
            "output_chars_before": float(changed["text_chars:before"].sum()),
            "output_chars_after": float(changed["text_chars:after"].sum()),
        }
        if len(changed) == 0:
            return self._finding(
                context,
                name,
                0.0,
                0.0,
                0.0,
                int(own["user_id"].nunique()),
                "none (no prompt changed)",
                tag,
                "no prompt changed: every profile was reused",
                details=details,
            )
        interval = mean_ci(
            added,
            confidence=context.bootstrap.confidence,
            n_resamples=context.bootstrap.n_resamples,
            rng=context.rng(f"{self.name}:cost:{tag}"),
        )
        return self._finding(
            context,
            name,
            interval.estimate,
            interval.low,
            interval.high,
            int(changed["user_id"].nunique()),
            interval.method,
            tag,
            f"{len(changed)} of {len(own)} profiles re-written from longer prompts (+"
            f"{interval.estimate:.0f} characters each [{interval.low:.0f}, {interval.high:.0f}]; "
            f"{details['generated_uncached']} generated, not from the cache); "
            f"{details['profiles_reused']} reused unchanged",
            details=details,
        )

    def _diagnosis(
        self,
        context: AuditContext,
        own: pd.DataFrame,
        quality: str,
        tag: str | None,
        mitigation: Any,
    ) -> Finding:
        tau = float(mitigation.get("threshold_used", np.nan))
        name = f"expansion:diagnosis:{quality}"
        generalists = own[own["gs"] < tau]
        diff = generalists[f"{quality}:after"] - generalists[f"{quality}:before"]
        per_user = diff.groupby(generalists["user_id"].to_numpy()).mean().dropna()
        if len(per_user) < 2:
            return self._skipped(name, f"only {len(per_user)} generalists with {quality}")
        interval = mean_ci(
            per_user.to_numpy(),
            confidence=context.bootstrap.confidence,
            n_resamples=context.bootstrap.n_resamples,
            rng=context.rng(f"{self.name}:diagnosis:{tag}"),
        )
        better_up = quality not in LOWER_IS_BETTER
        improved = interval.low > 0 if better_up else interval.high < 0
        verdict = "sampling limit" if improved else "summarising limit"
        why = (
            "their profiles improved with more items: the fixed sample held them back"
            if verdict == "sampling limit"
            else "their profiles did not improve significantly with more items: the "
            "generator's summarising, not the sample, holds them back"
        )
        n = mitigation.get("diagnosis_n")
        return self._finding(
            context,
            name,
            interval.estimate,
            interval.low,
            interval.high,
            interval.n,
            interval.method,
            tag,
            f"{verdict}: generalists' (GS < {tau:.3g}) {quality} changed by "
            f"{interval.estimate:.3g} [{interval.low:.3g}, {interval.high:.3g}] from n = "
            f"{mitigation.get('n0')} to n = {n} with the same generator (paired, {interval.n} "
            f"users); {why}",
            details={
                "verdict": verdict,
                "threshold": tau,
                "n_before": mitigation.get("n0"),
                "n_after": n,
                "generator": tag,
            },
        )

    def _finding(
        self,
        context: AuditContext,
        metric: str,
        estimate: float,
        low: float,
        high: float,
        n: int,
        method: str,
        generator: str | None,
        explanation: str,
        *,
        groups: list[GroupEstimate] | None = None,
        details: dict[str, Any] | None = None,
    ) -> Finding:
        threshold = self.threshold_for(metric)
        return Finding(
            detector=self.name,
            metric=metric,
            estimate=estimate,
            ci_low=low,
            ci_high=high,
            confidence=context.bootstrap.confidence,
            ci_method=method,
            n=n,
            groups=groups or [],
            group_by="gs_quintile" if groups else None,
            subject=context.subject.name,
            generator=generator,
            threshold=threshold,
            status=evaluate_threshold(threshold, estimate, low, high),
            explanation=explanation,
            warnings=[f"{g.group}: {g.warning}" for g in groups or [] if g.warning],
            chart="bars" if groups else None,
            reference=REFERENCE,
            details=details or {},
        )

    def _skipped(self, metric: str, reason: str) -> Finding:
        return Finding(detector=self.name, metric=metric, status="skipped", explanation=reason)


@hookimpl
def audit_sdk_register_detectors(register: Any) -> None:
    register(SamplingExpansionEffect)
