"""Reading config and policy files: the size and YAML-alias limits, the bounded YAML (or
JSON) parser, the UTF-8 text of a file, and an audit file's YAML/TOML data.

:mod:`audit_sdk.config` (the audit file) and :mod:`audit_sdk.gate` (the policy file) read
through these; ``audit_sdk.config`` re-exports them.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from audit_sdk.errors import AuditSDKError, ConfigError

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_DOCUMENT_NODES",
    "load_yaml_document",
    "read_document_text",
]

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
MAX_DOCUMENT_NODES = 1_000_000
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _expanded_nodes(root: yaml.Node, *, source: str, error: type[AuditSDKError]) -> int:
    """How many nodes ``root`` holds once every alias is expanded (an alias counts the whole
    anchored subtree each time it is used); a recursive alias is an error."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            active.discard(key)
            children: list[yaml.Node] = []
            if isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            elif isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[key] > MAX_DOCUMENT_NODES:
                raise error(
                    f"{source}: the document expands to over {MAX_DOCUMENT_NODES:,} values "
                    "(YAML anchors and aliases used as a bomb?); write it without nesting "
                    "aliases."
                )
            continue
        if key in sizes:
            continue
        if key in active:
            raise error(f"{source}: a YAML alias refers to itself; write the value out.")
        active.add(key)
        stack.append((node, True))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((c, False) for c in node.value if id(c) not in sizes)
        elif isinstance(node, yaml.MappingNode):
            stack.extend((c, False) for pair in node.value for c in pair if id(c) not in sizes)
    return sizes[id(root)]


def load_yaml_document(text: str, *, source: str, error: type[AuditSDKError]) -> Any:
    """Parse one YAML (or JSON) document with its size and alias expansion bounded before
    anything is built or validated; every problem is one ``error`` naming ``source``."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise error(
            f"{source}: {len(text):,} characters, over the limit of {MAX_DOCUMENT_BYTES:,} for "
            "a config or policy file."
        )
    try:
        loader = _SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _expanded_nodes(node, source=source, error=error)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{source}: not valid YAML{where}: {problem}.") from None
    except RecursionError:
        raise error(f"{source}: nested too deeply to read.") from None


def read_document_text(path: Path, *, error: type[AuditSDKError], what: str) -> str:
    """The UTF-8 text of a config or policy file, at most :data:`MAX_DOCUMENT_BYTES`."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file.") from None
    except IsADirectoryError:
        raise error(f"{path}: a folder, not a {what} file.") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc}).") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise error(f"{path}: over the limit of {MAX_DOCUMENT_BYTES:,} bytes for a {what} file.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}).") from None


def _read_config_data(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix not in {".toml", ".yaml", ".yml", ".json"}:
        if not path.exists():
            raise ConfigError(f"{path}: no such config file.")
        raise ConfigError(f"{path}: unknown config format {suffix!r}; use .yaml, .yml or .toml.")
    text = read_document_text(path, error=ConfigError, what="config")
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}.") from None
    return load_yaml_document(text, source=str(path), error=ConfigError)
