"""Instantiating registered plugins with validated parameters.

Path parameters are found by type, not by name: a field annotated :class:`pathlib.Path` (or
``Annotated[str, PathParam()]``, optionally inside ``Optional`` or a list) has ``~`` and
``$VARS`` expanded and, when relative, is resolved against the config file's folder.
"""

from __future__ import annotations

import os
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import ValidationError

from audit_sdk.config import format_validation_error
from audit_sdk.errors import ConfigError
from audit_sdk.interfaces import PluginParams
from audit_sdk.interfaces._params import PathParam
from audit_sdk.plugin_registry import Registration

__all__ = ["path_fields", "resolve_path", "validate_params"]


def _is_path(annotation: Any) -> tuple[bool, bool]:
    """(is a path, is a list of paths) for a field annotation."""
    if annotation is Path:
        return True, False
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        if any(isinstance(e, PathParam) for e in extra):
            return True, False
        return _is_path(base)
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            if arg is not type(None):
                found = _is_path(arg)
                if found[0]:
                    return found
        return False, False
    if origin in (list, tuple, typing.Sequence):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        if args and _is_path(args[0])[0]:
            return True, True
    return False, False


def path_fields(model: type[PluginParams]) -> dict[str, bool]:
    """Field name -> whether it holds a list, for every path field of ``model``."""
    out = {}
    hints = typing.get_type_hints(model, include_extras=True)
    for name in model.model_fields:
        is_path, is_list = _is_path(hints.get(name))
        if is_path:
            out[name] = is_list
    return out


def resolve_path(value: str, base: Path | None) -> str:
    value = os.path.expanduser(os.path.expandvars(value))
    if base is not None and "$" not in value and not Path(value).is_absolute():
        value = str((base / value).resolve())
    return value


def _resolve(
    model: type[PluginParams], params: dict[str, Any], base: Path | None
) -> dict[str, Any]:
    out = dict(params)
    for name, is_list in path_fields(model).items():
        value = out.get(name)
        if is_list and isinstance(value, list):
            out[name] = [resolve_path(v, base) if isinstance(v, str) and v else v for v in value]
        elif isinstance(value, str) and value:
            out[name] = resolve_path(value, base)
    return out


def validate_params(
    registration: Registration,
    params: dict[str, Any],
    *,
    where: str,
    base_dir: Path | None = None,
) -> PluginParams:
    """Validate ``params`` against the plugin's ``Params`` model (path fields resolved against
    ``base_dir``); a problem is a :class:`ConfigError` naming the config location, the plugin
    and its provider."""
    model: type[PluginParams] = registration.cls.Params
    try:
        return model.model_validate(_resolve(model, params, base_dir))
    except ValidationError as exc:
        source = f"{where} ({registration.kind} {registration.name!r}, {registration.provider})"
        raise ConfigError(format_validation_error(exc, source=source, model=model)) from None
