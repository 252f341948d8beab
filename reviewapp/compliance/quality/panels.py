"""The quality panel of the console home: open calibration alerts (the banner), second looks waiting, agreement."""

from __future__ import annotations

from .models import SecondLook
from .selectors import agreement_overall, open_alerts


def quality_panel(user) -> dict:
    return {"template": "compliance/quality/_panel.html", "alerts": open_alerts(),
            "pending": SecondLook.objects.filter(reviewed_at__isnull=True).count(), "overall": agreement_overall()}
