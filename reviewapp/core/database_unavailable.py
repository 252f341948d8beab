"""While PostgreSQL cannot be reached, every request is answered 503 with ``Retry-After``, never a 500 or a hang.

"Cannot be reached" means the error says no server answered or the connection dropped: libpq gave no SQLSTATE
(refused, timed out, closed, broken), or the server said so (class 08 "connection exception", 57P01 admin
shutdown — what a fast shutdown sends to every backend, a query in progress included —, 57P02 crash shutdown,
57P03 "the database system is starting up / shutting down", 53300 too many connections). Everything else an
``OperationalError`` or ``InterfaceError`` can carry (a deadlock, a statement timeout, a cursor misused) and
every ``IntegrityError``, ``ProgrammingError`` … stays what it is: a fault of ours, answered 500 and logged.

Where the error is answered:

* raised in a view (DRF views re-raise what is not theirs): ``DatabaseUnavailableMiddleware.process_exception``.
  handler500 would answer 503 too, but only after Django treated it as an uncaught exception: a traceback
  logged as "Internal Server Error" and ``got_request_exception`` sent (what error trackers report) for every
  request of an outage. The middleware answers first, with one warning line;
* raised in a middleware (a session or a staff token read before the view, a session saved after it): Django
  turns it into a response there, through ``handler500`` (reviewapp.core.views.server_error), which asks
  ``unavailable_during`` and answers 503 itself.

The answer touches no database: JSON ``{"detail": …}`` under /api/ (the shape of the API's other errors), else
templates/503.html rendered without a request context (no session, no user, no context processor). The broken
connection is closed at once, so the next request connects afresh (and gets a 503 again in at most
``DATABASE_CONNECT_TIMEOUT_SECONDS`` while the server is still away).

A transaction the drop interrupted is rolled back by PostgreSQL: nothing of it was committed, and the service
that ran it raised (none of ours catches a database error and carries on), so the client is told 503 and may
retry the same request. Only a commit whose acknowledgement was lost on the way back can have been stored and
still be answered 503; the retry then meets the stored rows (a flag batch counts them as duplicates).
"""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.utils.cache import patch_cache_control

log = logging.getLogger(__name__)

# The server refused or dropped us: shutting down (fast: 57P01, crash: 57P02), not yet accepting (57P03, starting
# up or shutting down), out of connection slots (53300). SQLSTATE class 08 is "connection exception".
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
DETAIL = "The database is unavailable at the moment; nothing is wrong with your request. Try again shortly."
_NOTED = "_database_unavailable"


def is_database_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc`` says the database cannot be reached or the connection dropped (module docstring)."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    driver = exc.__cause__  # Django re-raises the driver's error ``from`` it
    sqlstate = getattr(driver, "sqlstate", None) or getattr(driver, "pgcode", None)
    if sqlstate:
        return sqlstate.startswith("08") or sqlstate in UNAVAILABLE_SQLSTATES
    if isinstance(exc, OperationalError) and driver is not None:
        return True  # no SQLSTATE: no server answered (refused, timed out) or it went away mid-way
    return _a_connection_is_lost()  # an InterfaceError is a misuse unless the connection under it is gone


def _a_connection_is_lost() -> bool:
    for conn in connections.all(initialized_only=True):
        raw = conn.connection
        if raw is not None and (getattr(raw, "closed", False) or getattr(raw, "broken", False)):
            return True
    return False


def close_broken_connections() -> None:
    """Close this thread's connections whose server is gone, so the next use connects again.

    (Django would close them at the end of the request too, after checking each with a query; this needs no
    query.) A connection still usable, to another database, is left alone.
    """
    for conn in connections.all(initialized_only=True):
        raw = conn.connection
        if raw is None or getattr(raw, "closed", False) or getattr(raw, "broken", False):
            try:
                conn.close()
            except Exception:  # closing a dead socket must not turn the 503 back into a 500
                log.debug("closing a broken database connection failed", exc_info=True)


def retry_after_seconds() -> int:
    return settings.DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS


def database_unavailable_response(request) -> HttpResponse:
    """The 503 answer, with ``Retry-After``; renders nothing that reads the database."""
    retry_after = retry_after_seconds()
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": DETAIL}, status=503)
    else:
        page = loader.get_template("503.html").render({"retry_after": retry_after})  # no request: no processors
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(retry_after)
    patch_cache_control(response, no_store=True)
    return response


def unavailable_during(request) -> bool:
    """For handler500: is the exception being handled (or one noted earlier in this request) the database's?"""
    return is_database_unavailable(sys.exception()) or getattr(request, _NOTED, False)


def _answer(request, exc: BaseException) -> HttpResponse:
    # One line per request, not a traceback each: during an outage every request fails the same way.
    log.warning("database unavailable: %s %s answered 503: %s: %s", request.method, request.path,
                type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "")
    close_broken_connections()
    return database_unavailable_response(request)


class DatabaseUnavailableMiddleware:
    """503 + Retry-After for a view whose database went away. Place it after ProjectErrorPagesMiddleware (its
    process_exception then runs first, as Django calls them in reverse order)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if is_database_unavailable(exception):
            return _answer(request, exception)
        return None


def note_request_exception(sender, request=None, **kwargs) -> None:
    """``got_request_exception``: an error raised in a middleware reaches handler500 (or, with DEBUG on, the
    project's error-page middleware after Django's debug page): note on the request that it was the database's,
    and close the broken connection."""
    exc = sys.exception()
    if request is not None and is_database_unavailable(exc):
        setattr(request, _NOTED, True)
        log.warning("database unavailable: %s %s: %s", request.method, request.path, type(exc).__name__)
        close_broken_connections()


def connect_signals() -> None:
    got_request_exception.connect(note_request_exception, dispatch_uid="reviewapp.core.database_unavailable")
