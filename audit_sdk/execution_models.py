"""Models as worker resources: how a distributed executor's worker gets its own copy of a
generator adapter, once, and keeps it for every later shard."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from audit_sdk.execution import WorkerResource

if TYPE_CHECKING:
    from audit_sdk.data.tables import Dataset
    from audit_sdk.interfaces.adapter import GeneratorAdapter
    from audit_sdk.plugin_host import PluginSettings

__all__ = ["AdapterResource"]


class AdapterResource(WorkerResource):
    """A generator adapter as a worker resource: a registered adapter is re-created in the
    worker from its name and validated parameters (and fitted to the same training split when
    the driver's was); any other is pickled whole. The key is the model's fingerprint and
    parameters, so a worker keeps one copy per distinct model."""

    def __init__(
        self,
        adapter: GeneratorAdapter,
        *,
        settings: PluginSettings | None,
        fitted_on: Dataset | None = None,
    ) -> None:
        digest = hashlib.sha256(adapter.params.model_dump_json().encode()).hexdigest()[:16]
        super().__init__(f"adapter:{adapter.name}:{adapter.fingerprint()}:{digest}", live=adapter)
        self.name = adapter.name
        self.params = adapter.params
        self.settings = settings
        self.fitted_on = fitted_on
        self.whole: GeneratorAdapter | None = None
        if settings is None or not _registered_as(adapter, settings):
            self.whole = adapter

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        if state["whole"] is not None:
            state["fitted_on"] = None  # pickled as fitted
        return state

    def load(self) -> GeneratorAdapter:
        if self.whole is not None:
            return self.whole
        from audit_sdk.plugin_host import get_plugin_host

        assert self.settings is not None
        adapter = get_plugin_host(self.settings).get("adapter", self.name).cls(self.params)
        if self.fitted_on is not None:
            adapter.fit(self.fitted_on)
        return adapter


def _registered_as(adapter: GeneratorAdapter, settings: PluginSettings) -> bool:
    from audit_sdk.plugin_host import get_plugin_host

    registry = get_plugin_host(settings).registry
    return registry.has("adapter", adapter.name) and (
        registry.get("adapter", adapter.name).cls is type(adapter)
    )
