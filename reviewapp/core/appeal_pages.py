"""The two appeal-review pages that read flags as well as appeals: opening the evidence behind the appealed
decision, and the overturn rates (by detector among others). Appeals and flags sit side by side (DESIGN.md:
dependencies run one way, and neither reads the other), so these pages are composed here, above both; they
render with appeals' own page (``appeals.staff_views.appeal_page``). Routed by core/appeal_review_urls.py.
"""

from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.views.decorators.http import require_POST, require_safe

from appeals.selectors import appeal_for_staff_or_404
from appeals.staff_views import appeal_page, rate_chart, reads_appeals
from reviewapp.cases.evidence import evidence_for_display

from .selectors import RATE_GROUPS, overturn_rates
from .services import appeal_evidence_open


@reads_appeals
@require_POST
def appeal_evidence_view(request, pk: int):
    """The raw evidence behind the decision, shown on this response only, after the audited opening."""
    appeal = appeal_for_staff_or_404(pk)
    try:
        evidence = appeal_evidence_open(reviewer=request.user, appeal=appeal)
    except PermissionDenied as exc:
        return appeal_page(request, appeal, page_error=f"Evidence not opened: {exc}", status=403)
    evidence_for_display(evidence)
    return appeal_page(request, appeal, evidence=evidence)


@reads_appeals
@require_safe
def rates(request):
    groups = []
    for by, label in RATE_GROUPS:
        rows = overturn_rates(by=by)
        groups.append({"by": by, "label": label, "rows": rows, "chart": rate_chart(rows)})
    return render(request, "appeals/staff/rates.html", {"groups": groups})
