"""Every plugin's parameters, where a user looks: ``audit-sdk plugins NAME`` and the config schema.

A plugin's ``Params`` (a :class:`audit_sdk.interfaces.PluginParams` model) is its parameter
documentation: :func:`parameter_docs` reads each field's type, default and description from it,
:func:`render_plugin` prints them, and :func:`config_schema` adds each installed plugin's
``Params`` schema to the audit config's JSON Schema, so an editor validates ``params:`` against
the plugin named beside it (``if name == X then params is X's``).
"""

from __future__ import annotations

import json
import re
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from audit_sdk.errors import UnknownPluginError

if TYPE_CHECKING:
    from audit_sdk.plugin_host import PluginHost
    from audit_sdk.plugin_registry import Registration

__all__ = ["ParameterDoc", "config_schema", "parameter_docs", "render_plugin"]

# config section (a $defs entry of AuditConfig's schema) -> the key naming the plugin and its kind
_SECTIONS: dict[str, tuple[str, str]] = {
    "DetectorConfig": ("name", "detector"),
    "MitigatorConfig": ("name", "mitigator"),
    "SubjectConfig": ("adapter", "adapter"),
    "ModelRoleConfig": ("adapter", "adapter"),
    "ProfileGeneratorConfig": ("adapter", "adapter"),
    "DatasetConfig": ("loader", "dataset_loader"),
}


_MODULE_PATH = re.compile(r"\b(?:[a-z_]\w*\.)+(\w+)")


@dataclass(frozen=True)
class ParameterDoc:
    """One parameter: its name, type, default (``None`` text when required) and description."""

    name: str
    type: str
    default: str | None
    required: bool
    description: str


def _type_text(annotation: Any) -> str:
    text = str(annotation) if not isinstance(annotation, type) else annotation.__name__
    text = _MODULE_PATH.sub(r"\1", text)
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_text(typing.get_args(annotation)[0]) + " (path)"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation.__name__
    return text.replace("NoneType", "None")


def parameter_docs(params: type[BaseModel]) -> list[ParameterDoc]:
    """The parameters of a ``Params`` model, in declaration order."""
    hints = typing.get_type_hints(params, include_extras=True)
    out = []
    for name, info in params.model_fields.items():
        if info.default_factory is not None:
            default: str | None = json.dumps(info.default_factory(), default=str)  # type: ignore[call-arg]
        elif info.default is PydanticUndefined:
            default = None
        else:
            default = json.dumps(info.default, default=str)
        out.append(
            ParameterDoc(
                name=name,
                type=_type_text(hints.get(name, info.annotation)),
                default=default,
                required=info.is_required(),
                description=info.description or "",
            )
        )
    return out


def _matches(host: PluginHost, name: str) -> list[Registration]:
    return [r for r in host.registry.all() if r.name == name]


def render_plugin(host: PluginHost, name: str) -> str:
    """Plain text for ``audit-sdk plugins NAME``: each plugin of that name (one per kind),
    its provider, description and parameters; an unknown name is an
    :class:`~audit_sdk.errors.UnknownPluginError` naming the installed plugins."""
    found = _matches(host, name)
    if not found:
        known = ", ".join(sorted({r.name for r in host.registry.all()}))
        raise UnknownPluginError(
            f"no plugin named {name!r}; installed: {known} (audit-sdk plugins lists them)"
        )
    blocks = []
    for r in found:
        lines = [f"{r.kind} {r.name} ({r.provider})"]
        description = str(getattr(r.cls, "description", "") or "").strip()
        if description:
            lines.append(f"  {description}")
        params = getattr(r.cls, "Params", None)
        docs = parameter_docs(params) if isinstance(params, type) else []
        if not docs:
            lines.append("  parameters: none")
        else:
            lines.append("  parameters:")
            for doc in docs:
                default = "required" if doc.required else f"default {doc.default}"
                lines.append(f"    {doc.name}: {doc.type} ({default})")
                if doc.description:
                    lines.append(f"        {doc.description}")
        thresholds = getattr(r.cls, "default_thresholds", None)
        if thresholds:
            lines.append("  default thresholds:")
            for metric, threshold in thresholds.items():
                shown = threshold.model_dump(exclude_none=True)
                lines.append(f"    {metric}: {json.dumps(shown)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def config_schema(host: PluginHost, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` (the audit config's JSON Schema) with every installed plugin's parameters: one
    ``$defs`` entry per plugin and, in each config section that names a plugin, an
    ``if name is X then params is X's schema`` rule (JSON Schema draft 2020-12)."""
    schema = json.loads(json.dumps(base))
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    by_kind: dict[str, list[Registration]] = {}
    for r in host.registry.all():
        by_kind.setdefault(r.kind, []).append(r)
    for section, (key, kind) in _SECTIONS.items():
        target = defs.get(section)
        if target is None:
            continue
        rules = []
        for r in by_kind.get(kind, []):
            params = getattr(r.cls, "Params", None)
            if not isinstance(params, type) or not issubclass(params, BaseModel):
                continue
            ref = f"{kind}.{r.name}.params"
            if ref not in defs:
                plugin_schema = params.model_json_schema(ref_template=f"#/$defs/{ref}.{{model}}")
                for sub, value in plugin_schema.pop("$defs", {}).items():
                    defs[f"{ref}.{sub}"] = value
                plugin_schema["description"] = f"parameters of {kind} {r.name!r} ({r.provider})"
                defs[ref] = plugin_schema
            rules.append(
                {
                    "if": {"properties": {key: {"const": r.name}}, "required": [key]},
                    "then": {"properties": {"params": {"$ref": f"#/$defs/{ref}"}}},
                }
            )
        if rules:
            target["allOf"] = [*target.get("allOf", []), *rules]
    return schema
