from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["NoParams", "PluginParams"]


class PluginParams(BaseModel):
    """Base class for a plugin's parameters: unknown keys are an error, not silence."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class NoParams(PluginParams):
    """A plugin without parameters."""
