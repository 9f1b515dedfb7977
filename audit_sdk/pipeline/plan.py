"""Stage 1, plan: resolve and instantiate every plugin the config names.

Unknown names and bad parameters fail here, naming the config location and the plugin, before
any data is loaded or any model is called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit_sdk.config import AuditConfig
from audit_sdk.errors import ConfigError
from audit_sdk.interfaces import (
    DatasetLoader,
    Detector,
    GeneratorAdapter,
    Mitigator,
    PluginParams,
    Reporter,
    UserFeature,
)
from audit_sdk.plugin_host import PluginHost
from audit_sdk.plugin_instances import validate_params as _validate
from audit_sdk.plugin_registry import Registration
from audit_sdk.redaction import register_params_secrets
from audit_sdk.services import AdapterSpec

__all__ = ["AuditPlan", "PlannedCall", "plan_audit"]


@dataclass(frozen=True)
class PlannedCall:
    """A detector or mitigator instance with its time limit."""

    plugin: Detector | Mitigator
    timeout_s: float


@dataclass
class AuditPlan:
    """Every plugin an audit uses, instantiated with validated parameters."""

    loader: DatasetLoader
    subject: GeneratorAdapter
    subject_spec: AdapterSpec
    baselines: dict[str, GeneratorAdapter]
    detectors: list[PlannedCall]
    mitigators: list[PlannedCall]
    reporters: list[Reporter]
    features: dict[str, UserFeature]
    profile_generators: dict[str, GeneratorAdapter] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def adapters(self) -> list[GeneratorAdapter]:
        """Every distinct adapter instance (to close at the end)."""
        unique = {
            id(a): a
            for a in (self.subject, *self.baselines.values(), *self.profile_generators.values())
        }
        return list(unique.values())


def plan_audit(config: AuditConfig, host: PluginHost, *, where: str = "config") -> AuditPlan:
    """Resolve every plugin of ``config`` through ``host`` and validate its parameters (path
    parameters resolved against the config file's folder)."""
    base = config.source_dir

    def validate_params(reg: Registration, params: dict[str, Any], *, where: str) -> PluginParams:
        validated = _validate(reg, params, where=where, base_dir=base)
        register_params_secrets(validated)  # so no output can carry them
        return validated

    reg = host.get("dataset_loader", config.dataset.loader)
    loader = reg.cls(validate_params(reg, config.dataset.params, where=f"{where}: dataset.params"))
    subject_reg = host.get("adapter", config.subject.adapter)
    subject_params = validate_params(
        subject_reg, config.subject.params, where=f"{where}: subject.params"
    )
    subject = subject_reg.cls(subject_params)
    spec = AdapterSpec(
        config.subject.adapter, subject_params.model_dump(mode="json"), f"{where}: subject.params"
    )
    baselines = {}
    for name in config.baselines:
        reg = host.get("adapter", name)
        baselines[name] = reg.cls(validate_params(reg, {}, where=f"{where}: baselines"))
    detectors = []
    for i, det in enumerate(config.detectors):
        reg = host.get("detector", det.name)
        params = validate_params(reg, det.params, where=f"{where}: detectors[{i}].params")
        detectors.append(PlannedCall(reg.cls(params, det.thresholds), det.timeout_s))
    mitigators = []
    for i, mit in enumerate(config.mitigators):
        reg = host.get("mitigator", mit.name)
        params = validate_params(reg, mit.params, where=f"{where}: mitigators[{i}].params")
        mitigators.append(PlannedCall(reg.cls(params), mit.timeout_s))
    for role, model in config.models.items():
        reg = host.get("adapter", model.adapter)
        validate_params(reg, model.params, where=f"{where}: models.{role}.params")
    reporters = [host.get("reporter", fmt).cls() for fmt in config.outputs.formats]
    registered = {reg.name: reg for reg in host.registry.all() if reg.kind == "feature"}
    unknown = sorted(set(config.features) - set(registered))
    if unknown:
        raise ConfigError(
            f"{where}: features.{unknown[0]}: no user feature of that name is registered; "
            f"configurable features: {', '.join(sorted(registered)) or 'none'}"
        )
    features = {
        name: reg.cls(
            validate_params(reg, config.features.get(name, {}), where=f"{where}: features.{name}")
        )
        for name, reg in registered.items()
    }
    plan = AuditPlan(loader, subject, spec, baselines, detectors, mitigators, reporters, features)
    if config.profiles.enabled:
        plan.profile_generators = _profile_generators(config, host, subject, where, base)
    return plan


def _profile_generators(
    config: AuditConfig,
    host: PluginHost,
    subject: GeneratorAdapter,
    where: str,
    base: Path | None,
) -> dict[str, GeneratorAdapter]:
    """The profile generators to compare: the configured ones, or by default the subject (if
    it writes text) and the reference writer the config names."""
    configured = config.profiles.generators
    generators: dict[str, GeneratorAdapter] = {}
    if configured is None:
        if subject.supports("generate"):
            generators[config.subject.label] = subject
        reference = config.profiles.reference_writer
        if reference is not None and host.registry.has("adapter", reference):
            reg = host.get("adapter", reference)
            generators.setdefault(reference, reg.cls())
        return generators
    for i, gen in enumerate(configured):
        if gen.adapter == config.subject.adapter and gen.params == config.subject.params:
            generators[gen.label] = subject
            continue
        reg = host.get("adapter", gen.adapter)
        params = _validate(
            reg, gen.params, where=f"{where}: profiles.generators[{i}].params", base_dir=base
        )
        adapter = reg.cls(params)
        if not adapter.supports("generate"):
            raise ConfigError(
                f"{where}: profiles.generators[{i}]: adapter {gen.adapter!r} cannot generate "
                "text (it lacks the 'generate' capability)."
            )
        generators[gen.label] = adapter
    return generators
