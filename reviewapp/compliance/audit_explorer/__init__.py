"""Compliance console: audit_explorer."""
