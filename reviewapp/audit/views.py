from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from .actions import AuditAction
from .models import AuditEvent
from .selectors import events_for_listing, latest_checkpoint, unsequenced_events


@login_required
@permission_required("audit.view_auditevent", raise_exception=True)
@require_safe
def event_list(request):
    filters = {key: request.GET.get(key, "").strip() for key in ("action", "actor", "target_type", "target_id")}
    page = Paginator(events_for_listing(**filters), 50).get_page(request.GET.get("page"))
    query = urlencode({key: value for key, value in filters.items() if value})
    return render(request, "audit/events.html", {
        "page": page, "filters": filters, "query": query, "actions": AuditAction.choices,
        "checkpoint": latest_checkpoint(), "stale": unsequenced_events(),
    })


@login_required
@permission_required("audit.view_auditevent", raise_exception=True)
@require_safe
def event_detail(request, pk: int):
    # By id, not seq: an event is viewable before the sequencer has given it its place in the chain.
    event = get_object_or_404(AuditEvent, pk=pk)
    return render(request, "audit/event.html", {"event": event})
