"""Distributed execution: generation throughput on 1 and 2 workers, and the cost of one task.

The workload is the generation stage's: ``--prompts`` profile prompts of a synthetic world
written through the audit's :class:`~audit_sdk.services.GenerationService` (no cache, batches
of ``--batch-size`` prompts, each batch one shard), by a CPU-bound writer that spends
``--work-ms`` of CPU per prompt (a stand-in for a model's forward passes) and then writes the
template profile. For each backend and worker count the service runs the whole set
``--repeats`` times after a warm-up (which starts the workers and loads the writer once per
worker); printed: the median wall time, prompts per second and the speed-up over one worker.

The per-task overhead is measured with shards that do nothing: ``--tasks`` empty shards through
``map_shards``, median time per shard minus the local executor's.

    python benchmarks/bench_ray.py [--prompts 240] [--work-ms 20] [--mode cpu|wait]
        [--batch-size 8] [--workers 1 2] [--repeats 3] [--tasks 400] [--backends ray process]

``--mode wait`` makes each prompt's work a wait instead of CPU: a worker whose model runs on
its own GPU (or behind a server) leaves its CPU idle, which is how the backends scale on a
cluster; ``--mode cpu`` shows what the machine's free cores allow.

Every run checks that the texts equal the local executor's (the report does not depend on
the backend). The figures measured on this machine are in the README ("Running on a Ray
cluster") and /work/notes/issue18.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit_sdk.adapters.template_profile_writer import TemplateProfileWriter

from audit_sdk.execution import Executor, LocalExecutor, Shard
from audit_sdk.interfaces import GenerationParams


class BusyWriter(TemplateProfileWriter):
    """The template writer after ``work_ms`` per prompt: of CPU (``wait=False``, like a
    model's compute on the worker's cores) or of waiting (``wait=True``, like a worker whose
    model runs on its GPU or behind a server: the worker's CPU is idle meanwhile)."""

    name = "busy_writer"
    work_ms = 20.0
    wait = False

    def generate(self, prompts: Any, *, params: GenerationParams) -> list[str]:
        for _ in prompts:
            if self.wait:
                time.sleep(self.work_ms / 1000.0)
                continue
            end = time.thread_time() + self.work_ms / 1000.0
            while time.thread_time() < end:
                pass
        return super().generate(prompts, params=params)


def _nothing(_resource: Any, payload: Any) -> Any:
    return payload


def profile_prompts(n: int) -> list[str]:
    from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world
    from audit_sdk.profile_pipeline import profile_prompt_table, sample_profile_windows

    world = generate_world(SyntheticWorldParams(seed=0, n_users=max(50, n // 3 + 1)))
    table = profile_prompt_table(
        sample_profile_windows(world, windows=[30, 90, 180, 365]), world.catalog
    )
    prompts = table.drop_duplicates("prompt_sha256")["prompt"].tolist()
    if len(prompts) < n:
        raise SystemExit(f"the world gives {len(prompts)} prompts; ask for fewer")
    return prompts[:n]


def make_executor(backend: str, workers: int) -> Executor:
    if backend == "local":
        return LocalExecutor()
    if backend == "process":
        from audit_sdk.execution_process import ProcessExecutor

        return ProcessExecutor(workers=workers)
    from audit_sdk.execution_ray import RayExecutor

    return RayExecutor(workers=workers)


def generation_seconds(
    executor: Executor, prompts: list[str], args: argparse.Namespace
) -> tuple[list[float], list[str]]:
    from audit_sdk.services import GenerationService

    writer = BusyWriter()
    writer.work_ms = args.work_ms
    writer.wait = args.mode == "wait"
    service = GenerationService(batch_size=args.batch_size, executor=executor)
    texts = [r.text or "" for r in service.generate(writer, prompts, params=GenerationParams())]
    times = []
    for _ in range(args.repeats):
        began = time.perf_counter()
        again = service.generate(writer, prompts, params=GenerationParams())
        times.append(time.perf_counter() - began)
        assert [r.text for r in again] == texts
    return times, texts


def task_overhead_s(executor: Executor, n: int) -> float:
    shards = [Shard(_nothing, i, "bench", "nothing") for i in range(n)]
    executor.map_shards(shards[: min(n, 20)])  # warm-up
    times = []
    for _ in range(3):
        began = time.perf_counter()
        records = executor.map_shards(shards)
        times.append((time.perf_counter() - began) / n)
        assert [r.result for r in records] == list(range(n))
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=240)
    parser.add_argument("--work-ms", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=400)
    parser.add_argument("--backends", nargs="+", default=["ray", "process"])
    parser.add_argument(
        "--mode",
        choices=["cpu", "wait"],
        default="cpu",
        help="each prompt's work: CPU on the worker, or waiting (a GPU or a served model)",
    )
    args = parser.parse_args(argv)
    if "ray" in args.backends:
        import ray

        ray.init(
            num_cpus=max(args.workers),
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            logging_level="ERROR",
        )
    prompts = profile_prompts(args.prompts)
    cpus = len(os.sched_getaffinity(0))
    print(
        f"{len(prompts)} prompts x {args.work_ms:g} ms {args.mode}, batches of {args.batch_size}; "
        f"{cpus} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    local = LocalExecutor()
    times, reference = generation_seconds(local, prompts, args)
    base = statistics.median(times)
    local_task = task_overhead_s(local, args.tasks)
    print(f"{'local':>8} {'-':>7} {base:8.2f} s {len(prompts) / base:8.1f} prompts/s")
    for backend in args.backends:
        one = None
        for workers in args.workers:
            executor = make_executor(backend, workers)
            try:
                times, texts = generation_seconds(executor, prompts, args)
                assert texts == reference, "a backend changed the generations"
                seconds = statistics.median(times)
                one = one or seconds
                overhead = task_overhead_s(executor, args.tasks) - local_task
            finally:
                executor.close()
            print(
                f"{backend:>8} {workers:>7} {seconds:8.2f} s {len(prompts) / seconds:8.1f} "
                f"prompts/s  x{one / seconds:.2f} vs 1 worker, x{base / seconds:.2f} vs local; "
                f"overhead {overhead * 1000:.2f} ms per task"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
