"""Built-in mitigators, each registered through the audit_sdk entry-point group."""
