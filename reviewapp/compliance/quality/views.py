"""Pages of the second look and of detector calibration. Thin: parse, call a selector or a service, render.

Compliance (the console permission) reads agreement, samples and disagreements and draws samples; senior
reviewers (``review_secondlook``) see the sampled cases blind and give their verdicts.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from reviewapp.cases.evidence import evidence_for_display
from reviewapp.compliance.home import CONSOLE_PERMISSION

from . import calibration as calibration_reads
from . import selectors
from .forms import SampleDrawForm, VerdictForm
from .models import SecondLookSample
from .services import SampleError, SecondLookError, sample_draw, second_look_evidence_open, second_look_record

PAGE_SIZE = 50
UNPROCESSABLE = 422


def reads_console(view):
    return login_required(permission_required(CONSOLE_PERMISSION, raise_exception=True)(view))


def reviews_second_looks(view):
    return login_required(permission_required(selectors.REVIEW_PERMISSION, raise_exception=True)(view))


def _page(request, items):
    return Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))


@reads_console
@require_safe
def quality(request):
    return render(request, "compliance/quality/quality.html", {
        "overall": selectors.agreement_overall(), "by_reviewer": selectors.agreement_by_reviewer(),
        "by_clause": selectors.agreement_by_clause(), "page": _page(request, selectors.samples_listing()),
        "may_draw": request.user.has_perm(selectors.DRAW_PERMISSION)})


@login_required
@permission_required(selectors.DRAW_PERMISSION, raise_exception=True)
@require_http_methods(["GET", "POST"])
def draw(request):
    form = SampleDrawForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            sample = sample_draw(actor=request.user, per_stratum=data["per_stratum"], strata=data["strata"],
                                 clause_refs=data["clause_refs"], reviewer_ids=[u.pk for u in data["reviewers"]],
                                 decided_from=data["decided_from"], decided_to=data["decided_to"], seed=data["seed"])
        except SampleError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, f"Drew {sample.second_looks.count()} of {sample.population} decisions "
                                      f"(seed {sample.seed}).")
            return redirect("compliance:quality-sample", pk=sample.pk)
    status = UNPROCESSABLE if request.method == "POST" else 200
    return render(request, "compliance/quality/draw.html", {"form": form}, status=status)


@reads_console
@require_safe
def sample(request, pk: int):
    drawn = get_object_or_404(SecondLookSample.objects.select_related("drawn_by"), pk=pk)
    return render(request, "compliance/quality/sample.html",
                  {"sample": drawn, "page": _page(request, selectors.sample_looks(drawn))})


@reads_console
@require_safe
def disagreements(request):
    return render(request, "compliance/quality/disagreements.html",
                  {"page": _page(request, selectors.disagreements())})


# ── Senior reviewers: blind ─────────────────────────────────────────────────────────────────────────


@reviews_second_looks
@require_safe
def reviews(request):
    page = _page(request, selectors.pending_second_looks())
    taken = selectors.took_part(request.user, [look.decision for look in page])
    return render(request, "compliance/quality/reviews.html", {"page": page, "taken": taken})


def _blind_page(request, look, *, form=None, evidence=None, status=200):
    blind = selectors.blind_case(request.user, look)
    form = form or VerdictForm(clauses=blind.clauses)
    return render(request, "compliance/quality/review.html",
                  {"case": blind, "form": form, "evidence": evidence}, status=status)


@reviews_second_looks
@require_http_methods(["GET", "POST"])
def review(request, pk: int):
    look = selectors.second_look_for_senior(request.user, pk)
    if request.method == "GET":
        return _blind_page(request, look)
    blind_clauses = selectors.blind_case(request.user, look).clauses
    form = VerdictForm(request.POST, clauses=blind_clauses)
    if form.is_valid():
        try:
            second_look_record(reviewer=request.user, look=look, action=form.cleaned_data["action"],
                               clauses=list(form.cleaned_data["clauses"]), rationale=form.cleaned_data["rationale"])
        except SecondLookError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Your second look is recorded.")
            return redirect("compliance:quality-reviews")
    return _blind_page(request, look, form=form, status=UNPROCESSABLE)


@reviews_second_looks
@require_POST
def review_evidence(request, pk: int):
    """Raw excerpts, shown on this response only, after the audited opening (invariant 2)."""
    look = selectors.second_look_for_senior(request.user, pk)
    evidence = second_look_evidence_open(reviewer=request.user, look=look)  # PermissionDenied: 403
    return _blind_page(request, look, evidence=evidence_for_display(evidence))


# ── Calibration ───────────────────────────────────────────────────────────────────────────────────


@reads_console
@require_safe
def calibration(request):
    threshold, min_appeals = settings.COMPLIANCE_OVERTURN_ALERT, settings.COMPLIANCE_OVERTURN_ALERT_MIN_APPEALS
    rows = [{"row": row, "over": calibration_reads.crosses(row, threshold=threshold, min_appeals=min_appeals)}
            for row in calibration_reads.calibration_by_version()]
    page = _page(request, rows)
    return render(request, "compliance/quality/calibration.html", {
        "page": page, "alerts": selectors.open_alerts(), "threshold": threshold, "min_appeals": min_appeals})
