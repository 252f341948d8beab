import logging

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from reviewapp.audit.selectors import latest_checkpoint
from reviewapp.people.navigation import items_for

from .health import broker_state, database_state

log = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request):
    """200 when the database and the broker both answer; 503 naming what is down."""
    problems = {name: state for name, state in (("database", database_state()), ("broker", broker_state()))
                if state is not None}
    body = {
        "status": "ok" if not problems else "unavailable",
        "database": "ok" if "database" not in problems else "down",
        "broker": "ok" if "broker" not in problems else "down",
    }
    if problems:
        # Only the names leave: error details (hosts, sockets) go to the log, not to anonymous callers.
        body["down"] = sorted(problems)
        for name, why in problems.items():
            log.error("healthz: %s is down: %s", name, why)
    return JsonResponse(body, status=200 if not problems else 503)


@login_required
def home(request):
    checkpoint = latest_checkpoint() if request.user.has_perm("audit.view_auditevent") else None
    return render(request, "core/home.html", {"places": items_for(request.user)[1:], "checkpoint": checkpoint})


def rate_limited(request, exception=None):
    return render(request, "core/429.html", status=429)


def not_found(request, exception=None):
    """404 in the layout the visitor knows: the holders' portal or the staff site."""
    template = "appeals/404.html" if request.path.startswith("/appeals/") else "404.html"
    return render(request, template, status=404)
