"""TinyRec's held-out quality and training time, next to the popularity and random baselines.

Trains TinyRec (``train_tinyrec``: held-out split of 5 items per user, seed 0) on the default
synthetic world and, when ``AUDIT_SDK_DATA`` points at the shared datasets, on HetRec Last.fm
2K, and prints NDCG@10 / recall@10 / hit@10 with 95% bootstrap CIs for TinyRec, popularity and
random, TinyRec minus popularity (paired over users), the training time and whether the time
budget set the pace.

    python benchmarks/bench_tinyrec_quality.py [--size full|demo] [--threads 2]
        [--datasets synthetic,hetrec]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _dataset(name: str):
    if name == "synthetic":
        from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world

        return generate_world(SyntheticWorldParams())
    from audit_sdk.data.hetrec_loader import HetRecLastfmLoader

    root = os.environ.get("AUDIT_SDK_DATA")
    if not root:
        return None
    directory = Path(root) / "hetrec2011-lastfm-2k"
    return HetRecLastfmLoader(HetRecLastfmLoader.Params(directory=str(directory))).load()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["demo", "full"], default="full")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--datasets", default="synthetic,hetrec")
    args = parser.parse_args()

    from audit_sdk.adapters.tinyrec import train_tinyrec

    for name in args.datasets.split(","):
        dataset = _dataset(name)
        if dataset is None:
            print(f"\n{name}: skipped (set AUDIT_SDK_DATA to the shared datasets folder)")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            result = train_tinyrec(
                dataset,
                out_dir=Path(tmp) / "tinyrec",
                size=args.size,
                seed=0,
                threads=args.threads,
            )
            wall = time.perf_counter() - started
        print(
            f"\n{name}: TinyRec {args.size}, {result.n_parameters:,} parameters, "
            f"{result.n_item_tokens} item tokens, split {result.split_strategy}, history order "
            f"{result.history_order}; trained {result.train_seconds:.0f} s "
            f"({result.epochs_completed:.1f} epochs, {result.steps} steps, "
            f"time-paced: {result.time_paced}), {wall:.0f} s with data prep and evaluation, "
            f"{args.threads} threads; load average {os.getloadavg()[0]:.1f}"
        )
        print(result.summary_table().to_string())
        print("TinyRec - popularity (paired over users, 95% CI):")
        for metric, value in result.paired.items():
            print(f"  {metric}: {value['mean']:+.4f} [{value['low']:+.4f}, {value['high']:+.4f}]")
        if result.profile_metrics:
            profile = result.profile_metrics
            print(
                f"profiles (held-out users): token NLL {profile['profile_token_nll']:.3f}, "
                f"exact match with the template {profile['profile_exact_match']:.2f} "
                f"({profile['profile_generated']:.0f} generated greedily)"
            )


if __name__ == "__main__":
    main()
