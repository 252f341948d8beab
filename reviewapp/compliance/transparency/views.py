"""The transparency report page and the CSV behind each chart. Reads only (GET), behind the console permission;
a bad period is a 400 naming the field (the page re-rendered with its error, a CSV in plain text)."""

from __future__ import annotations

import csv
import io

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_safe

from reviewapp.compliance.home import CONSOLE_PERMISSION

from .figures import figures
from .forms import PeriodForm
from .selectors import transparency_report
from .tables import CSV_TABLES


def reads_console(view):
    return login_required(permission_required(CONSOLE_PERMISSION, raise_exception=True)(view))


@reads_console
@require_safe
def report(request):
    form = PeriodForm(request.GET)
    if not form.is_valid():
        return render(request, "compliance/transparency/report.html", {"form": form}, status=400)
    data = transparency_report(form.period)
    return render(request, "compliance/transparency/report.html",
                  {"form": form, "period": form.period, "figures": figures(data), "query": form.query()})


@reads_console
@require_safe
def chart_csv(request, chart: str):
    form = PeriodForm(request.GET)
    if not form.is_valid():
        text = "\n".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors_by_field().items())
        return HttpResponseBadRequest(text + "\n", content_type="text/plain; charset=utf-8")
    period = form.period
    buffer = io.StringIO()
    csv.writer(buffer).writerows(CSV_TABLES[chart](transparency_report(period, only=chart)).csv_rows())
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (f'attachment; filename="transparency-{chart}-{period.first:%Y-%m}'
                                       f'-{period.last:%Y-%m}.csv"')
    return response
