"""Downstream utility with all-MiniLM-L6-v2 on CPU: 2,000 profiles x 100 candidates.

Run from the repository root::

    python -m benchmarks.bench_downstream_utility [--profiles 2000] [--negatives 90]
        [--repeats 3] [--torch]

A synthetic catalog of 20,000 tracks (title, artist, genre, country, year), 2,000 users with
10 held-out items each and a one-sentence profile; each profile ranks its held-out items among
``negatives`` sampled negatives (one draw, so 100 candidates a profile). Nearly every track is
a candidate somewhere, so ~22,000 distinct texts are encoded. Printed, medians of
``--repeats`` runs, and the ratio to the issue's 60 s target:

- cold: an empty cache folder: model load, ONNX export (once per model), every text encoded;
- warm: the same audit again in a new process state with the item-embedding cache file kept
  (only the 2,000 profiles are encoded);
- with ``--torch``, cold with the sentence-transformers backend (the previous path).

Measured 2026-12-01 on the shared 2-core machine at load average 7.5-10 (other agents), one
repeat: cold onnx 323 s wall / 99.6 CPU-s, warm 4.0 s / 1.2 CPU-s, cold torch 252 s wall /
200.3 CPU-s (wall times are not comparable under a varying load; CPU time is). At low load
ONNX encodes 482 short texts/s vs 203 for torch on the two cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from audit_sdk.plugins.detectors._downstream_embedding_cache import (
    _PROCESS_MEMORY,
    ItemEmbeddingCache,
    default_embedding_cache_path,
)
from audit_sdk.plugins.detectors._profile_utility import (
    SentenceEncoder,
    default_encoder_path,
    profile_utility,
)

TARGET_S = 60.0
GENRES = ("rock", "pop", "jazz", "metal", "k-pop", "classical", "hip-hop", "folk")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=2000)
    parser.add_argument("--negatives", type=int, default=90)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--torch", action="store_true", help="also time the torch backend")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    n_items = 20_000
    genre = rng.integers(len(GENRES), size=n_items)
    catalog = pd.DataFrame(
        {
            "title": [f"Track {i}" for i in range(n_items)],
            "artist": [f"Artist {i // 8}" for i in range(n_items)],
            "genres": [(GENRES[g],) for g in genre],
            "country": rng.choice(["US", "GB", "KR", "BR"], size=n_items),
            "release_year": rng.integers(1960, 2024, size=n_items),
        },
        index=pd.Index([f"t{i}" for i in range(n_items)], name="item_id"),
    )
    users = [f"u{i}" for i in range(args.profiles)]
    favourite = rng.integers(len(GENRES), size=args.profiles)
    by_genre = {g: np.flatnonzero(genre == g) for g in range(len(GENRES))}
    held = [catalog.index[rng.choice(by_genre[g], 10, replace=False)] for g in favourite]
    test = pd.DataFrame(
        {"user_id": np.repeat(users, 10), "item_id": np.concatenate(held), "plays": 1.0}
    )
    train = test.iloc[:0]
    profiles = pd.DataFrame(
        {"user_id": users, "text": [f"Loves {GENRES[g]} above all." for g in favourite]}
    )

    def run(backend: str, *, fresh: bool) -> tuple[float, float, float, pd.DataFrame]:
        if fresh:
            os.environ["AUDIT_SDK_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-downstream-")
        _PROCESS_MEMORY.clear()  # a new process: nothing in memory
        cpu = time.process_time()
        start = time.perf_counter()
        encoder = SentenceEncoder(default_encoder_path(), backend=backend)  # type: ignore[arg-type]
        encoder.embed(["warm-up"])  # load (and for onnx, export once per cache folder)
        loaded = time.perf_counter() - start
        start = time.perf_counter()
        table = profile_utility(
            profiles,
            train=train,
            test=test,
            catalog=catalog,
            encoder=encoder,
            rng=np.random.default_rng(1),
            negatives=args.negatives,
            draws=1,
            item_cache=ItemEmbeddingCache(default_embedding_cache_path()),
        )
        return loaded, time.perf_counter() - start, time.process_time() - cpu, table

    print(f"{args.profiles:,} profiles x {10 + args.negatives} candidates, {n_items:,} tracks")
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    cases = [("cold, onnx", "onnx", True), ("warm, onnx", "onnx", False)]
    if args.torch:
        cases.append(("cold, torch", "torch", True))
    tables = {}
    for label, backend, fresh in cases:
        runs = []
        for _ in range(args.repeats):
            loaded, ranked, cpu, tables[label] = run(backend, fresh=fresh)
            runs.append((loaded, ranked, loaded + ranked, cpu))
        loaded, ranked, total, cpu = (float(np.median(c)) for c in zip(*runs, strict=True))
        print(
            f"{label:12s} load {loaded:6.1f} s  encode + rank {ranked:6.1f} s  total "
            f"{total:6.1f} s  (CPU {cpu:6.1f} s)  ratio to the 60 s target "
            f"{total / TARGET_S:.2f}  (median of {len(runs)})"
        )
    first = tables["cold, onnx"]
    print(f"mean ndcg@10 {first['ndcg@10'].mean():.3f}, recall@10 {first['recall@10'].mean():.3f}")
    for label, table in tables.items():
        gap = float(np.nanmax(np.abs(table["ndcg@10"] - first["ndcg@10"])))
        print(f"largest per-profile ndcg@10 difference, {label} vs cold onnx: {gap:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
