"""A test kit for plugin authors.

* :func:`make_context` builds a real :class:`AuditContext` on a small synthetic world, so a
  detector can be tested in a few seconds without files.
* :func:`inline_plugin` registers classes as a temporary plugin (and removes them after).
* :func:`check_detector` is a conformance suite a third-party detector runs against itself
  (like scikit-learn's ``check_estimator``): it returns the findings after checking that they
  are well-formed, reproducible and consistent with their thresholds;
  :func:`check_mitigator` does the same for a mitigator's :class:`MitigationResult`.

With audit-sdk installed, pytest also gets the fixtures ``audit_context`` and
``audit_plugin_host`` (see :mod:`audit_sdk.testing.pytest_plugin`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from audit_sdk.config import parse_config
from audit_sdk.hookspecs import hookimpl
from audit_sdk.interfaces import (
    AuditContext,
    DatasetLoader,
    Detector,
    GeneratorAdapter,
    Mitigator,
    Reporter,
    UserFeature,
)
from audit_sdk.plugin_commands import PluginCommand
from audit_sdk.plugin_host import PluginHost, PluginSettings
from audit_sdk.report_model import Finding
from audit_sdk.runner import AuditRunner, missing_requirement
from audit_sdk.testing.adapter_checks import check_adapter
from audit_sdk.testing.mitigator_checks import check_mitigator
from audit_sdk.thresholds import evaluate_threshold

__all__ = [
    "check_adapter",
    "check_detector",
    "check_mitigator",
    "inline_plugin",
    "make_context",
    "make_host",
]

_HOOK_FOR_BASE: dict[type, str] = {
    GeneratorAdapter: "audit_sdk_register_adapters",
    Detector: "audit_sdk_register_detectors",
    Mitigator: "audit_sdk_register_mitigators",
    Reporter: "audit_sdk_register_reporters",
    DatasetLoader: "audit_sdk_register_dataset_loaders",
    UserFeature: "audit_sdk_register_features",
    PluginCommand: "audit_sdk_register_commands",
}


def make_host(*, third_party: bool = False) -> PluginHost:
    """A fresh plugin host with audit-sdk's built-ins (and third-party plugins if asked)."""
    host = PluginHost(PluginSettings(autoload=third_party))
    host.load_entry_points()
    return host


class _InlinePlugin:
    def __init__(self, classes: tuple[type, ...]) -> None:
        self.classes = classes

    def _of(self, base: type) -> list[type]:
        return [c for c in self.classes if issubclass(c, base)]

    @hookimpl
    def audit_sdk_register_adapters(self, register: Any) -> None:
        for cls in self._of(GeneratorAdapter):
            register(cls)

    @hookimpl
    def audit_sdk_register_detectors(self, register: Any) -> None:
        for cls in self._of(Detector):
            register(cls)

    @hookimpl
    def audit_sdk_register_mitigators(self, register: Any) -> None:
        for cls in self._of(Mitigator):
            register(cls)

    @hookimpl
    def audit_sdk_register_reporters(self, register: Any) -> None:
        for cls in self._of(Reporter):
            register(cls)

    @hookimpl
    def audit_sdk_register_dataset_loaders(self, register: Any) -> None:
        for cls in self._of(DatasetLoader):
            register(cls)

    @hookimpl
    def audit_sdk_register_features(self, register: Any) -> None:
        for cls in self._of(UserFeature):
            register(cls)

    @hookimpl
    def audit_sdk_register_commands(self, register: Any) -> None:
        for cls in self._of(PluginCommand):
            register(cls)


@contextmanager
def inline_plugin(host: PluginHost, *classes: type, name: str = "inline") -> Iterator[PluginHost]:
    """Register ``classes`` (adapters, detectors, ...) as one temporary plugin."""
    for cls in classes:
        if not any(issubclass(cls, base) for base in _HOOK_FOR_BASE):
            raise TypeError(f"{cls!r} is not an audit-sdk plugin class")
    host.register_plugin(_InlinePlugin(classes), name=name)
    try:
        yield host
    finally:
        host.unregister_plugin(name)


def make_context(
    *,
    n_users: int = 400,
    seed: int = 0,
    subject: str = "item_knn",
    host: PluginHost | None = None,
    **config: Any,
) -> AuditContext:
    """A real audit context on a small synthetic world (a few seconds on one core).

    Keyword arguments override config sections, e.g. ``groups={"age_bins": [40]}``.
    """
    data: dict[str, Any] = {
        "seed": seed,
        "dataset": {"loader": "synthetic", "params": {"seed": seed, "n_users": n_users}},
        "subject": {"adapter": subject},
        "baselines": ["popularity"],
        "stats": {"bootstrap_resamples": 200},
        "outputs": {"formats": []},
        "detectors": [],
    }
    data.update(config)
    runner = AuditRunner(
        parse_config(data, source="audit_sdk.testing.make_context"), host=host or make_host()
    )
    return runner.build_context()


def check_detector(detector: Detector, context: AuditContext | None = None) -> list[Finding]:
    """Run ``detector`` on ``context`` (default: :func:`make_context`) and check the contract:

    * it declares a valid ``name`` and its requirements are met by the context;
    * ``detect`` returns a list of :class:`Finding` whose ``detector`` is its name;
    * every estimate with a CI lies within it, CIs are ordered, and ``n`` is given;
    * each status follows from the finding's threshold (or is error/skipped with a reason);
    * running again on the same context gives the same findings (seeded randomness).
    """
    context = context or make_context()
    problems: list[str] = []
    if not getattr(detector, "name", None):
        problems.append("the detector class has no `name`")
    reason = missing_requirement(detector, context)
    if reason is not None:
        raise AssertionError(f"the check context cannot run {detector.name!r}: {reason}")
    findings = detector.detect(context)
    if not isinstance(findings, list) or not all(isinstance(f, Finding) for f in findings):
        raise AssertionError(f"{detector.name}.detect must return a list of Finding")
    if not findings:
        problems.append("detect returned no findings")
    for f in findings:
        where = f"finding {f.key!r}"
        if f.detector != detector.name:
            problems.append(f"{where}: detector is {f.detector!r}, expected {detector.name!r}")
        if not f.explanation.strip():
            problems.append(f"{where}: empty explanation")
        if f.status in {"error", "skipped"}:
            continue
        values = [v for v in (f.ci_low, f.estimate, f.ci_high) if v is not None]
        if f.estimate is not None:
            if f.ci_low is None or f.ci_high is None:
                problems.append(f"{where}: an estimate without a CI")
            elif not all(math.isfinite(v) for v in values):
                problems.append(f"{where}: non-finite estimate or CI")
            elif not f.ci_low <= f.estimate <= f.ci_high:
                problems.append(f"{where}: estimate {f.estimate} outside [{f.ci_low}, {f.ci_high}]")
            if not f.n:
                problems.append(f"{where}: no n")
        expected = evaluate_threshold(f.threshold, f.estimate, f.ci_low, f.ci_high)
        if f.threshold is not None and f.status != expected:
            problems.append(f"{where}: status {f.status!r} but its threshold gives {expected!r}")
        for row in f.groups:
            if row.ci_low is not None and row.ci_high is not None and row.ci_low > row.ci_high:
                problems.append(f"{where}: group {row.group!r} has a reversed CI")
    again = detector.detect(context)
    first = [f.model_dump(exclude={"details"}) for f in findings]
    second = [f.model_dump(exclude={"details"}) for f in again]
    if first != second:
        problems.append("two runs on the same context differ: seed randomness from context.rng()")
    if problems:
        raise AssertionError(
            f"{detector.name} fails the detector contract:\n- " + "\n- ".join(problems)
        )
    return findings
