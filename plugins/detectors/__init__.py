"""Built-in bias detectors, each registered through the audit_sdk entry-point group."""
