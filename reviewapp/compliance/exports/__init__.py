"""Compliance console: exports."""
