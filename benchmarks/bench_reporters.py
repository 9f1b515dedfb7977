"""Render time of every built-in reporter on a large report (medians of several runs).

Run from the repository root: ``python -m benchmarks.bench_reporters [FINDINGS] [GROUPS]``.
The reference is pydantic's own JSON serialization of the same report (``report.json``): the
ratio says how many times longer each rendering takes than writing the source of truth.
"""

from __future__ import annotations

import statistics
import sys
import time

from audit_sdk.reports.builtin_reporters import BUILTIN_REPORTERS

from tests.report_factories import large_report


def _median_seconds(fn, repeats: int = 7) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    n_findings = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    n_groups = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    report = large_report(n_findings, n_groups)
    print(f"report: {n_findings} findings x {n_groups} groups")
    reference = _median_seconds(lambda: report.model_dump_json(indent=2))
    print(f"{'reference: model_dump_json':<28} {reference * 1000:8.1f} ms")
    for cls in BUILTIN_REPORTERS:
        reporter = cls()
        size = len(reporter.render(report))
        seconds = _median_seconds(lambda reporter=reporter: reporter.render(report))
        print(
            f"{cls.name + ' (' + cls.filename + ')':<28} {seconds * 1000:8.1f} ms  "
            f"{size / 1e6:6.2f} MB  ratio to reference {seconds / reference:6.1f}x"
        )


if __name__ == "__main__":
    main()
