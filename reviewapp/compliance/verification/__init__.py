"""Compliance console: verification (a Django app of its own, label compliance_verification)."""
