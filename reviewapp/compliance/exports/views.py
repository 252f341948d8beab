"""An export's download, /compliance/exports/<dataset>.<csv|jsonl>?from=YYYY-MM-DD&to=YYYY-MM-DD (UTC dates, both
inclusive; by default the last 30 days): GET only, behind the console permission; a bad date is a 400 naming the
field. The audit event is written (and committed) before the stream starts."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_safe

from reviewapp.compliance.home import CONSOLE_PERMISSION

from .formats import CHUNKS, MEDIA_TYPES
from .selectors import DATASETS
from .services import export_record

DEFAULT_DAYS = 30


def _date(request, name: str, default):
    text = request.GET.get(name, "").strip()
    if not text:
        return default
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a date: write it as YYYY-MM-DD (UTC).") from None


@login_required
@permission_required(CONSOLE_PERMISSION, raise_exception=True)
@require_safe
def download(request, dataset: str, fmt: str):
    try:
        last = _date(request, "to", timezone.now().astimezone(UTC).date())
        first = _date(request, "from", last - timedelta(days=DEFAULT_DAYS - 1))
        if last < first:
            raise ValueError("to: must not be before from.")
    except ValueError as error:
        return HttpResponseBadRequest(f"{error}\n", content_type="text/plain; charset=utf-8")
    chosen = DATASETS[dataset]
    start = datetime.combine(first, time.min, tzinfo=UTC)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
    rows = export_record(actor=request.user, dataset=chosen, fmt=fmt, first=first, last=last, start=start, end=end)
    response = StreamingHttpResponse(CHUNKS[fmt](chosen, start, end), content_type=MEDIA_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="reviewapp-{dataset}-{first}-{last}.{fmt}"'
    response["X-Export-Rows"] = str(rows)
    response["Cache-Control"] = "no-store, private"
    return response
