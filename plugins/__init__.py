"""Built-in plugins: detectors and mitigators (installed as ``audit_sdk.plugins``)."""
