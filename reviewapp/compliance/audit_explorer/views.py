"""The audit explorer's pages (GET only): the filtered trail, and one event with what it names."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from reviewapp.audit.models import AuditEvent

from ..home import CONSOLE_PERMISSION
from ..links import target_label, target_url, target_urls
from .forms import EventFilterForm
from .selectors import SEARCH_TIMEOUT_MS, SearchTooSlow, chain_neighbours, events_page, named_in


@require_GET
@login_required
@permission_required(CONSOLE_PERMISSION, raise_exception=True)
def audit_events(request):
    form = EventFilterForm(request.GET)
    if not form.is_valid():
        return render(request, "compliance/audit/events.html", {"form": form, "events": []}, status=400)
    too_slow = False
    try:
        page = events_page(form.filters(), before=form.cleaned_data["before"])
    except SearchTooSlow:
        page, too_slow = None, True
    events = page.events if page else []
    links = target_urls((event.target_type, event.target_id) for event in events)
    for event in events:
        event.target_link = links.get((event.target_type, event.target_id))
        event.target_label = target_label(event.target_type, event.target_id)
    query = urlencode({key: value for key, value in request.GET.items() if key != "before" and value})
    within = form.cleaned_data["within"]
    return render(request, "compliance/audit/events.html", {
        "form": form, "page": page, "events": events, "query": query, "too_slow": too_slow, "within": within,
        "within_link": target_url(within.target_type, str(within.target_id)) if within else None,
        "timeout_seconds": SEARCH_TIMEOUT_MS // 1000,
    })


@require_GET
@login_required
@permission_required(CONSOLE_PERMISSION, raise_exception=True)
def audit_event(request, pk: int):
    # By id, not seq: an event is viewable before the sequencer has given it its place in the chain.
    event = get_object_or_404(AuditEvent, pk=pk)
    named, more = named_in(event)
    links = target_urls((item.target_type, item.target_id) for item in named)
    return render(request, "compliance/audit/event.html", {
        "event": event, "neighbours": chain_neighbours(event),
        "named": [(item, target_label(item.target_type, item.target_id), links.get((item.target_type, item.target_id)))
                  for item in named],
        "more_named": more, "target_link": links.get((event.target_type, event.target_id)),
        "target_label": target_label(event.target_type, event.target_id),
        "raw": json.dumps(event.data, indent=2, sort_keys=True, ensure_ascii=False),
    })
