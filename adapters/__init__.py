"""Built-in generator adapters (installed as ``audit_sdk.adapters``)."""
