"""The OpenAI HTTP adapter's transport: httpx connections whose reads, writes and connects
honour :func:`audit_sdk.deadlines.deadline`, and whether the current deadline is spent.
"""

from __future__ import annotations

from typing import Any

from audit_sdk.deadlines import DeadlineNetworkBackend, remaining_s


def _deadline_spent() -> bool:
    left = remaining_s()
    return left is not None and left <= 0


def _deadline_transport(httpx_module: Any, limits: Any) -> Any:
    """An HTTP transport whose connections honour :func:`audit_sdk.deadlines.deadline`."""
    import httpcore

    transport = httpx_module.HTTPTransport(limits=limits)
    pool = getattr(transport, "_pool", None)
    if isinstance(pool, httpcore.ConnectionPool):
        transport._pool = httpcore.ConnectionPool(
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=DeadlineNetworkBackend(),  # type: ignore[arg-type]
        )
    return transport
