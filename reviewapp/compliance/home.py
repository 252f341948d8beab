"""The console's home page: one panel per area (the last verification, the unwitnessed tail, calibration alerts…).

Each area adds its panel to PANELS: a function of the signed-in user returning the panel's context, with the
key ``template`` naming the snippet that renders it, or None when the panel has nothing to show.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import render
from django.urls import path
from django.utils.module_loading import import_string
from django.views.decorators.http import require_safe

CONSOLE_PERMISSION = "audit.view_auditevent"  # the compliance officer's; no other role reads the audit trail

# Dotted paths of the areas' panel functions, in the order the page shows them.
PANELS: tuple[str, ...] = (
    "reviewapp.compliance.records.panel.records_panel",
    "reviewapp.compliance.verification.selectors.home_panel",
    "reviewapp.compliance.access.panel.outside_this_week",
    "reviewapp.compliance.quality.panels.quality_panel",
    "reviewapp.compliance.transparency.panel.transparency_panel",
    "reviewapp.compliance.exports.panel.exports_panel",
    "reviewapp.compliance.retention.panel.retention_panel",
)


def panels_for(user) -> list[dict]:
    return [panel for panel in (import_string(name)(user) for name in PANELS) if panel]


@login_required
@permission_required(CONSOLE_PERMISSION, raise_exception=True)
@require_safe
def console_home(request):
    return render(request, "compliance/home.html", {"panels": panels_for(request.user)})


urlpatterns = [
    path("", console_home, name="home"),
]
