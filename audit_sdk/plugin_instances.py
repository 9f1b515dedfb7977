"""Instantiating registered plugins with validated parameters."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from audit_sdk.config import format_validation_error
from audit_sdk.errors import ConfigError
from audit_sdk.interfaces import PluginParams
from audit_sdk.plugin_registry import Registration

__all__ = ["validate_params"]


def validate_params(
    registration: Registration, params: dict[str, Any], *, where: str
) -> PluginParams:
    """Validate ``params`` against the plugin's ``Params`` model; a problem is a
    :class:`ConfigError` naming the config location, the plugin and its provider."""
    model: type[PluginParams] = registration.cls.Params
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        source = f"{where} ({registration.kind} {registration.name!r}, {registration.provider})"
        raise ConfigError(format_validation_error(exc, source=source, model=model)) from None
