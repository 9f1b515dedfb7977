"""Serve audit-sdk models over HTTP: :mod:`audit_sdk.serving.openai_server` is an
OpenAI-compatible API on the loopback interface (``audit-sdk serve``)."""
