"""Dependencies run one way: plugins, adapters (the embedded TinyRec included) and reporters
use the core; the core (``audit_sdk/``) never imports them, not even inside a function.
Built-ins reach the core only through the plugin registry (entry points)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "audit_sdk"
PLUGIN_PACKAGES = ("audit_sdk.adapters", "audit_sdk.plugins", "audit_sdk.reports")
# (core module, imported module) pairs that may stay; keep this empty.
ALLOWED: set[tuple[str, str]] = set()
_MODULE_PATH = re.compile(r"^audit_sdk\.(adapters|plugins|reports)(\.\w+)*(:\w+)?$")


def _module_name(path: Path) -> tuple[str, str]:
    """(module, package the module's relative imports start from)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        name = ".".join(parts[:-1])
        return name, name
    name = ".".join(parts)
    return name, name.rsplit(".", 1)[0]


def _imported(node: ast.AST, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        return [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return []


def _is_plugin_module(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in PLUGIN_PACKAGES)


def test_the_core_never_imports_plugins_adapters_or_reporters() -> None:
    found: set[tuple[str, str]] = set()
    where: list[str] = []
    for path in sorted(CORE.rglob("*.py")):
        module, package = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for name in _imported(node, package):
                if _is_plugin_module(name):
                    found.add((module, name))
                    where.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
                    break
            # import_module("audit_sdk.adapters.x") or a lazy "module:Class" table
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and _MODULE_PATH.match(node.value)
            ):
                found.add((module, node.value))
                where.append(f"{path.relative_to(ROOT)}:{node.lineno} names {node.value!r}")
    assert found <= ALLOWED, "\n".join(where)


def test_the_scan_sees_imports_of_every_form(tmp_path: Path) -> None:
    """The checker itself: absolute, from-, relative and nested imports all count."""
    source = (
        "import audit_sdk.adapters.x\n"
        "from audit_sdk.plugins import detectors\n"
        "def f():\n    from .adapters import y\n"
        "from audit_sdk import config\n"
    )
    tree = ast.parse(source)
    names = [n for node in ast.walk(tree) for n in _imported(node, "audit_sdk")]
    flagged = {n for n in names if _is_plugin_module(n)}
    assert {"audit_sdk.adapters.x", "audit_sdk.plugins", "audit_sdk.adapters"} <= flagged
    assert not _is_plugin_module("audit_sdk.config")
    assert _MODULE_PATH.match("audit_sdk.adapters.tinyrec:train_tinyrec")
