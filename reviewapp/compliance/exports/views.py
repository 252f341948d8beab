"""An export's download, /compliance/exports/<dataset>.<csv|jsonl>?from=YYYY-MM-DD&to=YYYY-MM-DD (UTC dates, both
inclusive; by default the last 30 days): GET only, behind the console permission; a bad date is a 400 naming the
field. The audit event is written (and committed) before the stream starts.

The export page, /compliance/exports/, is a GET form (dataset, format, from, to) that works without JavaScript:
it submits to /compliance/exports/download, which redirects to the download's own URL (so the URL a person
bookmarks or hands to a script is the dataset's), or answers 400 with the form and each error beside its field.

``export_response`` is the one implementation of a download: the console page here and the API
(``api.ExportDownloadView``) differ only in how they authenticate and how they word a refusal.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_safe

from reviewapp.compliance.home import CONSOLE_PERMISSION

from .formats import CHUNKS, MEDIA_TYPES
from .forms import ExportForm, ExportRange, ExportRangeForm, range_ending, utc_today
from .selectors import DATASETS, Dataset
from .services import export_record


def export_response(*, actor, dataset: Dataset, fmt: str, export_range: ExportRange) -> StreamingHttpResponse:
    """Record the export (committed), then stream it: X-Export-Rows is the count the audit event holds."""
    first, last, start, end = export_range.first, export_range.last, export_range.start, export_range.end
    rows = export_record(actor=actor, dataset=dataset, fmt=fmt, first=first, last=last, start=start, end=end)
    response = StreamingHttpResponse(CHUNKS[fmt](dataset, start, end), content_type=MEDIA_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="reviewapp-{dataset.slug}-{first}-{last}.{fmt}"'
    response["X-Export-Rows"] = str(rows)
    response["Cache-Control"] = "no-store, private"
    return response


@login_required
@permission_required(CONSOLE_PERMISSION, raise_exception=True)
@require_safe
def download(request, dataset: str, fmt: str):
    form = ExportRangeForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(form.errors_as_text(), content_type="text/plain; charset=utf-8")
    return export_response(actor=request.user, dataset=DATASETS[dataset], fmt=fmt, export_range=form.range)


def _page(request, form: ExportForm, *, status: int = 200):
    return render(request, "compliance/exports/page.html", {"form": form, "datasets": DATASETS.values()},
                  status=status)


@login_required
@permission_required(CONSOLE_PERMISSION, raise_exception=True)
@require_safe
def export_page(request):
    default = range_ending(utc_today())
    return _page(request, ExportForm(initial={"from": default.first, "to": default.last}))


@login_required
@permission_required(CONSOLE_PERMISSION, raise_exception=True)
@require_safe
def export_start(request):
    """The export page's submission: to the chosen download's URL with the range, or the form again (400)."""
    form = ExportForm(request.GET)
    if not form.is_valid():
        return _page(request, form, status=400)
    data, chosen = form.cleaned_data, form.range
    url = reverse(f"compliance:export-{data['dataset']}-{data['fmt']}")
    return redirect(f"{url}?{urlencode({'from': chosen.first.isoformat(), 'to': chosen.last.isoformat()})}")
