"""Compliance console: quality (a Django app of its own, label compliance_quality)."""
