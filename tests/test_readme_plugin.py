"""The README's plugin example runs as written: imports from `audit_sdk` alone, passes the
detector contract, and its declared metric reaches the findings."""

from __future__ import annotations

import re
import types
from pathlib import Path

from audit_sdk import testing

README = Path(__file__).resolve().parents[1] / "README.md"


def _example_module() -> types.ModuleType:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```python\n(# my_plugin\.py\n.*?)```", text, re.S)
    assert block is not None, "the README lost its plugin example"
    module = types.ModuleType("my_plugin")
    exec(compile(block.group(1), "README.md:my_plugin.py", "exec"), module.__dict__)
    return module


def test_the_readme_detector_passes_the_contract() -> None:
    module = _example_module()
    host = testing.make_host()
    with testing.inline_plugin(host, module.HitRate):
        context = testing.make_context(n_users=200, host=host)
        (finding,) = testing.check_detector(module.HitRate(), context)
    assert finding.metric == "hit@10" and finding.n == 200


def test_declared_metrics_are_stamped_on_findings(tmp_path: Path) -> None:
    from audit_sdk.config import parse_config
    from audit_sdk.runner import AuditRunner

    module = _example_module()
    host = testing.make_host()
    with testing.inline_plugin(host, module.HitRate):
        cfg = parse_config(
            {
                "dataset": {"params": {"n_users": 200, "n_artists": 60}},
                "baselines": [],
                "detectors": [{"name": "hit_rate"}],
                "outputs": {"formats": ["json", "junit"]},
            }
        )
        result = AuditRunner(cfg, host=host, quiet=True, out_dir=tmp_path).run()
    (finding,) = result.report.findings
    assert finding.direction == "higher_is_better"
    assert finding.value_range == (0.0, 1.0)
    assert finding.duration_s is not None and finding.duration_s > 0
    # JUnit reads the typed duration (it used to read a key nobody wrote and always said 0)
    junit = (tmp_path / "junit.xml").read_text(encoding="utf-8")
    times = [float(t) for t in re.findall(r'<testcase [^>]*time="([0-9.]+)"', junit)]
    assert times and all(t > 0 for t in times)


def test_every_built_in_detector_declares_the_metrics_it_emits() -> None:
    """Each finding of the built-in recommendation detectors on a real audit matches one of
    its detector's declared MetricSpec patterns (so the gate reads, never guesses, direction)."""
    from audit_sdk.interfaces.requirements import metric_spec_for

    host = testing.make_host()
    context = testing.make_context(n_users=300)
    for name in ("group_fairness", "baseline_comparison", "popularity_bias"):
        detector = host.get("detector", name).cls()
        for finding in detector.detect(context):
            if finding.status == "skipped":
                continue
            assert metric_spec_for(detector.metrics, finding.metric) is not None, (
                name,
                finding.metric,
            )


def test_the_gate_reads_the_declared_direction() -> None:
    from audit_sdk.gate import evaluate_gate, parse_policy

    from .report_factories import finding, make_report

    def report(value: float, direction: str) -> object:
        return make_report([finding("d", "kl", estimate=value, status="pass", direction=direction)])

    policy = parse_policy({"fail_on_status": [], "baseline": {"tolerance": 0.01}})
    worse = evaluate_gate(
        report(0.5, "lower_is_better"), policy, baseline=report(0.3, "lower_is_better")
    )
    better = evaluate_gate(
        report(0.5, "higher_is_better"), policy, baseline=report(0.3, "higher_is_better")
    )
    assert [v.rule for v in worse.violations] == [
        "baseline: harmful change <= 0.01 (higher is worse)"
    ]
    assert better.violations == []
