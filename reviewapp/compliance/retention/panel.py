"""The console home's retention panel: the last purge and the last dry run, with a link to the page."""

from __future__ import annotations

from .selectors import last_run


def retention_panel(user) -> dict:
    return {"template": "compliance/retention/_panel.html", "purge": last_run(dry_run=False),
            "dry_run": last_run(dry_run=True)}
