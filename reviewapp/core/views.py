import logging

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from reviewapp.people.navigation import items_for

from .health import health_checks
from .home import home_context

log = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request):
    """200 while everything answers and work flows; 503 naming what is down or stalled (core/health.py).

    The body lists each check ("ok", "down", "stalled" or "unknown") and, on 503, ``down`` names the
    failing parts. Only the names leave: details (hosts, ages, thresholds) go to the log.
    """
    checks = health_checks()
    failing = [check for check in checks if check.state in ("down", "stalled")]
    body = {"status": "ok" if not failing else "unavailable", **{check.name: check.state for check in checks}}
    if failing:
        body["down"] = sorted(check.name for check in failing)
    for check in checks:
        if not check.ok:
            (log.error if check in failing else log.warning)("healthz: %s is %s: %s", check.name, check.state,
                                                             check.detail)
    return JsonResponse(body, status=200 if not failing else 503)


@login_required
def home(request):
    """Each person's work by their role (core/home.py): claims, send-backs, approvals, appeals, what needs an
    admin's or compliance officer's attention, with counts and links to act on each."""
    return render(request, "core/home.html", {"places": items_for(request.user)[1:], **home_context(request.user)})


def rate_limited(request, exception=None):
    return render(request, "core/429.html", status=429)


def not_found(request, exception=None):
    """404 in the layout the visitor knows: the holders' portal or the staff site; JSON under /api/ (a path no
    route matches, such as /api/v1/appeals/1.5/, answers as the API's own 404s do, and as the schema says)."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    template = "appeals/404.html" if request.path.startswith("/appeals/") else "404.html"
    return render(request, template, status=404)
