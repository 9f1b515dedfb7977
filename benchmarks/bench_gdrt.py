"""GDRT's tuning cost in the demo-sized case, and what it does on a dataset.

Run from the repository root::

    python -m benchmarks.bench_gdrt                        # demo world, demo TinyRec
    python -m benchmarks.bench_gdrt --dataset context_bias # the context-bias world
    AUDIT_SDK_DATA=/path/to/datasets python -m benchmarks.bench_gdrt --dataset hetrec

The demo-sized case is ``audit-sdk demo``'s data (the synthetic world, 2,000 users) and its
subject (a demo-sized TinyRec, 2 layers x 96, trained on the training split with the demo's
recipe; cached like the demo's, so it is trained only once). Timed: :func:`run_gdrt` end to
end with the default parameters (relevance scores, the GDRT arm and the SFT and IFairLRS
baselines on the same budget, and the before/after evaluation of all four models), one torch
thread per training as TinyRec always trains. Target: under 5 minutes on 2 cores.

Printed: the groups (size, mean r), every arm's held-out NDCG@10, recall@10, FAA aux share,
MGU@10, DGU@10 with 95% CIs, the paired differences, and the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def _dataset(name: str, users: int) -> tuple[Any, str]:
    if name == "demo":
        from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world

        return generate_world(SyntheticWorldParams(seed=0, n_users=users)), "auto"
    if name == "context_bias":
        from audit_sdk.data.context_bias_world import (
            ContextBiasWorldParams,
            generate_context_bias_world,
        )

        return generate_context_bias_world(ContextBiasWorldParams(seed=0)), "auto"
    from audit_sdk.data.hetrec_loader import HetRecLastfmLoader

    root = Path(os.environ.get("AUDIT_SDK_DATA", "")) / "hetrec2011-lastfm-2k"
    from audit_sdk.data.hetrec_loader import HetRecLastfmParams

    loader = HetRecLastfmLoader(HetRecLastfmParams(directory=str(root)))
    return loader.load(), "random"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=["demo", "context_bias", "hetrec"], default="demo")
    parser.add_argument("--users", type=int, default=2000, help="demo world users")
    parser.add_argument("--params", default="{}", help="GDRT params as JSON")
    parser.add_argument("--json", type=Path, help="also write the outcome here")
    args = parser.parse_args()

    from audit_sdk.adapters.tinyrec.model_cache import ensure_tinyrec
    from audit_sdk.plugins.mitigators.gdrt_tuning import GDRTParams, run_gdrt, summary_of

    from audit_sdk.sampling import filter_streams
    from audit_sdk.splitting import holdout_split

    dataset, strategy = _dataset(args.dataset, args.users)
    dataset = filter_streams(dataset)
    split = holdout_split(
        dataset,
        test_items=5,
        strategy=strategy,  # type: ignore[arg-type]
        min_train_items=10 if args.dataset == "hetrec" else 5,
        seed=0,
    )
    started = time.perf_counter()
    model_dir = ensure_tinyrec(split.train, size="demo", seed=0, progress=print)
    print(f"base TinyRec (demo size): {time.perf_counter() - started:.1f} s (cached after once)")
    with tempfile.TemporaryDirectory() as tmp:
        params = GDRTParams(**{"output_dir": tmp, **json.loads(args.params)})
        started = time.perf_counter()
        outcome = run_gdrt(
            model_dir,
            train=split.train,
            test=split.test,
            users=split.users,
            params=params,
            seed=0,
            progress=lambda m: print(f"  [{time.perf_counter() - started:6.1f} s] {m}"),
        )
        elapsed = time.perf_counter() - started
        summary = summary_of(outcome)
    print(f"\n{args.dataset}: {len(split.users)} users, {summary['n_examples']} examples")
    for g in outcome.groups:
        print(f"  group {g['group']}: n={g['size']}, mean r={g['mean_r']:.3f}")
    metrics = ["ndcg@10", "recall@10", "aux_share", "mgu@10", "dgu@10"]
    for name, row in outcome.comparison["arms"].items():
        cells = "  ".join(
            f"{m} {row[m]['mean']:.4f} [{row[m]['low']:.4f}, {row[m]['high']:.4f}]" for m in metrics
        )
        print(f"  {name:9s} {cells}")
    for pair, row in outcome.comparison["paired"].items():
        cells = "  ".join(
            f"{m} {row[m]['mean']:+.4f} [{row[m]['low']:+.4f}, {row[m]['high']:+.4f}]"
            for m in metrics
        )
        print(f"  {pair:18s} {cells}")
    print(f"timings (s): {outcome.timings}")
    print(f"GDRT end to end: {elapsed:.1f} s ({'under' if elapsed < 300 else 'OVER'} 5 minutes)")
    if args.json:
        args.json.write_text(json.dumps({**summary, "elapsed_s": elapsed}, indent=2) + "\n")


if __name__ == "__main__":
    main()
