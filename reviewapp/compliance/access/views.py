"""The evidence-access pages of the console: every opening, the openings outside the opener's own assigned
cases, and openings per person per week. Reads only (GET), behind the console permission."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from reviewapp.compliance.home import CONSOLE_PERMISSION

from .charts import weekly_strips
from .forms import AccessFilterForm, WeeklyForm
from .selectors import OWN_RULE, openings_page, weekly_counts

PEOPLE_PER_PAGE = 25


def _query(form, *, drop: tuple[str, ...] = ("before", "page")) -> str:
    return urlencode({key: value for key, value in form.data.items() if value and key not in drop})


def _openings(request, *, outside_only: bool):
    form = AccessFilterForm(request.GET)
    page = None
    status = 200
    if form.is_valid():
        page = openings_page(form.filters(outside_only=outside_only), before=form.cleaned_data["before"])
    else:
        status = 400
    return render(request, "compliance/access/openings.html", {
        "form": form, "page": page, "outside_only": outside_only, "own_rule": OWN_RULE, "query": _query(form),
    }, status=status)


@require_GET
@login_required
@permission_required(CONSOLE_PERMISSION, raise_exception=True)
def evidence_access(request):
    return _openings(request, outside_only=False)


@require_GET
@login_required
@permission_required(CONSOLE_PERMISSION, raise_exception=True)
def evidence_access_outside(request):
    return _openings(request, outside_only=True)


@require_GET
@login_required
@permission_required(CONSOLE_PERMISSION, raise_exception=True)
def evidence_access_weekly(request):
    form = WeeklyForm(request.GET)
    if not form.is_valid():
        return render(request, "compliance/access/weekly.html", {"form": form, "own_rule": OWN_RULE}, status=400)
    data = weekly_counts(since=form.cleaned_data["since"], until=form.cleaned_data["until"],
                         person=form.person_pk())
    people = Paginator(data.people, PEOPLE_PER_PAGE).get_page(request.GET.get("page"))
    data.people = list(people)
    return render(request, "compliance/access/weekly.html", {
        "form": form, "data": data, "page": people, "chart": weekly_strips(data), "own_rule": OWN_RULE,
        "query": _query(form, drop=("page",)),
    })
