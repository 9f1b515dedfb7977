"""Build and install real plugin distributions for tests (``pip install --target``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

EXAMPLE_PLUGIN = '''
"""An example third-party audit-sdk plugin, installed as its own distribution."""

from audit_sdk import hookimpl
from audit_sdk.interfaces import Detector
from audit_sdk.report_model import Finding
from audit_sdk.stats.bootstrap import mean_ci


class CoverageDetector(Detector):
    """Share of users whose top-k list has at least one held-out item (hit rate)."""

    name = "example_hit_rate"
    description = "Example third-party detector: hit rate with a CI."
    requires = frozenset({"recommendations"})

    def detect(self, context):
        values = context.user_table[f"hit@{context.k}"].to_numpy()
        iv = mean_ci(values, confidence=0.95, n_resamples=200, rng=context.rng(self.name))
        return [
            Finding(
                detector=self.name,
                metric=f"hit@{context.k}",
                estimate=iv.estimate,
                ci_low=iv.low,
                ci_high=iv.high,
                n=iv.n,
                status="pass",
                explanation=f"hit rate {iv.estimate:.3f}",
            )
        ]


class BrokenDetector(Detector):
    name = "example_broken"
    description = "Example detector that always raises."

    def detect(self, context):
        raise RuntimeError("example failure inside a plugin")


@hookimpl
def audit_sdk_register_detectors(register):
    register(CoverageDetector)
    register(BrokenDetector)
'''


def build_and_install_plugin(tmp_path: Path) -> Path:
    """Create the source of ``audit-sdk-example-plugin``, pip-install it into a fresh target
    folder, and return that folder (add it to ``sys.path`` to make it visible)."""
    src = tmp_path / "example_plugin_src"
    src.mkdir()
    (src / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "audit-sdk-example-plugin"
            version = "1.2.3"
            dependencies = []

            [project.entry-points.audit_sdk]
            example = "audit_sdk_example_plugin"

            [tool.setuptools]
            py-modules = ["audit_sdk_example_plugin"]
            """
        )
    )
    (src / "audit_sdk_example_plugin.py").write_text(EXAMPLE_PLUGIN)
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(src),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return target
