"""Built-in bias detectors (installed as ``audit_sdk.plugins``)."""
