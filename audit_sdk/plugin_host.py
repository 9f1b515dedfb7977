"""The plugin host: discovers plugins through entry points and runs their registration hooks.

Built-in plugins are listed in ``pyproject.toml`` under ``[project.entry-points.audit_sdk]``
and load exactly like a third-party package's. Users choose what loads:

=====================================  ==============================================
config ``plugins.allow`` /              load only these entry-point names
``AUDIT_SDK_PLUGINS=a,b``
config ``plugins.block`` /              never load these (entry-point names, or the name
``AUDIT_SDK_BLOCK_PLUGINS=a,b``         of a single detector/adapter/... they register)
config ``plugins.autoload: false`` /    load only audit-sdk's own plugins (and any that
``AUDIT_SDK_DISABLE_PLUGIN_AUTOLOAD=1`` ``allow`` names explicitly)
config ``plugins.strict: true`` /       a plugin that fails to import is fatal
``AUDIT_SDK_STRICT_PLUGINS=1``
``AUDIT_SDK_TRACE_PLUGINS=1``           print every hook call to stderr
=====================================  ==============================================
"""

from __future__ import annotations

import importlib.metadata as md
import os
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from audit_sdk import hookspecs
from audit_sdk.errors import AuditSDKError, PluginLoadError
from audit_sdk.plugin_registry import HOOK_FOR_KIND, KINDS, Kind, PluginRegistry, Registration
from audit_sdk.report_model import PluginRecord

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginHost",
    "PluginLoadWarning",
    "PluginSettings",
    "get_plugin_host",
    "reset_plugin_hosts",
]

ENTRY_POINT_GROUP = "audit_sdk"
OWN_DISTRIBUTION = "audit-sdk"


class PluginLoadWarning(UserWarning):
    """A plugin could not be imported or registered and was skipped."""


def _env_list(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def _env_flag(name: str) -> bool | None:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return None
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class PluginSettings:
    allow: frozenset[str] | None = None
    block: frozenset[str] = frozenset()
    autoload: bool = True
    strict: bool = False

    @classmethod
    def resolve(
        cls,
        *,
        allow: Iterable[str] | None = None,
        block: Iterable[str] = (),
        autoload: bool = True,
        strict: bool = False,
    ) -> PluginSettings:
        """Combine config values with the environment; the environment adds to block lists and
        overrides switches."""
        env_allow = _env_list("AUDIT_SDK_PLUGINS")
        env_block = _env_list("AUDIT_SDK_BLOCK_PLUGINS") or []
        env_no_autoload = _env_flag("AUDIT_SDK_DISABLE_PLUGIN_AUTOLOAD")
        env_strict = _env_flag("AUDIT_SDK_STRICT_PLUGINS")
        final_allow = env_allow if env_allow is not None else allow
        return cls(
            allow=frozenset(final_allow) if final_allow is not None else None,
            block=frozenset([*block, *env_block]),
            autoload=(not env_no_autoload) if env_no_autoload is not None else autoload,
            strict=env_strict if env_strict is not None else strict,
        )


@dataclass
class _Loaded:
    record: PluginRecord
    module: Any = None
    hooks: list[str] = field(default_factory=list)


class PluginHost:
    """Owns a pluggy PluginManager and the registry its plugins fill."""

    def __init__(self, settings: PluginSettings | None = None) -> None:
        self.settings = settings or PluginSettings()
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.registry = PluginRegistry()
        self._loaded: dict[str, _Loaded] = {}
        self._entry_points_loaded = False
        if _env_flag("AUDIT_SDK_TRACE_PLUGINS"):
            self.pm.trace.root.setwriter(sys.stderr.write)
            self.pm.enable_tracing()

    # -- loading ----------------------------------------------------------------------------
    def load_entry_points(self) -> None:
        """Import and register every allowed plugin in the ``audit_sdk`` entry-point group.
        Runs once; later calls do nothing."""
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        seen: set[str] = set()
        for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=_builtin_first):
            dist = ep.dist.name if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            if ep.name in seen:
                # The same distribution visible twice on sys.path (e.g. editable + wheel).
                continue
            seen.add(ep.name)
            record = PluginRecord(entry_point=ep.name, distribution=dist, version=version)
            if not self._wanted(ep.name, dist):
                self._loaded[ep.name] = _Loaded(record.model_copy(update={"status": "blocked"}))
                continue
            try:
                module = ep.load()
            except (Exception, SystemExit) as exc:
                # a plugin that calls sys.exit() while importing is a broken plugin, not an
                # instruction to end the audit
                self._fail(
                    record, f"could not import {ep.value!r}: {type(exc).__name__}: {exc}", exc
                )
                continue
            self.register_plugin(module, name=ep.name, distribution=dist, version=version)

    def _wanted(self, name: str, dist: str | None) -> bool:
        s = self.settings
        if name in s.block:
            return False
        if s.allow is not None:
            return name in s.allow
        return s.autoload or _normalize(dist) == OWN_DISTRIBUTION

    def _fail(self, record: PluginRecord, message: str, exc: BaseException) -> None:
        text = f"audit-sdk plugin {record.entry_point!r}"
        if record.distribution:
            text += f" (from {record.distribution} {record.version})"
        text += f" was skipped: {message}"
        self._loaded[record.entry_point] = _Loaded(
            record.model_copy(update={"status": "failed", "error": message})
        )
        if self.settings.strict:
            raise PluginLoadError(text + " (strict mode: plugin failures are fatal)") from exc
        warnings.warn(PluginLoadWarning(text), stacklevel=3)

    def register_plugin(
        self,
        plugin: ModuleType | object,
        *,
        name: str,
        distribution: str | None = None,
        version: str | None = None,
    ) -> None:
        """Register a module or object with ``@hookimpl`` functions and run its registration
        hooks. Tests and notebooks use this for inline plugins."""
        record = PluginRecord(entry_point=name, distribution=distribution, version=version)
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self._safe_unregister(name)
            self._fail(record, f"invalid hook implementation: {exc}", exc)
            return
        except ValueError as exc:  # already registered under this name
            self._fail(record, str(exc), exc)
            return
        components: dict[str, list[str]] = {}
        try:
            for kind in KINDS:
                names = self._run_registration(plugin, name, kind, distribution, version)
                if names:
                    components[kind] = names
        except AuditSDKError as exc:
            self._safe_unregister(name)
            self.registry.remove_plugin(name)
            if isinstance(exc, PluginLoadError):
                self._fail(record, str(exc), exc)
                return
            raise
        except Exception as exc:
            self._safe_unregister(name)
            self.registry.remove_plugin(name)
            self._fail(record, f"registration raised {type(exc).__name__}: {exc}", exc)
            return
        hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
        self._loaded[name] = _Loaded(
            record.model_copy(update={"components": components}), module=plugin, hooks=hooks
        )

    def unregister_plugin(self, name: str) -> None:
        self._safe_unregister(name)
        self.registry.remove_plugin(name)
        self._loaded.pop(name, None)

    def _safe_unregister(self, name: str) -> None:
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin, name=name)

    def _run_registration(
        self,
        plugin: object,
        name: str,
        kind: Kind,
        distribution: str | None,
        version: str | None,
    ) -> list[str]:
        hook_name = HOOK_FOR_KIND[kind]
        others = [p for p in self.pm.get_plugins() if p is not plugin]
        caller = self.pm.subset_hook_caller(hook_name, remove_plugins=others)
        before = set(self.registry.names(kind))
        register = self.registry.make_register(
            kind,
            plugin=name,
            distribution=distribution,
            version=version,
            blocked=self.settings.block,
        )
        caller(register=register)
        return sorted(set(self.registry.names(kind)) - before)

    # -- queries ----------------------------------------------------------------------------
    def get(self, kind: Kind, name: str) -> Registration:
        return self.registry.get(kind, name)

    def records(self) -> list[PluginRecord]:
        return [loaded.record for loaded in self._loaded.values()]

    def hooks_of(self, entry_point: str) -> list[str]:
        loaded = self._loaded.get(entry_point)
        return loaded.hooks if loaded else []


def _normalize(dist: str | None) -> str | None:
    return dist.lower().replace("_", "-") if dist else None


def _builtin_first(ep: md.EntryPoint) -> tuple[int, str]:
    dist = ep.dist.name if ep.dist is not None else None
    return (0 if _normalize(dist) == OWN_DISTRIBUTION else 1, ep.name)


_HOSTS: dict[PluginSettings, PluginHost] = {}


def get_plugin_host(settings: PluginSettings | None = None) -> PluginHost:
    """The host for ``settings``, loading entry points once per distinct settings."""
    settings = settings or PluginSettings.resolve()
    host = _HOSTS.get(settings)
    if host is None:
        host = PluginHost(settings)
        host.load_entry_points()
        _HOSTS[settings] = host
    return host


def reset_plugin_hosts() -> None:
    """Forget loaded hosts (tests; after installing a plugin in a running process)."""
    _HOSTS.clear()
