import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, HttpResponseForbidden, HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import requires_csrf_token
from django.views.decorators.http import require_GET, require_safe

from reviewapp.people.navigation import items_for

from .database_unavailable import database_unavailable_response, unavailable_during
from .health import health_checks
from .home import home_context
from .metrics import METRICS_CONTENT_TYPE, metrics_access_allowed, metrics_exposition

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


@never_cache
@require_GET
def metrics(request):
    """Prometheus text exposition (core/metrics.py), to loopback or a bearer of METRICS_TOKEN; 403 to anyone else.

    Never a 500: a part that cannot be read is exposed as ``reviewapp_metrics_section_up 0``, and an error
    past that answers 503 with the same gauge, so the scrape says what failed.
    """
    if not metrics_access_allowed(request):
        return HttpResponseForbidden("Metrics are served to loopback or with the metrics token.\n",
                                     content_type="text/plain")
    try:
        return HttpResponse(metrics_exposition(), content_type=METRICS_CONTENT_TYPE)
    except Exception:
        log.exception("metrics: the exposition failed")
        return HttpResponse(b"reviewapp_metrics_up 0\n", status=503, content_type=METRICS_CONTENT_TYPE)


@login_required
@require_safe
def home(request):
    """Each person's work by their role (core/home.py): claims, send-backs, approvals, appeals, what needs an
    admin's or compliance officer's attention, with counts and links to act on each."""
    return render(request, "core/home.html", {"places": items_for(request.user)[1:], **home_context(request.user)})


def rate_limited(request, exception=None):
    return render(request, "core/429.html", status=429)


# --- The project's own error pages (handler400/403/404/500 in reviewapp/urls.py; core/error_pages.py uses them
# with DEBUG on too, and answers 413): JSON under /api/, the holders' portal layout under /appeals/, else the
# staff layout. Never the framework's debug pages, which list every URL pattern and the settings.

def _error_page(request, status: int, *, detail: str, context: dict | None = None):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": detail, **(context or {})}, status=status)
    template = f"appeals/{status}.html" if request.path.startswith("/appeals/") else f"{status}.html"
    return render(request, template, {"detail": detail, **(context or {})}, status=status)


def not_found(request, exception=None):
    """404 in the layout the visitor knows: the holders' portal or the staff site; JSON under /api/ (a path no
    route matches, such as /api/v1/appeals/1.5/, answers as the API's own 404s do, and as the schema says)."""
    return _error_page(request, 404, detail="Not found.")


def permission_denied(request, exception=None):
    return _error_page(request, 403, detail="You do not have permission to perform this action.")


def bad_request(request, exception=None):
    """400 for a request Django refuses before any view (a bad Host, too many form fields); a body over the
    size limit is 413 (request_too_large)."""
    if isinstance(exception, RequestDataTooBig):
        return request_too_large(request, exception)
    return _error_page(request, 400, detail="The request could not be understood.")


def request_too_large(request, exception=None):
    """413 naming the limit: DATA_UPLOAD_MAX_MEMORY_SIZE bytes of form fields or of a JSON body (files an
    appeal attaches count separately; the flags API has its own FLAGS_MAX_BODY_BYTES)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    mb = f"{limit / (1024 * 1024):.1f}".removesuffix(".0")
    return _error_page(request, 413, detail=f"The request body is larger than {limit} bytes ({mb} MB), the limit.",
                       context={"limit_bytes": limit, "limit_mb": mb})


@requires_csrf_token
def server_error(request):
    """500 without touching the database (it may be what failed): a page that needs no context processors.

    The database unreachable, or its connection dropped, in a middleware is 503 instead
    (core/database_unavailable.py; in a view the middleware there answers it)."""
    if unavailable_during(request):
        return database_unavailable_response(request)
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Something went wrong on our side; it is logged. Please try again."},
                            status=500)
    return HttpResponseServerError(loader.get_template("500.html").render({}))
