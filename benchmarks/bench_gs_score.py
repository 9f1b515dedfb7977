"""GS-score at scale: PPMI + truncated SVD item vectors, then the GS of every user.

Run from the repository root::

    python -m benchmarks.bench_gs_score              # 100K users x 1M interactions, 20K items
    python -m benchmarks.bench_gs_score --million    # 1M users x 10M interactions, 100K items

The listening matrix is drawn directly (no event log): each user has a lognormal number of
distinct items (mean ~10), mostly from one of 50 taste clusters, a Zipf item popularity inside
each cluster, and Poisson play counts. Printed: the time of the PPMI + SVD item vectors, the
time of the GS of every user given 64-d vectors (the per-user step the issue bounds at 60 s for
1M users), and the process's peak resident memory. Targets (issue 10): GS under 60 s and the
whole feature under 180 s with peak memory under 4 GB at 1M users, on 2 cores.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
from audit_sdk.plugins.features.generalist_specialist import gs_scores, ppmi_item_vectors
from scipy import sparse


def listening_matrix(
    n_users: int, n_items: int, *, mean_items: float = 10.0, seed: int = 0
) -> sparse.csr_matrix:
    rng = np.random.default_rng(seed)
    clusters = 50
    per_cluster = n_items // clusters
    counts = np.maximum(1, rng.lognormal(np.log(mean_items) - 0.32, 0.8, n_users).astype(int))
    user = np.repeat(np.arange(n_users), counts)
    home = rng.integers(clusters, size=n_users)[user]
    breadth = rng.random(n_users)[user]  # chance an item comes from outside the home cluster
    cluster = np.where(
        rng.random(len(user)) < breadth, rng.integers(clusters, size=len(user)), home
    )
    rank = np.minimum(rng.zipf(1.3, size=len(user)) - 1, per_cluster - 1)
    item = cluster * per_cluster + rank
    plays = 1.0 + rng.poisson(3.0, size=len(user))
    matrix = sparse.csr_matrix((plays, (user, item)), shape=(n_users, n_items))
    matrix.sum_duplicates()
    return matrix


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--million", action="store_true", help="1M users, 100K items")
    parser.add_argument("--dimensions", type=int, default=64)
    args = parser.parse_args(argv)
    n_users, n_items = (1_000_000, 100_000) if args.million else (100_000, 20_000)

    start = time.perf_counter()
    plays = listening_matrix(n_users, n_items)
    drawn = time.perf_counter() - start
    print(f"{n_users:,} users x {n_items:,} items, {plays.nnz:,} interactions "
          f"(drawn in {drawn:.1f} s)")  # fmt: skip

    start = time.perf_counter()
    vectors = ppmi_item_vectors(plays, dimensions=args.dimensions, seed=0)
    t_vectors = time.perf_counter() - start
    start = time.perf_counter()
    scores = gs_scores(plays, vectors, min_items=5)
    t_gs = time.perf_counter() - start
    defined = np.isfinite(scores)
    print(f"PPMI + SVD item vectors ({vectors.shape[1]}-d): {t_vectors:.1f} s")
    print(f"GS of every user: {t_gs:.2f} s ({defined.mean():.0%} defined, "
          f"median {np.median(scores[defined]):.3f})")  # fmt: skip
    print(f"whole feature: {t_vectors + t_gs:.1f} s; peak RSS {peak_rss_gb():.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
