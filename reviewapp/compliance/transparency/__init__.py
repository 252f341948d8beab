"""Compliance console: transparency."""
