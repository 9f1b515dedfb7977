"""The audit config: pydantic models for an audit file (YAML or TOML).

``audit-sdk schema`` prints the JSON Schema of :class:`AuditConfig`. Plugin parameters
(``dataset.params``, ``subject.params``, ``detectors[].params``...) are validated against the
plugin's own ``Params`` model once plugins are loaded, with errors that name the plugin.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from audit_sdk.config_files import (
    MAX_DOCUMENT_BYTES,
    MAX_DOCUMENT_NODES,
    _read_config_data,
    load_yaml_document,
    read_document_text,
)
from audit_sdk.errors import AuditSDKError, ConfigError
from audit_sdk.thresholds import Threshold

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_DOCUMENT_NODES",
    "AuditConfig",
    "DatasetConfig",
    "DetectorConfig",
    "ExecutionConfig",
    "GroupsConfig",
    "MitigatorConfig",
    "ModelRoleConfig",
    "OutputsConfig",
    "PluginsConfig",
    "ProfileGeneratorConfig",
    "ProfilesConfig",
    "SamplingConfig",
    "SplitConfig",
    "StatsConfig",
    "SubjectConfig",
    "config_sha256",
    "format_validation_error",
    "load_config",
    "load_yaml_document",
    "parse_config",
    "read_document_text",
]

DerivedGroup = Literal["age_bucket", "activity", "mainstreamness", "taste_breadth"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class DatasetConfig(_Section):
    loader: str = Field(
        "synthetic",
        description="dataset loader plugin: 'synthetic', 'hetrec_lastfm_2k', 'tabular', ...",
    )
    params: dict[str, Any] = Field(default_factory=dict, description="the loader's parameters")


class SplitConfig(_Section):
    strategy: Literal["auto", "time", "random"] = Field(
        "auto", description="'auto' holds out the latest items where timestamps exist, else random"
    )
    test_items: int = Field(5, ge=1, description="held-out items per user")
    min_train_items: int = Field(
        5, ge=1, description="users with fewer training items are left out"
    )


class SamplingConfig(_Section):
    min_play_seconds: float | None = Field(
        30.0, ge=0, description="keep streams longer than this where durations exist (None: all)"
    )
    windows: list[int] = Field(
        default_factory=lambda: [30, 90, 180, 365],
        description="time windows, in days before the reference date, for profile sampling",
    )
    reference_date: date | None = Field(
        None, description="end of every window; default: the latest event in the data"
    )
    top_artists: int = Field(5, ge=1, description="two-step sampler: artists per user")
    tracks_per_artist: int = Field(3, ge=1, description="two-step sampler: tracks per artist")
    max_users: int | None = Field(
        None, ge=1, description="audit a seeded random subset of this many users"
    )

    @field_validator("windows")
    @classmethod
    def _positive_windows(cls, value: list[int]) -> list[int]:
        if not value or any(v <= 0 for v in value):
            raise ValueError("windows must be a non-empty list of positive day counts")
        return sorted(set(value))

    @property
    def sample_size(self) -> int:
        return self.top_artists * self.tracks_per_artist


class SubjectConfig(_Section):
    name: str | None = Field(None, description="label in reports; default: the adapter name")
    adapter: str = Field("item_knn", description="generator adapter plugin")
    params: dict[str, Any] = Field(default_factory=dict)
    k: int = Field(10, ge=1, le=1000, description="length of recommendation lists")
    temperature: float = Field(
        0.0, ge=0.0, le=5.0, description="sampling temperature when recommendations are generated"
    )
    max_new_tokens: int = Field(
        256, ge=1, le=8192, description="answer length when recommendations are generated"
    )
    timeout_s: float | None = Field(
        None,
        gt=0,
        description=(
            "time limit, in seconds, for each call to a model: fitting, recommending, and each "
            "batch of generated text (None: no limit)"
        ),
    )

    @property
    def label(self) -> str:
        return self.name or self.adapter


class ProfileGeneratorConfig(_Section):
    name: str | None = Field(None, description="label in reports; default: the adapter name")
    adapter: str
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.adapter


class ProfilesConfig(_Section):
    """Taste profiles written from each user's two-step sample, per time window."""

    enabled: bool = Field(False, description="generate and audit taste profiles")
    generators: list[ProfileGeneratorConfig] | None = Field(
        None,
        description=(
            "profile generators to compare; default: the subject (if it can generate text) "
            "and the template writer as a reference"
        ),
    )
    reference_writer: str | None = Field(
        "template_writer",
        description=(
            "adapter that writes reference profiles beside the subject's when no generators "
            "are listed (null: none)"
        ),
    )
    template: str | None = Field(None, description="path to a jinja2 profile prompt template")
    temperature: float = Field(0.8, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(96, ge=1, le=4096)
    max_users: int | None = Field(
        300, ge=1, description="profile a seeded random subset of this many audited users"
    )
    batch_size: int = Field(16, ge=1)
    cache: str | None = Field(
        "auto",
        description="SQLite generation cache: a path, 'auto' (the user cache folder) or null",
    )


class GroupsConfig(_Section):
    attributes: list[str] | None = Field(
        None,
        description=(
            "user attributes (columns of the users table, or derived groups) to audit by; "
            "default: every column of the users table (age as age_bucket)"
        ),
    )
    derived: list[DerivedGroup] = Field(
        default_factory=lambda: ["age_bucket", "activity", "mainstreamness"],  # type: ignore[arg-type]
        description="groups the SDK derives from the data",
    )
    intersections: list[list[str]] = Field(
        default_factory=list, description="pairs (or more) of attributes audited jointly"
    )
    age_bins: list[int] = Field(
        default_factory=lambda: [25, 35, 45, 55], description="left edges of age buckets"
    )
    min_group_size: int = Field(30, ge=2, description="groups smaller than this get a warning")
    max_levels: int = Field(
        12, ge=2, description="keep the largest groups of an attribute, pool the rest as 'other'"
    )


class DetectorConfig(_Section):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    thresholds: dict[str, Threshold] = Field(
        default_factory=dict, description="per metric (a trailing * matches a prefix)"
    )
    timeout_s: float = Field(600.0, gt=0)


class MitigatorConfig(_Section):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float = Field(1800.0, gt=0)


Format = str


class OutputsConfig(_Section):
    dir: Path = Path("audit-reports")
    formats: list[Format] = Field(default_factory=lambda: ["json", "html", "junit", "markdown"])


class PluginsConfig(_Section):
    allow: list[str] | None = Field(
        None, description="load only these plugins (entry-point names); built-ins included"
    )
    block: list[str] = Field(default_factory=list, description="never load these plugins")
    autoload: bool = Field(True, description="load third-party plugins found through entry points")
    strict: bool = Field(False, description="a plugin that fails to import is fatal")


class ModelRoleConfig(_Section):
    """An auxiliary model a detector or mitigator asks for by role (``context.models.get``)."""

    adapter: str = Field(description="generator adapter plugin that serves this role")
    params: dict[str, Any] = Field(default_factory=dict, description="the adapter's parameters")


class ExecutionConfig(_Section):
    """Where the work of an audit runs; every backend gives the same report."""

    backend: Literal["local", "process", "ray"] = Field(
        "local",
        description="executor: 'local' (this process), 'process' (a pool of worker processes "
        "on this machine) or 'ray' (actors on a Ray cluster; pip install 'audit-sdk[ray]')",
    )
    max_memory: str | None = Field(
        None,
        description="memory the audit may use, e.g. '4GB'; chunk sizes follow it (None: no cap)",
    )
    workers: int | None = Field(
        None, ge=1, description="worker processes or Ray actors (default: the CPUs, up to 8)"
    )
    address: str | None = Field(
        None,
        description="ray: a running cluster ('host:6379', 'ray://host:10001' or 'auto'); "
        "unset starts a local one",
    )
    worker_cpus: float = Field(1.0, gt=0, description="ray: CPUs each worker actor reserves")
    worker_gpus: float = Field(
        0.0, ge=0, description="ray: GPUs each worker actor reserves (1: one model per GPU)"
    )
    max_retries: int = Field(
        2, ge=0, le=20, description="times a shard is retried after its worker died"
    )

    @field_validator("address")
    @classmethod
    def _address_not_empty(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("address is empty; give 'host:port', 'ray://host:port' or 'auto'")
        return value

    @model_validator(mode="after")
    def _settings_fit_backend(self) -> ExecutionConfig:
        if self.address is not None and self.backend != "ray":
            raise ValueError(
                f"address is a Ray cluster's; it needs backend: ray (backend is {self.backend!r})"
            )
        return self


class StatsConfig(_Section):
    bootstrap_resamples: int = Field(1000, ge=50, le=100_000)
    confidence: float = Field(0.95, gt=0.5, lt=1.0)


def _default_detectors() -> list[DetectorConfig]:
    return [
        DetectorConfig(name="baseline_comparison"),
        DetectorConfig(name="group_fairness"),
        DetectorConfig(name="popularity_bias"),
        DetectorConfig(name="profile_fidelity"),
        DetectorConfig(name="causal_effects"),
    ]


class AuditConfig(_Section):
    """An audit: what data, what subject, which detectors, where to write."""

    _source_dir: Path | None = PrivateAttr(default=None)

    @property
    def source_dir(self) -> Path | None:
        """The folder of the file this config was read from: relative path parameters of every
        plugin resolve against it (None for a config built in code: the working directory)."""
        return self._source_dir

    title: str = "audit-sdk report"
    seed: int = 0
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    subject: SubjectConfig = Field(default_factory=SubjectConfig)
    baselines: list[str] = Field(
        default_factory=lambda: ["popularity", "item_knn"],
        description="reference recommenders every report compares the subject against",
    )
    groups: GroupsConfig = Field(default_factory=GroupsConfig)
    profiles: ProfilesConfig = Field(default_factory=ProfilesConfig)
    detectors: list[DetectorConfig] = Field(default_factory=_default_detectors)
    mitigators: list[MitigatorConfig] = Field(default_factory=list)
    outputs: OutputsConfig = Field(default_factory=OutputsConfig)
    plugins: PluginsConfig = Field(default_factory=PluginsConfig)
    stats: StatsConfig = Field(default_factory=StatsConfig)
    models: dict[str, ModelRoleConfig] = Field(
        default_factory=dict,
        description="auxiliary models by role (e.g. 'embedder', 'scorer'), served lazily",
    )
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    features: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="parameters of registered user features by name, e.g. "
        "gs_score: {dimensions: 32, min_items: 3}",
    )


def format_validation_error(exc: ValidationError, *, source: str, model: type[BaseModel]) -> str:
    """One readable message per problem: field path, value given, what is allowed."""
    lines = [f"{source}: {exc.error_count()} problem(s):"]
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"]) or "(top level)"
        given = error.get("input")
        if error["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, error["loc"][:-1])
            hint = ""
            if allowed:
                close = difflib.get_close_matches(str(error["loc"][-1]), allowed, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                hint += f" Allowed: {', '.join(sorted(allowed))}."
            lines.append(f"  - {loc}: unknown field.{hint}")
            continue
        shown = json.dumps(given, default=str) if given is not None else "nothing"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        lines.append(f"  - {loc} = {shown}: {error['msg']}.")
    return "\n".join(lines)


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = _innermost_model(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _innermost_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _innermost_model(arg)
        if found is not None:
            return found
    return None


M = TypeVar("M", bound=BaseModel)


def validate_document(
    model: type[M],
    data: Any,
    *,
    source: str,
    error: type[AuditSDKError],
    expected: str,
) -> M:
    """Validate a parsed YAML/TOML document (empty means all defaults); any problem is one
    ``error`` whose message names the source and every field at fault."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(
            f"{source}: the top level must be a mapping of {expected}, not {type(data).__name__}."
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(format_validation_error(exc, source=source, model=model)) from None


def parse_config(data: Any, *, source: str = "<config>") -> AuditConfig:
    return validate_document(
        AuditConfig,
        data,
        source=source,
        error=ConfigError,
        expected="sections (dataset, subject, ...)",
    )


def load_config(path: str | Path) -> AuditConfig:
    """Read and validate an audit file; relative paths in it resolve against its folder."""
    path = Path(path)
    config = parse_config(_read_config_data(path), source=str(path))
    config = _resolve_paths(config, path.parent)
    config._source_dir = path.parent.resolve()
    return config


def _resolve_path(value: str, base: Path) -> str:
    value = os.path.expanduser(os.path.expandvars(value))
    if "$" not in value and not Path(value).is_absolute():
        value = str((base / value).resolve())
    return value


def _resolve_paths(config: AuditConfig, base: Path) -> AuditConfig:
    """Expand ``$VARS`` and ``~`` in the config's own file settings and make relative ones
    relative to the config file's folder. Plugin parameters are resolved by their type when
    the plugins are made (:mod:`audit_sdk.plugin_instances`), against the same folder."""
    profiles = config.profiles
    updates: dict[str, Any] = {}
    if profiles.template:
        updates["template"] = _resolve_path(profiles.template, base)
    if profiles.cache and profiles.cache != "auto":
        updates["cache"] = _resolve_path(profiles.cache, base)
    outputs = config.outputs.model_copy(update={"dir": _expand_outputs_dir(config.outputs.dir)})
    return config.model_copy(
        update={
            "profiles": profiles.model_copy(update=updates),
            "outputs": outputs,
        }
    )


def _expand_outputs_dir(value: Path) -> Path:
    """``outputs.dir`` with ``$VAR``/``${VAR}`` and ``~`` expanded; an unset variable is an error
    (the reports would otherwise land in a folder literally named ``${VAR}``)."""
    text = str(value)
    expanded = os.path.expanduser(os.path.expandvars(text))
    if "$" in expanded:
        missing = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expanded)
        raise ConfigError(
            f"outputs.dir = {text!r}: the environment variable "
            f"{', '.join(missing) or expanded!r} is not set; set it or write the folder out."
        )
    return Path(expanded)


def config_sha256(config: AuditConfig) -> str:
    canonical = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
