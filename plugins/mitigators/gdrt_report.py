"""What the report shows of a GDRT run: typed tables and curves for the mitigation section.

* **Arms**: every model measured on the same held-out items (before tuning, GDRT, plain SFT,
  IFairLRS): NDCG@K and recall@K, the FAA auxiliary share and ratio (arXiv 2510.10978), MGU@K
  and DGU@K over item-popularity groups, each as ``estimate [low, high]`` over users.
* **Paired**: GDRT minus each other arm, per user (the paired bootstrap of
  :func:`.gdrt_evaluation.compare_arms`): a change is significant when its interval excludes 0.
* **Relevance groups**: the K groups of r = log P(y | x_aux, y_<t) (size and mean r).
* **Curves**: each Group-DRO arm's group weights q_g and group losses L_g per training step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from audit_sdk.report_model import ResultCurves, ResultTable

__all__ = ["gdrt_curves", "gdrt_tables"]

_LABELS = {
    "ndcg": "NDCG@{k}",
    "recall": "recall@{k}",
    "aux_share": "FAA aux share",
    "aux_ratio": "FAA aux:int ratio",
    "mgu": "MGU@{k}",
    "dgu": "DGU@{k}",
}


def _metric_keys(k: int) -> list[tuple[str, str]]:
    keys = [f"ndcg@{k}", f"recall@{k}", "aux_share", "aux_ratio", f"mgu@{k}", f"dgu@{k}"]
    return [(key, _LABELS[key.split("@")[0]].format(k=k)) for key in keys]


def _cell(value: Any) -> str | None:
    if not isinstance(value, Mapping) or value.get("mean") is None:
        return None
    mean, low, high = value.get("mean"), value.get("low"), value.get("high")
    if low is None or high is None:
        return f"{mean:.4g}"
    return f"{mean:.4g} [{low:.4g}, {high:.4g}]"


def gdrt_tables(
    comparison: Mapping[str, Any], groups: list[dict[str, Any]], k: int
) -> list[ResultTable]:
    """The arms table, the paired table and the relevance groups (see the module docstring)."""
    keys = _metric_keys(k)
    arms = comparison.get("arms", {})
    paired = comparison.get("paired", {})
    tables = [
        ResultTable(
            title="GDRT: every arm on the same held-out items",
            columns=["arm", *(label for _, label in keys)],
            rows=[[name, *(_cell(row.get(key)) for key, _ in keys)] for name, row in arms.items()],
            note="estimate [95% bootstrap CI over users]; FAA shares from the history-removed "
            "and task-removed prompts of each user's held-out item",
        ),
        ResultTable(
            title="GDRT: paired differences (per user, same items)",
            columns=["difference", *(label for _, label in keys), "NDCG CI excludes 0"],
            rows=[
                [
                    name,
                    *(_cell(diff.get(key)) for key, _ in keys),
                    _excludes_zero(diff.get(f"ndcg@{k}")),
                ]
                for name, diff in paired.items()
            ],
        ),
    ]
    if groups:
        tables.append(
            ResultTable(
                title="GDRT: relevance groups (r = log P(target | task text, answer prefix))",
                columns=["group", "targets", "mean r"],
                rows=[[int(g["group"]), int(g["size"]), float(g["mean_r"])] for g in groups],
            )
        )
    return tables


def _excludes_zero(value: Any) -> bool | None:
    if not isinstance(value, Mapping) or value.get("low") is None or value.get("high") is None:
        return None
    return bool(value["low"] > 0 or value["high"] < 0)


def gdrt_curves(curves: Mapping[str, Mapping[str, Any]]) -> list[ResultCurves]:
    """Each Group-DRO arm's weights and losses per step (one series per group)."""
    out = []
    for arm, curve in curves.items():
        steps = [float(s) for s in curve.get("step", [])]
        for key, label in (("weights", "group weight q_g"), ("losses", "group loss L_g")):
            rows = curve.get(key) or []
            if not rows or not steps:
                continue
            n_groups = len(rows[0])
            out.append(
                ResultCurves(
                    title=f"{arm}: {label} per training step",
                    x_label="training step",
                    y_label=label,
                    x=steps,
                    series={
                        f"group {g}": [r[g] if g < len(r) else None for r in rows]
                        for g in range(n_groups)
                    },
                )
            )
    return out
