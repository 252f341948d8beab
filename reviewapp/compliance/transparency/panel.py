"""The console home's transparency panel: a link to the report, by default over the last 12 months."""

from __future__ import annotations

from .forms import PeriodForm


def transparency_panel(user) -> dict:
    form = PeriodForm({})
    form.is_valid()  # no input: the default period, always valid
    return {"template": "compliance/transparency/_panel.html", "period": form.period}
