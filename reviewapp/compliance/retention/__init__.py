"""Compliance console: retention (a Django app of its own, label compliance_retention)."""
