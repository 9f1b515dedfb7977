"""Attributions aggregated over prompts, with bootstrap CIs that resample prompts.

Following arXiv 2510.10978 (the auxiliary:interaction attribution ratio), each prompt ``p``
gets an attribution magnitude per group of spans, summed over its target's tokens::

    a_aux(p) = sum_t ( sum_{s auxiliary} |A_s(t)|  +  |A_prefix(t)| )
    a_int(p) = sum_t   sum_{s interaction} |A_s(t)|

(``A_s(t)``, ``A_prefix(t)``: :mod:`audit_sdk.attribution.results`), and over prompts

    share = sum_p a_aux(p) / sum_p (a_aux(p) + a_int(p))        (the auxiliary share)
    ratio = sum_p a_aux(p) / sum_p a_int(p)                     (auxiliary : interaction)

ratios of means, so that a prompt the model barely reads does not dominate. CIs are
percentile intervals from a Poisson(1) bootstrap over prompts (one prompt per user, so this
resamples users; :mod:`audit_sdk.stats.resampling_weights`), the same weights for every
statistic. By history position: the mean ``sum_t |A_s(t)|`` of the history item ``r``
places from the end (``r = 0`` the most recent), over the prompts that have one, with a
BCa CI (:func:`audit_sdk.stats.bootstrap.mean_ci`). Per user group: the share within each
group's prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from audit_sdk.stats.bootstrap import Interval, mean_ci, statistic_ci
from audit_sdk.stats.resampling_weights import poisson_weight_blocks

from .results import PREFIX_SPAN, AttributionResult, PromptAttribution

__all__ = ["AttributionSummary", "PromptMagnitudes", "prompt_magnitudes", "summarize_attribution"]


@dataclass(frozen=True)
class PromptMagnitudes:
    """Per prompt: ``auxiliary``, ``interaction`` magnitudes and each field's."""

    prompt_ids: tuple[str, ...]
    groups: tuple[str | None, ...]
    auxiliary: np.ndarray
    interaction: np.ndarray
    fields: dict[str, np.ndarray]

    @property
    def ratio(self) -> np.ndarray:
        """Each prompt's own auxiliary:interaction ratio (inf where a_int = 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.auxiliary / self.interaction


def prompt_magnitudes(prompts: Sequence[PromptAttribution]) -> PromptMagnitudes:
    aux = np.zeros(len(prompts))
    inter = np.zeros(len(prompts))
    fields: dict[str, np.ndarray] = {}
    for i, p in enumerate(prompts):
        magnitude = np.abs(p.token_attributions).sum(axis=0)
        for name, value, role in zip(p.span_names, magnitude, p.span_roles, strict=True):
            key = p.prompt.span(name).field
            fields.setdefault(key, np.full(len(prompts), np.nan))
            fields[key][i] = np.nan_to_num(fields[key][i]) + value
            if role == "auxiliary":
                aux[i] += value
            elif role == "interaction":
                inter[i] += value
        prefix = p.prefix_attributions
        if prefix is not None:
            value = float(np.abs(prefix).sum())
            fields.setdefault(PREFIX_SPAN, np.full(len(prompts), np.nan))
            fields[PREFIX_SPAN][i] = value
            aux[i] += value
    return PromptMagnitudes(
        tuple(p.prompt_id for p in prompts), tuple(p.group for p in prompts), aux, inter, fields
    )


@dataclass(frozen=True)
class AttributionSummary:
    """The auxiliary share and ratio with CIs; per field, per history position, per group."""

    share: Interval
    ratio: Interval
    fields: dict[str, Interval]
    recency: dict[int, Interval]
    groups: dict[str, tuple[Interval, Interval]]
    magnitudes: PromptMagnitudes
    confidence: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    def extreme_prompts(self, k: int = 5) -> list[int]:
        """Indices of the ``k`` prompts with the highest auxiliary:interaction ratio."""
        ratio = np.nan_to_num(self.magnitudes.ratio, nan=-np.inf, posinf=np.finfo(float).max)
        return [int(i) for i in np.argsort(-ratio, kind="stable")[:k]]


def _ratio_intervals(
    aux: np.ndarray, inter: np.ndarray, *, confidence: float, n_resamples: int, seed: int
) -> tuple[Interval, Interval]:
    n = len(aux)
    total_aux, total_int = float(aux.sum()), float(inter.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        share = total_aux / (total_aux + total_int) if total_aux + total_int > 0 else np.nan
        ratio = total_aux / total_int if total_int > 0 else np.nan
    if n < 2:
        return (
            Interval(float(share), np.nan, np.nan, n, "none"),
            Interval(float(ratio), np.nan, np.nan, n, "none"),
        )
    design = np.column_stack([aux, inter])
    rng = np.random.default_rng(seed)
    sums = np.vstack(
        [w @ design for w in poisson_weight_blocks(n, n_resamples, rng, dtype=np.float64)]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        share_b = sums[:, 0] / (sums[:, 0] + sums[:, 1])
        ratio_b = sums[:, 0] / sums[:, 1]
    method = "bootstrap-percentile (Poisson weights over prompts)"
    return (
        statistic_ci(share_b, float(share), confidence=confidence, n=n, method=method),
        statistic_ci(ratio_b, float(ratio), confidence=confidence, n=n, method=method),
    )


def summarize_attribution(
    result: AttributionResult,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    max_recency: int = 20,
) -> AttributionSummary:
    """Aggregate ``result`` (see the module doc for the estimators)."""
    mags = prompt_magnitudes(result.prompts)
    share, ratio = _ratio_intervals(
        mags.auxiliary, mags.interaction, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    rng = np.random.default_rng(seed + 1)
    fields = {
        name: mean_ci(values, confidence=confidence, n_resamples=n_resamples, rng=rng)
        for name, values in mags.fields.items()
    }
    by_recency: dict[int, list[float]] = {}
    for p in result.prompts:
        magnitude = np.abs(p.token_attributions).sum(axis=0)
        positions = [p.prompt.span(name).position for name in p.span_names]
        history = [
            (pos, value, p.prompt.span(name).field)
            for name, pos, value in zip(p.span_names, positions, magnitude, strict=True)
            if pos is not None and p.prompt.span(name).role == "interaction"
        ]
        if not history:
            continue
        last = max(pos for pos, _, _ in history)
        for pos, value, _ in history:
            if last - pos <= max_recency:
                by_recency.setdefault(last - pos, []).append(float(value))
    recency = {
        r: mean_ci(np.asarray(v), confidence=confidence, n_resamples=n_resamples, rng=rng)
        for r, v in sorted(by_recency.items())
    }
    groups: dict[str, tuple[Interval, Interval]] = {}
    labels = np.array(["" if g is None else g for g in mags.groups])
    for group in sorted(set(labels) - {""}):
        keep = labels == group
        groups[group] = _ratio_intervals(
            mags.auxiliary[keep],
            mags.interaction[keep],
            confidence=confidence,
            n_resamples=n_resamples,
            seed=seed,
        )
    return AttributionSummary(
        share=share,
        ratio=ratio,
        fields=fields,
        recency=recency,
        groups=groups,
        magnitudes=mags,
        confidence=confidence,
        notes=result.notes,
    )
