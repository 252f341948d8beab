"""Appeal review by staff: the appeals queue and the appeal page (opening its evidence and the overturn rates,
which read flags too, are reviewapp.core.appeal_pages).

Thin, as STYLE.md asks: each view parses, calls one service or selector, and renders. Who may claim,
ask the holder, open attachments or evidence, or decide is the services' call (appeals.services); the
pages only hide buttons that would be refused, and show a service's refusal beside the form it answers.
Senior reviewers and compliance officers read these pages (``appeals.view_appeal``); only a senior
reviewer who took no part in the decision, once they have claimed the appeal, changes anything.
"""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST, require_safe

from reviewapp.cases.models import Decision
from reviewapp.cases.services.decisions import MAX_DURATION_DAYS
from reviewapp.limits import BoundedTextField, max_chars
from reviewapp.policy.enforcement import SEVERITY_ORDER, Action, is_lesser
from reviewapp.policy.models import Clause
from reviewapp.policy.selectors import clauses_in_force

from .models import Appeal, AppealAttachment, AppealMessage
from .selectors import (
    appeal_for_staff_or_404,
    appeals_queue,
    appeals_recently_decided,
    decisions_taken_part_in,
    took_part,
)
from .services import (
    AppealConflict,
    AppealError,
    appeal_claim,
    appeal_decide,
    appeal_message_add,
    attachment_read,
)

UNPROCESSABLE = 422  # a form the service refused: shown again with what was typed and why
# Appeal.State's labels speak to the holder ("Waiting for your reply"); staff read the same states so:
STAFF_STATE_LABELS = {
    Appeal.State.FILED: "Filed, unclaimed",
    Appeal.State.IN_REVIEW: "In review",
    Appeal.State.INFO_REQUESTED: "Waiting for the holder's reply",
    Appeal.State.DECIDED: "Decided",
}


def reads_appeals(view):
    return login_required(permission_required("appeals.view_appeal", raise_exception=True)(view))


# ── Forms: they parse what was typed; appeal_decide and appeal_message_add decide whether it is allowed ──


class InformationRequestForm(forms.Form):
    # Not required here: appeal_message_add is the one place that insists on a text (its message is shown).
    text = BoundedTextField(required=False, max_length=max_chars(AppealMessage, "text"),
                            label="Ask the holder for information",
                           help_text="The holder is emailed a sign-in link and answers in the portal.")


class OutcomeForm(forms.Form):
    anchor = "decide"  # where the error summary's link to a refusal points
    outcome = forms.ChoiceField(choices=Appeal.Outcome.choices, widget=forms.RadioSelect,
                                error_messages={"required": "Choose an outcome."})
    reason = BoundedTextField(rows=5, required=False, max_length=max_chars(Appeal, "outcome_reason"),
                              label="Reasons for the holder",
                             help_text="Required. Sent to the holder with the outcome: write it for them.")
    clauses = forms.ModelMultipleChoiceField(queryset=Clause.objects.none(), required=False,
                                             widget=forms.CheckboxSelectMultiple)
    action = forms.ChoiceField(required=False, label="Lesser action")
    duration_days = forms.IntegerField(min_value=1, max_value=MAX_DURATION_DAYS, required=False,
                                       label="Duration (days)", help_text="For a rate limit or a suspension.")
    facts_for_holder = BoundedTextField(required=False, max_length=max_chars(Decision, "facts_for_holder"),
                                        label="Facts for the new statement of reasons",
                                       help_text="Optional: the reasons above are used when this is empty.")

    def __init__(self, *args, original_action: str, clauses=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.clause_list = list(clauses)
        self.fields["clauses"].queryset = Clause.objects.filter(pk__in=[c.pk for c in self.clause_list])
        # "No violation" is not a modification: lifting everything is an overturn.
        lesser = [a for a in SEVERITY_ORDER if a != Action.NO_VIOLATION and is_lesser(a, original_action)]
        self.fields["action"].choices = [("", "Choose a lesser action…"), *((a.value, a.label) for a in lesser)]

    def outcome_arguments(self) -> dict:
        data = self.cleaned_data
        if data["outcome"] != Appeal.Outcome.MODIFIED:
            return {"outcome": data["outcome"], "reason": data["reason"]}
        return {"outcome": data["outcome"], "reason": data["reason"], "clauses": list(data["clauses"]),
                "action": data["action"], "duration_days": data["duration_days"],
                "facts_for_holder": data["facts_for_holder"]}


# ── The queue ─────────────────────────────────────────────────────────────────────────────────────────


@reads_appeals
@require_safe
def queue(request):
    appeals = list(appeals_queue())
    taken = decisions_taken_part_in(request.user, [appeal.decision for appeal in appeals])
    deciding = request.user.has_perm("appeals.decide_appeal")
    for appeal in appeals:
        appeal.took_part = appeal.decision_id in taken
        appeal.state_label = STAFF_STATE_LABELS[appeal.state]
        appeal.claimable = deciding and not appeal.took_part and appeal.reviewer_id is None
    return render(request, "appeals/staff/queue.html", {
        "appeals": appeals, "decided": appeals_recently_decided(), "now": timezone.now(), "deciding": deciding,
        "review_days": Appeal.REVIEW_SLA.days})


# ── The appeal page ───────────────────────────────────────────────────────────────────────────────────


def _parsed(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def appeal_page(request, appeal: Appeal, *, status: int = 200, **extra):
    """The appeal page; ``extra`` carries a POST's outcome (evidence opened, a form with its errors)."""
    user, decision = request.user, appeal.decision
    statement = getattr(decision, "statement", None)
    content = statement.content if statement else None
    handling = appeal.is_open and appeal.reviewer_id == user.pk and user.has_perm("appeals.decide_appeal")
    took = took_part(user, decision)
    context = {
        "appeal": appeal, "decision": decision, "case": decision.case, "account": appeal.account,
        "state_label": STAFF_STATE_LABELS[appeal.state],
        "statement": statement, "s": content, "now": timezone.now(),
        "issued_at": _parsed(content["issued_at"]) if content else None,
        "ends_at": _parsed(content["restriction"]["ends_at"]) if content else None,
        "took_part": took,
        "can_claim": (appeal.is_open and appeal.reviewer_id is None and not took
                      and user.has_perm("appeals.decide_appeal")),
        "handling": handling,
        "can_open_attachments": appeal.reviewer_id == user.pk or user.has_perm("appeals.view_appealattachment"),
        "can_open_evidence": appeal.reviewer_id == user.pk and user.has_perm("appeals.decide_appeal"),
        "thread": appeal.messages.select_related("author"),
        "message_form": InformationRequestForm() if handling else None,
        "outcome_form": OutcomeForm(original_action=decision.action, clauses=clauses_in_force()) if handling else None,
        "evidence": None, "page_error": "",
    }
    context.update(extra)
    return render(request, "appeals/staff/appeal.html", context, status=status)


@reads_appeals
@require_safe
def appeal_detail(request, pk: int):
    return appeal_page(request, appeal_for_staff_or_404(pk))


@reads_appeals
@require_POST
def appeal_claim_view(request, pk: int):
    appeal = appeal_for_staff_or_404(pk)
    try:
        appeal_claim(reviewer=request.user, appeal=appeal)
    except PermissionDenied as exc:
        return appeal_page(request, appeal, page_error=f"Not claimed: {exc}", status=403)
    except AppealConflict as exc:
        return appeal_page(request, appeal, page_error=f"Not claimed: {exc}", status=409)
    messages.success(request, f"You claimed appeal {appeal.pk}. Read the grounds, then decide it or ask the holder.")
    return redirect("appeal-review:appeal", pk=appeal.pk)


@reads_appeals
@require_POST
def appeal_message_view(request, pk: int):
    """Ask the holder for information: the appeal waits for their reply, and they are emailed."""
    appeal = appeal_for_staff_or_404(pk)
    form = InformationRequestForm(request.POST)
    if not form.is_valid():
        return appeal_page(request, appeal, message_form=form, status=UNPROCESSABLE)
    try:
        appeal_message_add(appeal=appeal, text=form.cleaned_data["text"], staff=request.user)
    except PermissionDenied as exc:
        return appeal_page(request, appeal, page_error=f"Not sent: {exc}", status=403)
    except AppealError as exc:
        form.add_error("text", f"Not sent: {exc}")
        return appeal_page(request, appeal, message_form=form, status=UNPROCESSABLE)
    messages.success(request, "Your question is sent; the holder is emailed a link to answer in the portal.")
    return redirect(reverse("appeal-review:appeal", args=[appeal.pk]) + "#messages")


def _decided_message(appeal: Appeal) -> str:
    if appeal.outcome == Appeal.Outcome.OVERTURNED:
        return (f"Appeal {appeal.pk} decided: overturned. Decision {appeal.decision_id} is reversed, its "
                "enforcement is being lifted, and the holder is told with your reasons.")
    if appeal.outcome == Appeal.Outcome.MODIFIED:
        return (f"Appeal {appeal.pk} decided: modified. Decision {appeal.replacement_id} "
                f"({appeal.replacement.get_action_display().lower()}) replaces decision {appeal.decision_id}; "
                "the holder gets a new statement of reasons and your reasons.")
    return f"Appeal {appeal.pk} decided: upheld. Decision {appeal.decision_id} stands; the holder is told why."


@reads_appeals
@require_POST
def appeal_outcome_view(request, pk: int):
    appeal = appeal_for_staff_or_404(pk)
    form = OutcomeForm(request.POST, original_action=appeal.decision.action, clauses=clauses_in_force())
    if not form.is_valid():
        return appeal_page(request, appeal, outcome_form=form, status=UNPROCESSABLE)
    try:
        appeal = appeal_decide(reviewer=request.user, appeal=appeal, **form.outcome_arguments())
    except PermissionDenied as exc:
        return appeal_page(request, appeal, page_error=f"Not decided: {exc}", status=403)
    except AppealError as exc:
        form.add_error(None, f"Not decided: {exc}")
        return appeal_page(request, appeal, outcome_form=form, status=UNPROCESSABLE)
    messages.success(request, _decided_message(appeal))
    return redirect("appeal-review:appeal", pk=appeal.pk)


@reads_appeals
@require_POST
def appeal_attachment_view(request, pk: int, attachment_pk: int):
    """Download an attachment (a POST: each opening is audited, so no link a prefetcher could follow)."""
    appeal = appeal_for_staff_or_404(pk)
    attachment = get_object_or_404(AppealAttachment, pk=attachment_pk, appeal=appeal)
    try:
        data = attachment_read(attachment=attachment, staff=request.user)
    except PermissionDenied as exc:
        return appeal_page(request, appeal, page_error=f"Not opened: {exc}", status=403)
    response = HttpResponse(data, content_type=attachment.content_type)
    response["Content-Disposition"] = content_disposition_header(True, attachment.name)
    response["Cache-Control"] = "no-store"
    return response


# ── Overturn rates: the page groups by detector too, so it is reviewapp.core.appeal_pages.rates ─────────


def rate_chart(rows: list[dict], *, width: int = 560, row_height: int = 26, label_width: int = 170) -> dict:
    """Horizontal bars of each group's overturn rate on a 0–100 % scale (presentation only)."""
    span = width - label_width - 90
    bars = [{"key": row["key"] if row["key"] is not None else "(none)", "y": i * row_height + 4,
             "text_y": i * row_height + 18, "width": round(span * row["rate"], 1),
             "percent": round(row["rate"] * 100), "changed": row["overturned"] + row["modified"],
             "decided": row["decided"]} for i, row in enumerate(rows)]
    return {"width": width, "height": max(1, len(rows)) * row_height + 8, "label_width": label_width,
            "span": span, "bars": bars, "value_x": label_width + span + 8}
