"""The project's own error pages in every mode, and the request-body limit answered as 413.

Django answers a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` with a 400 (its ``RequestDataTooBig`` is a
"suspicious operation"), and with ``DEBUG`` on it shows its debug pages instead of ``handler404``/``handler500``:
the 404 one lists every URL pattern, the 500 one the settings, to anyone, holders included. ``make run`` keeps
``DEBUG`` on for its conveniences (template errors with their line, static files from the source folders, the
per-checkout secret key), so this middleware, rather than DEBUG off, is what keeps the demo on our own pages:

* a body over the limit is 413 naming it (HTML, or JSON under /api/), checked before CSRF reads the form;
* with ``DEBUG`` on, a URL no route matches, and an ``Http404``, a refused request or an uncaught exception in
  a view, get the handlers of reviewapp/urls.py (the traceback still goes to the log).
  ``DEBUG_TECHNICAL_ERRORS=1`` brings Django's debug pages back on a developer's own machine.

Views that read and bound their body themselves are named in ``OWN_BODY_LIMIT_VIEWS`` (the flags API,
FLAGS_MAX_BODY_BYTES).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404

from . import views

log = logging.getLogger(__name__)
security_log = logging.getLogger("django.security")

_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _debug_pages_replaced() -> bool:
    return settings.DEBUG and not getattr(settings, "DEBUG_TECHNICAL_ERRORS", False)


class ProjectErrorPagesMiddleware:
    """Place it before CsrfViewMiddleware (its process_view must run first) and after SessionMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.own_limit_views = frozenset(getattr(settings, "OWN_BODY_LIMIT_VIEWS", ()))

    def __call__(self, request):
        response = self.get_response(request)
        # No view ran: with DEBUG on, a 404 here is Django's URL-pattern listing, a 400 or 500 its debug page of an
        # exception in a middleware (a disallowed Host, say). Those never reach process_exception.
        if request.resolver_match is None and _debug_pages_replaced():
            replace = {400: views.bad_request, 404: views.not_found, 500: views.server_error}.get(response.status_code)
            if replace is not None:
                return replace(request)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method in _NO_BODY or request.resolver_match.view_name in self.own_limit_views:
            return None
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        # Django checks this only when request.body is read (DRF reads the stream without the check). A form's
        # files are streamed to disk and do not count: its other fields do, as Django parses it.
        if request.content_type != "multipart/form-data" and declared > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return views.request_too_large(request)
        if request.method == "POST" and not getattr(view_func, "csrf_exempt", False):
            # CsrfViewMiddleware reads the form next, where a refusal would be Django's (its debug page with
            # DEBUG on): read it here instead. Views exempt from CSRF read it themselves (process_exception).
            try:
                request.POST  # noqa: B018
            except RequestDataTooBig as exc:
                return views.request_too_large(request, exc)
            except SuspiciousOperation as exc:  # too many fields, say
                security_log.error("%s: %s", type(exc).__name__, exc)
                return views.bad_request(request, exc)
        return None

    def process_exception(self, request, exception):
        if isinstance(exception, RequestDataTooBig):
            return views.request_too_large(request, exception)
        if not _debug_pages_replaced():
            return None  # Django answers with the handlers of reviewapp/urls.py
        if isinstance(exception, Http404):
            return views.not_found(request, exception)
        if isinstance(exception, SuspiciousOperation):
            security_log.error("%s: %s", type(exception).__name__, exception)
            return views.bad_request(request, exception)
        if isinstance(exception, PermissionDenied):
            return None  # Django uses handler403 whatever DEBUG says
        log.exception("Internal Server Error: %s", request.path)
        return views.server_error(request)
