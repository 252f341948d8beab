from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from .handlers import REGISTRY
from .models import OutboxMessage
from .selectors import deliveries_described, messages_for_listing, state_counts

# Where each thing a delivery is about can be opened, and who may open it (a link only for those who may).
_LINKS = {
    "case": ("cases.view_case", lambda pk: reverse("review:case", args=[pk])),
    "appeal": ("appeals.view_appeal", lambda pk: reverse("appeal-review:appeal", args=[pk])),
    "statement": ("cases.view_statementofreasons", lambda pk: reverse("review:statement", args=[pk])),
    "checkpoint": ("audit.view_auditevent",
                   lambda seq: f"{reverse('audit:events')}?{urlencode({'action': 'audit.checkpoint'})}"),
}
_LINK_WORDS = {"case": "case", "appeal": "appeal", "statement": "statement", "checkpoint": "checkpoints"}


def _links(user, about) -> list[dict]:
    decision = dict(about).get("decision")
    links = []
    for kind, key in about:
        if kind in _LINKS and user.has_perm(_LINKS[kind][0]):
            label = _LINK_WORDS[kind] if kind == "checkpoint" else f"{_LINK_WORDS[kind]} {key}"
            if kind == "case" and decision:  # the decision is shown on its case's page
                label = f"decision {decision} (case {key})"
            links.append({"label": label, "url": _LINKS[kind][1](key)})
    return links


@login_required
@permission_required("outbox.view_outboxmessage", raise_exception=True)
@require_safe
def message_list(request):
    filters = {key: request.GET.get(key, "").strip() for key in ("state", "kind")}
    page = Paginator(messages_for_listing(**filters), 50).get_page(request.GET.get("page"))
    described = deliveries_described(page)
    rows = [{"message": message, "what": described[message.pk].text,
             "links": _links(request.user, described[message.pk].about)} for message in page]
    query = urlencode({key: value for key, value in filters.items() if value})
    return render(request, "outbox/messages.html", {
        "page": page, "rows": rows, "filters": filters, "query": query, "states": OutboxMessage.State.choices,
        "kinds": sorted(REGISTRY), "counts": state_counts(),
    })
