"""Report renderers and templates (installed as ``audit_sdk.reports``)."""
