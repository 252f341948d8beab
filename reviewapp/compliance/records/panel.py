"""The console home's records panel: the way into the decision register (no count: it would scan every decision)."""

from __future__ import annotations


def records_panel(user) -> dict:
    return {"template": "compliance/records/_panel.html"}
