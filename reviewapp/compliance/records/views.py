"""The decision register and one decision's record (GET only, behind the console permission)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from reviewapp.cases.models import Decision

from ..home import CONSOLE_PERMISSION
from ..links import target_label, target_urls
from ..replica import reads_on_replica
from .filters import DecisionFilter
from .history import DECISION
from .selectors import TIMELINE_LIMIT, decision_record, register_page


def _before(request) -> tuple[int | None, str | None]:
    text = request.GET.get("before", "").strip()
    if not text:
        return None, None
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        return None, f"before: {text!r} is not a decision id."
    return int(text), None


@login_required
@permission_required(CONSOLE_PERMISSION, raise_exception=True)
@require_safe
@reads_on_replica
def decision_register(request):
    register = DecisionFilter(request.GET, queryset=Decision.objects.all())
    before, before_error = _before(request)
    if not register.is_valid() or before_error:
        return render(request, "compliance/records/register.html",
                      {"filter": register, "decisions": [], "before_error": before_error}, status=400)
    page = register_page(register.qs, before=before)
    query = urlencode({key: value for key, value in request.GET.items() if key != "before" and value})
    return render(request, "compliance/records/register.html",
                  {"filter": register, "page": page, "decisions": page.decisions, "query": query})


@login_required
@permission_required(CONSOLE_PERMISSION, raise_exception=True)
@require_safe
def decision_detail(request, pk: int):
    decision = get_object_or_404(Decision, pk=pk)
    record = decision_record(decision)
    links = target_urls((event.target_type, event.target_id) for event in record.timeline)
    for event in record.timeline:
        event.target_link = links.get((event.target_type, event.target_id))
        event.target_label = target_label(event.target_type, event.target_id)
    for message in record.deliveries:
        message.for_label = target_label(message.target_type, message.target_id)
    return render(request, "compliance/records/decision.html", {
        "record": record, "decision": record.decision, "timeline_limit": TIMELINE_LIMIT,
        "decision_subject": f"{DECISION}:{decision.pk}",
    })
