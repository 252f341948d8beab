"""The case workspace: the case with its flags, their timeline and provenance, its evidence, notes and
decisions, and the actions that answer with it (opening evidence, a note, a decision, an approval, a send-back).

It shows the case's flags, so it lives here, above cases (DESIGN.md: dependencies run one way; where a page
needs both, the page lives at the higher level): reviewapp.cases gives the case and its decisions, these
views add the flags (``flags.selectors``) and the audited evidence (``flags.evidence``). Routed under the
``review`` namespace with cases' own pages (flags.review_urls). Thin, as STYLE.md asks.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from reviewapp.cases import charts
from reviewapp.cases.evidence import evidence_for_display
from reviewapp.cases.forms import DecisionForm, NoteForm, SendBackForm
from reviewapp.cases.models import Case, Decision
from reviewapp.cases.selectors import (
    campaign_cases,
    can_claim,
    can_decide,
    can_open_evidence,
    decision_sent_back_event,
    decisions_of_account,
)
from reviewapp.cases.services import case_note_add
from reviewapp.cases.services.claims import case_claim_next
from reviewapp.cases.services.decisions import PolicyViolation, decision_approve, decision_record, decision_send_back
from reviewapp.cases.views import CAMPAIGN_PREVIEW, UNPROCESSABLE, case_or_404, reads_cases, until
from reviewapp.cases.vocabulary import Queue
from reviewapp.policy.selectors import clauses_in_force

from .evidence import evidence_open
from .selectors import detector_provenance, flag_timeline, flags_of_case
from .withdrawals import ref_of, withdrawals_of


def _workspace(request, case: Case, *, status: int = 200, **extra):
    """The case page; ``extra`` carries a POST's outcome (evidence opened, a form with its errors)."""
    user, now = request.user, timezone.now()
    decisions = list(decisions_of_account(case.account))
    of_case = [d for d in decisions if d.case_id == case.pk]
    pending = next((d for d in of_case if d.state == Decision.State.AWAITING_APPROVAL), None)
    deciding = can_decide(user, case, now=now)
    timeline = flag_timeline(case)
    others = campaign_cases(case.campaign).exclude(pk=case.pk) if case.campaign_id else Case.objects.none()
    sent_back = of_case[0] if of_case and of_case[0].state == Decision.State.SENT_BACK else None
    context = {
        "case": case, "now": now,
        "flags": flags_of_case(case), "timeline": timeline, "chart": charts.timeline(timeline),
        "provenance": detector_provenance(case),
        "campaign_cases": others[:CAMPAIGN_PREVIEW], "campaign_count": others.count() if case.campaign_id else 0,
        "history": [d for d in decisions if d.case_id != case.pk], "case_decisions": of_case,
        "pending": pending,
        "sent_back": sent_back, "sent_back_event": decision_sent_back_event(sent_back) if sent_back else None,
        "latest": of_case[0] if of_case and not pending and not sent_back else None,
        "claim_until": until(case.lease_expires_at, now=now) if case.lease_expires_at else "",
        "can_claim": can_claim(user, case, now=now),
        "can_release": case.assignee_id == user.pk and case.state == Case.State.IN_REVIEW,
        "can_open_evidence": can_open_evidence(user, case),
        "can_approve": bool(pending and user.has_perm("cases.approve_decision") and pending.decided_by_id != user.pk),
        "notes": case.notes.select_related("author") if user.has_perm("cases.view_casenote") else None,
        "note_form": NoteForm() if user.has_perm("cases.add_casenote") else None,
        "decision_form": DecisionForm(clauses=clauses_in_force()) if deciding else None,
        "send_back_form": SendBackForm(), "evidence": None, "page_error": "", "approval_error": "",
    }
    context.update(extra)
    _mark_withdrawn(context)
    return render(request, "cases/case.html", context, status=status)


def _mark_withdrawn(context: dict) -> None:
    """Each shown flag (and opened evidence) gets ``withdrawal``: why its source withdrew it, or None."""
    flags, evidence = list(context["flags"]), context["evidence"] or []
    withdrawn = withdrawals_of(ref_of(flag) for flag in [*flags, *evidence])
    for flag in flags:
        flag.withdrawal = withdrawn.get(flag.pk)
    for item in evidence:
        item["withdrawal"] = withdrawn.get(item["id"])
    context["flags"], context["withdrawn_count"] = flags, sum(1 for f in flags if f.withdrawal)


@reads_cases
@require_safe
def case_detail(request, pk: int):
    return _workspace(request, case_or_404(request.user, pk))


@reads_cases
@require_POST
def case_evidence(request, pk: int):
    """Raw excerpts, shown on this response only, after the audited ``evidence_open`` (invariant 2)."""
    case = case_or_404(request.user, pk)
    try:
        evidence = evidence_open(user=request.user, case=case, context="case workspace")
    except PermissionDenied:
        raise Http404("No evidence you may open here.") from None
    evidence_for_display(evidence)
    return _workspace(request, case, evidence=evidence)


@login_required
@permission_required("cases.add_casenote", raise_exception=True)
@require_POST
def case_note(request, pk: int):
    case = case_or_404(request.user, pk)
    form = NoteForm(request.POST)
    if not form.is_valid():
        return _workspace(request, case, note_form=form, status=UNPROCESSABLE)
    case_note_add(author=request.user, case=case, text=form.cleaned_data["text"])
    messages.success(request, "Note added.")
    return redirect(reverse("review:case", args=[case.pk]) + "#notes")


def _recorded_message(decision: Decision) -> str:
    refs = ", ".join(sorted(clause.ref for clause in decision.clauses.all()))
    what = f"{decision.get_action_display().lower()} under {refs}"
    if decision.state == Decision.State.AWAITING_APPROVAL:
        return (f"Decision {decision.pk} recorded ({what}). It waits for a senior reviewer's approval; "
                "nothing is enforced or told to the holder before then.")
    if decision.state == Decision.State.ENFORCED:
        return f"Decision {decision.pk} recorded and enforced ({what}); the statement of reasons is issued."
    return f"Decision {decision.pk} recorded ({what}). The case is decided."


@login_required
@permission_required("cases.claim_case", raise_exception=True)
@require_POST
def case_decide(request, pk: int):
    case = case_or_404(request.user, pk)
    form = DecisionForm(request.POST, clauses=clauses_in_force())
    if not form.is_valid():
        return _workspace(request, case, decision_form=form, status=UNPROCESSABLE)
    try:
        decision = decision_record(reviewer=request.user, case=case, **form.decision_arguments())
    except PermissionDenied as exc:
        return _workspace(request, case, page_error=str(exc), status=403)
    except PolicyViolation as exc:
        form.add_error(None, f"Not recorded: {exc}.")
        return _workspace(request, case, decision_form=form, status=UNPROCESSABLE)
    messages.success(request, _recorded_message(decision))
    if request.POST.get("next"):
        return _claim_next_after(request, case.queue)
    return redirect("review:case", pk=case.pk)


def _claim_next_after(request, queue: str):
    following = case_claim_next(reviewer=request.user, queue=queue)
    if following is None:
        messages.info(request, f"No more cases to claim in {Queue(queue).label}.")
        return redirect("review:queue", queue=queue)
    messages.info(request, f"Next: you claimed case {following.pk} ({following.account}).")
    return redirect("review:case", pk=following.pk)


def _decision_or_404(user, pk: int) -> Decision:
    decision = get_object_or_404(Decision.objects.select_related("case"), pk=pk)
    case_or_404(user, decision.case_id)  # the same reading rights as its case
    return decision


@login_required
@permission_required("cases.approve_decision", raise_exception=True)
@require_POST
def decision_approve_view(request, pk: int):
    decision = _decision_or_404(request.user, pk)
    try:
        decision = decision_approve(approver=request.user, decision=decision)
    except PermissionDenied as exc:
        return _workspace(request, case_or_404(request.user, decision.case_id),
                          approval_error=f"Not approved: {exc}", status=403)
    except PolicyViolation as exc:
        return _workspace(request, case_or_404(request.user, decision.case_id),
                          approval_error=f"Not approved: {exc}.", status=409)
    messages.success(request, f"Approved decision {decision.pk}: the {decision.get_action_display().lower()} of "
                              f"{decision.account} is enforced and the statement of reasons is issued.")
    return redirect("review:case", pk=decision.case_id)


@login_required
@permission_required("cases.approve_decision", raise_exception=True)
@require_POST
def decision_send_back_view(request, pk: int):
    decision = _decision_or_404(request.user, pk)
    form = SendBackForm(request.POST)
    form.is_valid()
    try:
        decision = decision_send_back(approver=request.user, decision=decision,
                                      reason=form.cleaned_data.get("reason", ""))
    except PermissionDenied as exc:
        return _workspace(request, case_or_404(request.user, decision.case_id), send_back_form=form,
                          approval_error=f"Not sent back: {exc}", status=403)
    except PolicyViolation as exc:
        form.add_error("reason", f"Not sent back: {exc}.")
        return _workspace(request, case_or_404(request.user, decision.case_id), send_back_form=form,
                          status=UNPROCESSABLE)
    messages.success(request, f"Sent decision {decision.pk} back to {decision.decided_by}.")
    return redirect("review:approvals")
