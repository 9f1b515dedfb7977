"""The registry that plugins register into: validated names, no silent collisions."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from audit_sdk.errors import DuplicatePluginError, PluginLoadError, UnknownPluginError
from audit_sdk.interfaces import (
    DatasetLoader,
    Detector,
    GeneratorAdapter,
    Mitigator,
    Reporter,
    UserFeature,
)
from audit_sdk.plugin_commands import PluginCommand

__all__ = ["HOOK_FOR_KIND", "KINDS", "Kind", "PluginRegistry", "Registration"]

Kind = Literal[
    "adapter", "detector", "mitigator", "reporter", "dataset_loader", "feature", "command"
]
KINDS: tuple[Kind, ...] = get_args(Kind)

BASE_FOR_KIND: dict[Kind, type] = {
    "adapter": GeneratorAdapter,
    "detector": Detector,
    "mitigator": Mitigator,
    "reporter": Reporter,
    "dataset_loader": DatasetLoader,
    "feature": UserFeature,
    "command": PluginCommand,
}
HOOK_FOR_KIND: dict[Kind, str] = {
    "adapter": "audit_sdk_register_adapters",
    "detector": "audit_sdk_register_detectors",
    "mitigator": "audit_sdk_register_mitigators",
    "reporter": "audit_sdk_register_reporters",
    "dataset_loader": "audit_sdk_register_dataset_loaders",
    "feature": "audit_sdk_register_features",
    "command": "audit_sdk_register_commands",
}
_NAME = re.compile(r"^[a-z][a-z0-9_.\-]*$")


@dataclass(frozen=True)
class Registration:
    kind: Kind
    name: str
    cls: type[Any]
    plugin: str
    distribution: str | None
    version: str | None

    @property
    def provider(self) -> str:
        dist = (
            f" from {self.distribution} {self.version or ''}".rstrip() if self.distribution else ""
        )
        return f"plugin {self.plugin!r}{dist}"

    @property
    def summary(self) -> str:
        """The first line of the class's ``description``."""
        lines = str(getattr(self.cls, "description", "") or "").strip().splitlines()
        return lines[0] if lines else ""


class PluginRegistry:
    def __init__(self) -> None:
        self._entries: dict[Kind, dict[str, Registration]] = {kind: {} for kind in KINDS}

    def make_register(
        self,
        kind: Kind,
        *,
        plugin: str,
        distribution: str | None = None,
        version: str | None = None,
        blocked: frozenset[str] = frozenset(),
    ) -> Callable[[type[Any]], None]:
        """The ``register`` callback handed to one plugin's registration hook."""
        base = BASE_FOR_KIND[kind]

        def register(cls: type[Any], /) -> None:
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise PluginLoadError(
                    f"plugin {plugin!r} registered {cls!r} as a {kind}, but it is not a subclass "
                    f"of audit_sdk.interfaces.{base.__name__}."
                )
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not _NAME.match(name):
                raise PluginLoadError(
                    f"plugin {plugin!r}: {kind} class {cls.__qualname__} needs a class attribute "
                    f"`name` of lowercase letters, digits, '_', '.' or '-' (got {name!r})."
                )
            if name in blocked:
                return
            existing = self._entries[kind].get(name)
            new = Registration(kind, name, cls, plugin, distribution, version)
            if existing is not None:
                if existing.cls is cls:
                    return
                raise DuplicatePluginError(
                    f"{kind} {name!r} is registered twice: by {existing.provider} "
                    f"({existing.cls.__module__}.{existing.cls.__qualname__}) and by "
                    f"{new.provider} ({cls.__module__}.{cls.__qualname__}). "
                    f"Block one of them (plugins.block in the config, or "
                    f"AUDIT_SDK_BLOCK_PLUGINS={new.plugin})."
                )
            self._entries[kind][name] = new

        return register

    def get(self, kind: Kind, name: str) -> Registration:
        try:
            return self._entries[kind][name]
        except KeyError:
            available = sorted(self._entries[kind])
            close = difflib.get_close_matches(name, available, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownPluginError(
                f"no {kind.replace('_', ' ')} named {name!r} is registered.{hint} "
                f"Available: {', '.join(available) or 'none'}. "
                f"Run `audit-sdk plugins` to see what is installed."
            ) from None

    def names(self, kind: Kind) -> list[str]:
        return sorted(self._entries[kind])

    def has(self, kind: Kind, name: str) -> bool:
        return name in self._entries[kind]

    def all(self) -> list[Registration]:
        return [reg for kind in KINDS for reg in self._entries[kind].values()]

    def remove_plugin(self, plugin: str) -> None:
        for kind in KINDS:
            for name in [n for n, r in self._entries[kind].items() if r.plugin == plugin]:
                del self._entries[kind][name]
