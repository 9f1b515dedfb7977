"""Summaries of the personalization detector's findings, kept in its ``groups`` finding:

* :func:`tau_table`: one row per method (reference scorers, LLM methods, directly ranked
  recommenders, logged predictions) with mean tau and its CI overall and per difficulty,
  the groups scored out of all groups, and the prompts and malformed answers, so that a
  method whose answers never parsed is a row saying so, not a missing row. The HTML report
  shows it as the personalization tau table.
* :func:`tau_vs_mae`: each method's tau beside its MAE and their correlation across methods.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audit_sdk.report_model import Finding

__all__ = ["DIFFICULTIES", "tau_table", "tau_vs_mae"]

DIFFICULTIES = ("easy", "medium", "hard")


def _cell(estimate: float | None, low: float | None, high: float | None, n: int | None) -> Any:
    if estimate is None:
        return None
    return {"estimate": estimate, "low": low, "high": high, "n": n}


def tau_table(findings: list[Finding]) -> dict[str, Any]:
    """The tau table: ``difficulties`` (column order) and ``rows``, one per ``kendall_tau:*``
    finding: ``method``, ``kind`` (reference, audited, recommender, logged), ``status``,
    ``overall`` and each difficulty as ``{estimate, low, high, n}`` or None, ``groups_scored``,
    ``groups_total``, ``prompts``, ``malformed``, ``errors``, ``mae`` and ``note`` (why a
    method has no tau, or how many groups it could not use)."""
    maes = {f.metric.removeprefix("mae:"): f.estimate for f in findings if f.metric[:4] == "mae:"}
    seen: list[str] = []
    rows = []
    for f in findings:
        if not f.metric.startswith("kendall_tau:"):
            continue
        if f.status == "skipped" and "unrankable" not in f.details:
            continue
        method = f.metric.removeprefix("kendall_tau:")
        details = f.details
        counts = details.get("counts", {})
        by_group = {g.group: g for g in f.groups}
        for g in by_group:
            if g not in DIFFICULTIES and g not in seen:
                seen.append(g)
        total = int(details.get("groups_total", 0))
        scored = int(details.get("groups_scored", f.n or 0))
        note = details.get("unrankable")
        if note is None and f.estimate is None:
            note = f.explanation
        elif note is None and scored < total:
            note = f"{total - scored} of {total} groups unusable"
        rows.append(
            {
                "method": method,
                "kind": details.get("kind", "reference"),
                "status": f.status,
                "overall": _cell(f.estimate, f.ci_low, f.ci_high, f.n),
                "by_difficulty": {
                    d: _cell(g.estimate, g.ci_low, g.ci_high, g.n) for d, g in by_group.items()
                },
                "groups_scored": scored,
                "groups_total": total,
                "prompts": counts.get("prompts"),
                "malformed": counts.get("malformed"),
                "errors": counts.get("errors"),
                "mae": maes.get(method),
                "note": note,
            }
        )
    return {"difficulties": [*DIFFICULTIES, *seen], "rows": rows}


def tau_vs_mae(findings: list[Finding]) -> dict[str, Any]:
    """Each method's tau beside its MAE, and their Pearson correlation across the methods
    that have both (PerRecBench, Sec. 4.2, reports about -0.26 over 19 LLMs: rating error
    says little about ranking users); the correlation needs three methods."""
    by_metric = {f.metric: f.estimate for f in findings}
    pairs = {
        metric.removeprefix("kendall_tau:"): (tau, by_metric[f"mae:{metric[12:]}"])
        for metric, tau in by_metric.items()
        if metric.startswith("kendall_tau:")
        and tau is not None
        and by_metric.get(f"mae:{metric[12:]}") is not None
    }
    out: dict[str, Any] = {
        "methods": {m: {"tau": t, "mae": e} for m, (t, e) in pairs.items()},
        "pearson": None,
    }
    if len(pairs) >= 3:
        taus, maes = (np.array(v, dtype=float) for v in zip(*pairs.values(), strict=True))
        if np.ptp(taus) > 0 and np.ptp(maes) > 0:
            out["pearson"] = float(np.corrcoef(taus, maes)[0, 1])
    return out
