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
