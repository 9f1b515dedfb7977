"""Findings of the scale audit at 5K users, dumped for a before/after comparison of a rewrite.

    python -m benchmarks.bench_scale_findings dump before.json   # on the old code
    python -m benchmarks.bench_scale_findings dump after.json    # on the new code
    python -m benchmarks.bench_scale_findings compare before.json after.json

``compare`` prints, per finding, the largest absolute change of its point estimates (the
finding's own and every group row's) and of its interval ends, and the status if it changed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from benchmarks.bench_scale import audit_config, planned_detectors


def dump(path: str, n_users: int = 5000) -> None:
    from audit_sdk.config import parse_config
    from audit_sdk.runner import AuditRunner

    cfg = parse_config(audit_config(n_users, 50.0, 0))
    runner = AuditRunner(cfg, quiet=True)
    plan = runner.plan()
    context = runner.build_context(plan)
    out: dict[str, Any] = {}
    for detector in planned_detectors(plan):
        for f in detector.detect(context):
            key = f"{f.detector}|{f.metric}|{f.group_by}"
            out[key] = {
                "status": f.status,
                "estimate": f.estimate,
                "ci": [f.ci_low, f.ci_high],
                "groups": {
                    g.group: {"n": g.n, "estimate": g.estimate, "ci": [g.ci_low, g.ci_high]}
                    for g in f.groups
                },
            }
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)


def _diff(a: float | None, b: float | None) -> float:
    if a is None or b is None:
        return 0.0 if a is b else float("inf")
    if a != a and b != b:  # both NaN
        return 0.0
    return abs(a - b)


def compare(before_path: str, after_path: str) -> None:
    with open(before_path) as fh:
        before = json.load(fh)
    with open(after_path) as fh:
        after = json.load(fh)
    print(f"{'finding':<66} {'max |d est|':>11} {'max |d ci|':>10}  status")
    worst_est = 0.0
    for key in sorted(set(before) | set(after)):
        if key not in before or key not in after:
            print(f"{key:<66} only {'before' if key in before else 'after'}")
            continue
        b, a = before[key], after[key]
        d_est = _diff(b["estimate"], a["estimate"])
        d_ci = max(_diff(x, y) for x, y in zip(b["ci"], a["ci"], strict=True))
        for group in set(b["groups"]) | set(a["groups"]):
            bg, ag = b["groups"].get(group), a["groups"].get(group)
            if bg is None or ag is None or bg["n"] != ag["n"]:
                d_est = float("inf")
                continue
            d_est = max(d_est, _diff(bg["estimate"], ag["estimate"]))
            d_ci = max(d_ci, *(_diff(x, y) for x, y in zip(bg["ci"], ag["ci"], strict=True)))
        status = b["status"] if b["status"] == a["status"] else f"{b['status']} -> {a['status']}"
        worst_est = max(worst_est, d_est)
        print(f"{key:<66} {d_est:11.2e} {d_ci:10.2e}  {status}")
    print(f"largest change of any point estimate: {worst_est:.2e}")


if __name__ == "__main__":
    if sys.argv[1] == "dump":
        dump(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 5000)
    else:
        compare(sys.argv[2], sys.argv[3])
