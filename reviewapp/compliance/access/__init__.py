"""Compliance console: access."""
