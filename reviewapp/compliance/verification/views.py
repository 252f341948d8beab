"""Verification pages: start a run (the console's one POST here), follow its progress, read its result."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from ..home import CONSOLE_PERMISSION
from ..links import chain_event_url
from .selectors import runs_newest_first
from .services import VERIFY_PERMISSION, verification_start

REFRESH_SECONDS = 2
RUNS_PAGE_SIZE = 20


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(CONSOLE_PERMISSION, raise_exception=True)
def verify(request):
    if request.method == "POST":
        run = verification_start(officer=request.user)  # PermissionDenied → 403 for anyone else
        return redirect("compliance:verification", pk=run.pk)
    page = Paginator(runs_newest_first(), RUNS_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "compliance/verification/start.html", {
        "page": page, "query": "", "may_verify": request.user.has_perm(VERIFY_PERMISSION),
    })


@require_GET
@login_required
@permission_required(CONSOLE_PERMISSION, raise_exception=True)
def verification(request, pk: int):
    run = get_object_or_404(runs_newest_first(), pk=pk)
    refreshing = not run.finished and request.GET.get("refresh") != "off"
    broken_link = chain_event_url(run.broken_seq) if run.broken_seq else None
    response = render(request, "compliance/verification/run.html", {
        "run": run, "refreshing": refreshing, "refresh_seconds": REFRESH_SECONDS, "broken_link": broken_link,
    })
    if refreshing:
        # The HTTP Refresh header, not a <meta> in the body: it reloads the page without JavaScript while the
        # run is under way, and the page offers a link that stops it (WCAG 2.2.1).
        response["Refresh"] = str(REFRESH_SECONDS)
    return response
