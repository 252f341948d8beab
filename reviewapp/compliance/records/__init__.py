"""Compliance console: records."""
