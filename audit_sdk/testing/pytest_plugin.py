"""pytest fixtures for plugin authors, registered through the ``pytest11`` entry point."""

from __future__ import annotations

import pytest

from audit_sdk.interfaces import AuditContext
from audit_sdk.plugin_host import PluginHost
from audit_sdk.testing import make_context, make_host


@pytest.fixture
def audit_plugin_host() -> PluginHost:
    """A fresh host with audit-sdk's built-in plugins and no third-party autoload."""
    return make_host()


@pytest.fixture(scope="session")
def audit_context() -> AuditContext:
    """A real audit context on a small synthetic world (item-kNN subject)."""
    return make_context()
