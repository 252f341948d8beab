from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.shortcuts import render

from .handlers import REGISTRY
from .models import OutboxMessage
from .selectors import messages_for_listing, state_counts


@login_required
@permission_required("outbox.view_outboxmessage", raise_exception=True)
def message_list(request):
    filters = {key: request.GET.get(key, "").strip() for key in ("state", "kind")}
    page = Paginator(messages_for_listing(**filters), 50).get_page(request.GET.get("page"))
    query = urlencode({key: value for key, value in filters.items() if value})
    return render(request, "outbox/messages.html", {
        "page": page, "filters": filters, "query": query, "states": OutboxMessage.State.choices,
        "kinds": sorted(REGISTRY), "counts": state_counts(),
    })
