"""Feature-ablation attribution (FAA) sharded by user over the audit's executor.

:func:`attribute_sharded` cuts the prompts, in the order given, into shards of ``shard_size``
users (the same cut on every backend, the local one included: the engine batches sequences
across prompts, so the cut is what keeps the floating-point sums, and the report, identical
whatever the backend and the number of workers). Each shard is one
:func:`audit_sdk.attribution.attribute` call; on a distributed backend it runs on a worker that
holds the model (an :class:`~audit_sdk.services.AdapterResource`, loaded once per worker), and
the shards' attributions are joined back in prompt order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from audit_sdk.execution import Shard, current_executor
from audit_sdk.execution_models import AdapterResource

if TYPE_CHECKING:
    from audit_sdk.attribution import AttributionResult, SpannedPrompt
    from audit_sdk.data.tables import Dataset
    from audit_sdk.interfaces.adapter import GeneratorAdapter
    from audit_sdk.interfaces.context import AuditContext
    from audit_sdk.plugin_host import PluginSettings

__all__ = ["DEFAULT_SHARD_SIZE", "attribute_sharded", "attribute_subject"]

DEFAULT_SHARD_SIZE = 16
"""users per attribution shard (the detector samples 64 users by default: 4 shards)"""


def _attribute_shard(model: GeneratorAdapter, payload: tuple[Any, ...]) -> AttributionResult:
    from audit_sdk.attribution import attribute

    prompts, targets, options = payload
    return attribute(model, prompts, targets, **options)


def attribute_sharded(
    model: GeneratorAdapter,
    prompts: Sequence[SpannedPrompt],
    targets: Sequence[str],
    *,
    shard_size: int = DEFAULT_SHARD_SIZE,
    settings: PluginSettings | None = None,
    fitted_on: Dataset | None = None,
    **options: Any,
) -> AttributionResult:
    """:func:`~audit_sdk.attribution.attribute` of every prompt, ``shard_size`` users a shard.

    :param settings: plugin settings a worker re-creates a registered adapter with (else the
        adapter is pickled whole); :param fitted_on: the split the driver's adapter was fitted
        to, so a worker's copy is fitted the same way. Other keywords go to ``attribute``.
    """
    from audit_sdk.attribution import AttributionResult

    if shard_size < 1:
        raise ValueError("shard_size must be at least 1")
    prompts, targets = list(prompts), list(targets)
    cuts = range(0, max(len(prompts), 1), shard_size)
    payloads = [(prompts[i : i + shard_size], targets[i : i + shard_size], options) for i in cuts]
    executor = current_executor()
    if not executor.distributed:
        parts = [_attribute_shard(model, payload) for payload in payloads]
    else:
        resource = AdapterResource(model, settings=settings, fitted_on=fitted_on)
        shards = [Shard(_attribute_shard, p, "attribute", model.name) for p in payloads]
        parts = []
        for record in executor.map_shards(shards, resource=resource):
            if record.error is not None:
                raise record.error  # as the local call would have raised it
            assert isinstance(record.result, AttributionResult)
            parts.append(record.result)
    return AttributionResult(
        tuple(p for part in parts for p in part.prompts),
        parts[0].baseline,
        parts[0].engine,
        tuple(dict.fromkeys(note for part in parts for note in part.notes)),
    )


def attribute_subject(
    context: AuditContext,
    prompts: Sequence[SpannedPrompt],
    targets: Sequence[str],
    **options: Any,
) -> AttributionResult:
    """:func:`attribute_sharded` with the audit's subject: a worker re-creates it from the
    subject's spec and fits it to the same training split."""
    model = context.adapter
    if model is None:
        raise ValueError("the audit's subject has no live adapter")
    handle = context.services.subject if context.services is not None else None
    return attribute_sharded(
        model,
        prompts,
        targets,
        settings=handle.settings if handle is not None else None,
        fitted_on=handle.train if handle is not None else None,
        **options,
    )
