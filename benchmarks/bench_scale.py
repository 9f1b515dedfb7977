"""The same audit at 10K, 100K and 1M users: wall time and peak memory per stage.

Run from the repository root::

    python -m benchmarks.bench_scale                 # 10K, 100K and 1M users
    python -m benchmarks.bench_scale --stop-at 100000
    python -m benchmarks.bench_scale --sizes 5000    # any sizes

The audit: a synthetic world (2,000 artists, ``--events-per-user`` mean events per user),
item-kNN subject (``--neighbours`` most similar items per item, 50 by default; 0 for all, the
adapter's default), popularity and random baselines, the recommendation detectors
(``baseline_comparison``, ``group_fairness``, ``popularity_bias``, ``causal_effects``). Each
size runs in a fresh process, so its peak memory is its own.

Time is wall-clock and CPU (``time.process_time``, all threads) per stage; on a shared machine
CPU time is the steadier figure, and the growth ratios use it.

Memory is the **resident set size** (RSS) of the process, sampled from ``/proc/self/statm``
every 10 ms by a background thread: "peak" of a stage is the highest RSS seen while the stage
ran (the process also holds what earlier stages built), "max" is ``ru_maxrss`` at the end.
tracemalloc is not used: it slows pandas' object columns several times over.

After the audit, :mod:`benchmarks.bench_scale_reference` computes the same numbers with a
minimal vectorised script (the physical floor) on the same context; each detector's time is
printed with its ratio to the reference's time for the same metrics.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from audit_sdk.progress_display import ProgressDisplay, StepHandle

DETECTORS = ("baseline_comparison", "group_fairness", "popularity_bias", "causal_effects")
PAGE = os.sysconf("SC_PAGE_SIZE")


class RssSampler:
    """Highest resident set size seen since the last :meth:`reset`, sampled every 10 ms."""

    def __init__(self, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self.peak = self.current()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    @staticmethod
    def current() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * PAGE

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, self.current())

    def reset(self) -> None:
        self.peak = self.current()

    def stop(self) -> None:
        self._stop.set()


class StageRecorder:
    """Wall time and peak RSS of named stages."""

    def __init__(self, sampler: RssSampler) -> None:
        self.sampler = sampler
        self.stages: list[dict[str, Any]] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.sampler.reset()
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.stages.append(
                {
                    "stage": name,
                    "seconds": time.perf_counter() - start,
                    "cpu_seconds": time.process_time() - cpu,
                    "peak_rss": max(self.sampler.peak, self.sampler.current()),
                }
            )


class _RecordingProgress(ProgressDisplay):
    """The runner's progress display, timing each step instead of drawing it."""

    def __init__(self, recorder: StageRecorder) -> None:
        super().__init__(quiet=True)
        self.recorder = recorder

    @contextmanager
    def step(self, description: str, total: int = 1) -> Iterator[StepHandle]:
        with self.recorder.stage(description), super().step(description, total) as handle:
            yield handle


def planned_detectors(plan: Any) -> list[Any]:
    """The detector instances of a runner's plan (a planned call, or a (detector, timeout)
    pair in older runners)."""
    return [getattr(entry, "plugin", None) or entry[0] for entry in plan.detectors]


def audit_config(
    n_users: int, events_per_user: float, seed: int, neighbours: int | None = None
) -> dict[str, Any]:
    return {
        "seed": seed,
        "dataset": {
            "loader": "synthetic",
            "params": {
                "seed": seed,
                "n_users": n_users,
                "n_artists": 2000,
                "mean_events_per_user": events_per_user,
                "min_events_per_user": max(5, int(events_per_user // 4)),
            },
        },
        "subject": {
            "adapter": "item_knn",
            **({"params": {"neighbours": neighbours}} if neighbours else {}),
        },
        "baselines": ["popularity", "random"],
        "detectors": [{"name": name} for name in DETECTORS],
        "profiles": {"enabled": False},
        "outputs": {"formats": ["json"]},
    }


def run_one(
    n_users: int, events_per_user: float, seed: int, reference: bool, neighbours: int | None
) -> dict[str, Any]:
    from audit_sdk.config import parse_config
    from audit_sdk.runner import AuditRunner

    sampler = RssSampler()
    recorder = StageRecorder(sampler)
    cfg = parse_config(audit_config(n_users, events_per_user, seed, neighbours))
    runner = AuditRunner(cfg, quiet=True)
    plan = runner.plan()
    context = runner.build_context(plan, _RecordingProgress(recorder))
    findings = 0
    for detector in planned_detectors(plan):
        with recorder.stage(f"detector {detector.name}"):
            findings += len(detector.detect(context))
    result: dict[str, Any] = {
        "n_users": n_users,
        "n_events": len(context.dataset.interactions.frame),
        "n_train": len(context.train.interactions.frame),
        "findings": findings,
        "stages": recorder.stages,
    }
    if reference:
        from benchmarks.bench_scale_reference import reference_metrics

        result["reference"] = reference_metrics(context, recorder_factory=recorder.stage)
    result["max_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    sampler.stop()
    return result


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.2f} GB"


def print_result(result: dict[str, Any]) -> None:
    print(
        f"\n== {result['n_users']:,} users, {result['n_events']:,} events "
        f"({result['n_train']:,} in training), {result['findings']} findings"
    )
    audit = [s for s in result["stages"] if not s["stage"].startswith("reference ")]
    total = sum(s["seconds"] for s in audit)
    cpu = sum(s.get("cpu_seconds", 0.0) for s in audit)
    print(f"  {'stage':<52} {'wall':>8}    {'CPU':>8}    peak RSS")
    for s in result["stages"]:
        print(
            f"  {s['stage']:<52} {s['seconds']:8.2f} s  {s.get('cpu_seconds', 0.0):8.2f} s  "
            f"{_gb(s['peak_rss'])}"
        )
    print(
        f"  {'total (audit stages)':<52} {total:8.2f} s  {cpu:8.2f} s  max {_gb(result['max_rss'])}"
    )
    print(f"  load average at the end: {os.getloadavg()[0]:.1f} (2 cores shared)")
    ref = result.get("reference")
    if ref:
        print("  reference (minimal vectorised script, same numbers):")
        for name, seconds in ref["seconds"].items():
            own = next((s for s in result["stages"] if s["stage"] == f"detector {name}"), None)
            ref = next(s for s in result["stages"] if s["stage"] == f"reference {name}")
            ratio = ""
            if own and ref.get("cpu_seconds"):
                ratio = f"  detector/reference CPU {own['cpu_seconds'] / ref['cpu_seconds']:5.2f}x"
            print(f"    {name:<50} {seconds:8.2f} s{ratio}")


def print_growth(results: list[dict[str, Any]]) -> None:
    for small, big in itertools.pairwise(results):
        data = big["n_events"] / small["n_events"]
        t_small, t_big = (
            sum(
                s.get("cpu_seconds", s["seconds"])
                for s in r["stages"]
                if not s["stage"].startswith("reference ")
            )
            for r in (small, big)
        )
        time_ratio = t_big / t_small
        mem_ratio = big["max_rss"] / small["max_rss"]
        print(
            f"\n{small['n_users']:,} -> {big['n_users']:,} users: data x{data:.1f}, "
            f"audit CPU time x{time_ratio:.1f} ({time_ratio / data:.2f} of data growth), "
            f"max RSS x{mem_ratio:.1f} ({mem_ratio / data:.2f} of data growth)"
        )
        for s_small, s_big in zip(small["stages"], big["stages"], strict=False):
            cpu_small = s_small.get("cpu_seconds", s_small["seconds"])
            if s_small["stage"] == s_big["stage"] and cpu_small > 0.05:
                r = s_big.get("cpu_seconds", s_big["seconds"]) / cpu_small
                print(f"  {s_small['stage']:<52} time x{r:6.1f} ({r / data:.2f} of data growth)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--stop-at", type=int, default=None, help="skip sizes above this")
    parser.add_argument("--events-per-user", type=float, default=50.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--neighbours", type=int, default=50, help="item-kNN neighbours per item (0: all)"
    )
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    if args.one is not None:
        neighbours = args.neighbours or None
        result = run_one(
            args.one, args.events_per_user, args.seed, not args.no_reference, neighbours
        )
        print(json.dumps(result))
        return
    sizes = [n for n in args.sizes if args.stop_at is None or n <= args.stop_at]
    results = []
    for n in sizes:
        command = [sys.executable, "-m", "benchmarks.bench_scale", "--one", str(n)]
        command += ["--events-per-user", str(args.events_per_user), "--seed", str(args.seed)]
        command += ["--neighbours", str(args.neighbours)]
        if args.no_reference:
            command.append("--no-reference")
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"\n== {n:,} users: failed (exit {done.returncode})\n{done.stderr[-3000:]}")
            break
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(result)
        print_result(result)
        sys.stdout.flush()
    print_growth(results)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
