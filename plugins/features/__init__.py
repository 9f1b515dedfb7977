"""Built-in shared user features, each registered through the audit_sdk entry-point group."""
