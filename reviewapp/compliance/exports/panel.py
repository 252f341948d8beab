"""The console home's exports panel: a download link per dataset and format, over the last 30 days."""

from __future__ import annotations

from .selectors import DATASETS, FORMATS


def exports_panel(user) -> dict:
    return {"template": "compliance/exports/_panel.html",
            "datasets": [(dataset, [(fmt, f"compliance:export-{dataset.slug}-{fmt}") for fmt in FORMATS])
                         for dataset in DATASETS.values()]}
