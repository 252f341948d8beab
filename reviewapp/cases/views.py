"""The reviewer's pages: queues, claims, second approvals, campaign decisions, statements.

The case workspace (and the actions that answer with it: evidence, notes, decisions, approvals, send-backs)
shows the case's flags, so it lives a layer up, in ``flags.case_pages`` (DESIGN.md: dependencies run one
way); ``flags.review_urls`` puts both under the one ``review`` namespace.

Thin, as STYLE.md asks: each view parses, calls one service or selector, and renders. Whether a reviewer
may claim, see evidence, decide or approve is the services' call; the pages only hide buttons that would
be refused, and show a service's refusal next to what was typed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.functional import cached_property
from django.views.decorators.http import require_POST, require_safe

from reviewapp.policy.enforcement import Action
from reviewapp.policy.selectors import clauses_in_force

from . import charts
from .forms import (
    CampaignConfirmationStale,
    CampaignDecisionForm,
    QueueFilterForm,
    campaign_decision_sentence,
)
from .models import Campaign, Case, StatementOfReasons
from .selectors import (
    campaign_cases,
    campaigns_in_queue,
    cases_visible_to,
    decisions_awaiting_approval,
    queue_cases,
    queue_overview,
)
from .services.claims import ClaimError, case_claim, case_claim_next, case_release
from .services.decisions import (
    PolicyViolation,
    campaign_decide,
    campaign_needs_second_approval,
    needs_second_approval,
)
from .statements import NotReportable, dsa_export
from .vocabulary import Queue, Signal

QUEUE_PAGE_SIZE = 50
QUEUE_COUNT_LIMIT = 10_000  # a queue page counts its open cases up to here ("10,000+")
CAMPAIGN_PREVIEW = 30  # other accounts listed on a case page; the campaign page lists them all
UNPROCESSABLE = 422  # a form the service refused: shown again with what was typed and why


def reads_cases(view):
    return login_required(permission_required("cases.view_case", raise_exception=True)(view))


def _queue_or_404(slug: str) -> Queue:
    if slug not in Queue.values:
        raise Http404(f"No queue {slug!r}.")
    return Queue(slug)


def case_or_404(user, pk: int) -> Case:
    return get_object_or_404(cases_visible_to(user).select_related("assignee"), pk=pk)


def _span(delta: timedelta) -> str:
    """A short duration for a busy table: "2d 4h", "3h 59m", "12m"."""
    minutes = int(delta.total_seconds() // 60)
    days, hours, minutes = minutes // 1440, minutes % 1440 // 60, minutes % 60
    return f"{days}d {hours}h" if days else f"{hours}h {minutes}m" if hours else f"{minutes}m"


def until(moment: datetime, *, now: datetime | None = None) -> str:
    """A claim's end with its date, and how far off it is: "2026-12-03 04:25 UTC (in 23h 59m)"."""
    now = now or timezone.now()
    relative = f"in {_span(moment - now)}" if moment > now else f"{_span(now - moment)} ago"
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({relative})"


# ── Queues ─────────────────────────────────────────────────────────────────────────────────────────────


@reads_cases
@require_safe
def queue_list(request):
    rows = queue_overview(request.user)
    return render(request, "cases/queues.html", {"rows": rows, "chart": charts.queue_bars(rows)})


def _an_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) < 19  # a bigint


class BoundedPaginator(Paginator):
    """Counts at most ``limit`` rows (``capped`` says whether there were more): the COUNT over every open case of a
    queue grew with the queue (docs/scale-plans.md), and past a few thousand cases a reviewer filters, not pages."""

    def __init__(self, object_list, per_page, *, limit: int):
        super().__init__(object_list, per_page)
        self.limit, self.capped = limit, False

    @cached_property
    def count(self) -> int:
        counted = self.object_list.order_by()[: self.limit + 1].count()  # SELECT count(*) FROM (… LIMIT limit + 1)
        self.capped = counted > self.limit
        return min(counted, self.limit)


@reads_cases
@require_safe
def queue_detail(request, queue: str):
    queue = _queue_or_404(queue)
    chosen = request.GET.get("campaign", "")
    form = QueueFilterForm(request.GET or None,
                           campaigns=campaigns_in_queue(queue, also=int(chosen) if _an_id(chosen) else None))
    filters = form.filters() if form.is_bound else {}
    page = BoundedPaginator(queue_cases(request.user, queue, **filters), QUEUE_PAGE_SIZE,
                            limit=QUEUE_COUNT_LIMIT).get_page(request.GET.get("page"))
    now = timezone.now()
    for case in page:
        case.signal_labels = [Signal(s).label if s in Signal.values else s for s in case.signals]
        case.sla_overdue, case.sla_span = case.sla_due_at < now, _span(abs(case.sla_due_at - now))
    query = urlencode({key: value for key, value in request.GET.items() if key != "page" and value})
    return render(request, "cases/queue.html", {
        "queue": queue, "form": form, "page": page, "query": query, "now": now,
        "filtered": any(value not in (None, "") for value in filters.values()),
    })


@login_required
@permission_required("cases.claim_case", raise_exception=True)
@require_POST
def queue_claim_next(request, queue: str):
    queue = _queue_or_404(queue)
    case = case_claim_next(reviewer=request.user, queue=queue)
    if case is None:
        messages.info(request, f"Nothing to claim in {queue.label}: every open case is claimed or awaiting approval.")
        return redirect("review:queue", queue=queue.value)
    messages.success(request, f"You claimed case {case.pk} ({case.account}) until {until(case.lease_expires_at)}.")
    return redirect("review:case", pk=case.pk)


# ── Claims (the case workspace shows the case's flags, so it is served from flags.case_pages) ─────────


@login_required
@permission_required("cases.claim_case", raise_exception=True)
@require_POST
def case_claim_view(request, pk: int):
    case = case_or_404(request.user, pk)
    try:
        case = case_claim(reviewer=request.user, case=case)
    except ClaimError as exc:
        messages.error(request, f"Not claimed: {exc}.")
    else:
        messages.success(request, f"You claimed case {case.pk} until {until(case.lease_expires_at)}.")
    return redirect("review:case", pk=pk)


@login_required
@permission_required("cases.claim_case", raise_exception=True)
@require_POST
def case_release_view(request, pk: int):
    case = case_or_404(request.user, pk)
    try:
        case_release(reviewer=request.user, case=case, reason=request.POST.get("reason", ""))
    except ClaimError as exc:
        messages.error(request, f"Not released: {exc}.")
        return redirect("review:case", pk=pk)
    messages.success(request, f"Released case {case.pk}: it is back in {case.get_queue_display()}.")
    return redirect("review:queue", queue=case.queue)


# ── Second approval (approving and sending back re-render the workspace: flags.case_pages) ────────────


@login_required
@permission_required("cases.approve_decision", raise_exception=True)
@require_safe
def approvals(request):
    return render(request, "cases/approvals.html", {
        "decisions": decisions_awaiting_approval(request.user), "now": timezone.now()})


# ── Campaign decisions ────────────────────────────────────────────────────────────────────────────────


def _campaign_page(request, campaign: Campaign, *, form=None, chosen=frozenset(), confirmed=frozenset(),
                   result=None, page_error: str = "", status: int = 200):
    """The campaign and, for a reviewer, its decision form. Nothing is ticked unless the reviewer ticked it
    (or pressed "Select all"): a campaign decision must never act on accounts nobody chose."""
    cases = list(campaign_cases(campaign))
    open_cases = [c for c in cases if c.is_open]
    selectable = [c for c in open_cases if not c.account.researcher_programme]
    deciding = request.user.has_perm("cases.claim_case")
    if form is None and deciding:
        form = _campaign_form(None, cases)
    return render(request, "cases/campaign.html", {
        "campaign": campaign, "cases": cases, "open_count": len(open_cases), "selectable_count": len(selectable),
        "researcher_open_count": len(open_cases) - len(selectable), "chosen": set(chosen),
        "confirmed": set(confirmed), "form": form if deciding else None, "result": result, "page_error": page_error,
        "approval_threshold": settings.CAMPAIGN_DECISION_APPROVAL_THRESHOLD,
    }, status=status)


def _campaign_form(data, cases, initial=None) -> CampaignDecisionForm:
    # Every account of the campaign is a valid choice: one decided meanwhile is reported as skipped, with why.
    accounts = sorted({c.account.external_id for c in cases})
    researchers = sorted({c.account.external_id for c in cases if c.account.researcher_programme})
    return CampaignDecisionForm(data, initial=initial, clauses=clauses_in_force(), accounts=accounts,
                                researchers=researchers)


def _typed_again(post) -> dict:
    """What was typed, as the initial values of an unbound form: shown again without any error messages."""
    return {"clauses": post.getlist("clauses"), "action": post.get("action", ""),
            "duration_days": post.get("duration_days", ""), "rationale": post.get("rationale", ""),
            "facts_for_holder": post.get("facts_for_holder", "")}


@reads_cases
@require_safe
def campaign_detail(request, pk: int):
    return _campaign_page(request, get_object_or_404(Campaign, pk=pk))


@login_required
@permission_required("cases.claim_case", raise_exception=True)
@require_POST
def campaign_decide_view(request, pk: int):
    """Three steps, each a POST here: "select all" (the no-JavaScript way to tick every open account), the
    confirmation page (the exact count and action, the accounts listed), then the confirmed decision."""
    campaign = get_object_or_404(Campaign, pk=pk)
    cases = list(campaign_cases(campaign))
    step = request.POST.get("step", "")
    if step in {"select_all", "edit"}:
        chosen = ({c.account.external_id for c in cases if c.is_open and not c.account.researcher_programme}
                  if step == "select_all" else set(request.POST.getlist("accounts")))
        return _campaign_page(request, campaign, form=_campaign_form(None, cases, initial=_typed_again(request.POST)),
                              chosen=chosen, confirmed=set(request.POST.getlist("researchers_confirmed")))
    form = _campaign_form(request.POST, cases)
    chosen, confirmed = set(request.POST.getlist("accounts")), set(request.POST.getlist("researchers_confirmed"))
    if not form.is_valid():
        return _campaign_page(request, campaign, form=form, chosen=chosen, confirmed=confirmed, status=UNPROCESSABLE)
    by_account = {c.account.external_id: c for c in cases}
    acting = [by_account[a] for a in sorted(chosen) if by_account[a].is_open
              and (not by_account[a].account.researcher_programme or a in confirmed)]
    left_out = {a: ("no open case in this campaign" if not by_account[a].is_open
                    else "researcher-programme account not confirmed") for a in sorted(chosen)
                if by_account[a] not in acting}
    if not acting:
        form.add_error("accounts", "None of the chosen accounts can be decided: "
                       + "; ".join(f"{a}: {why}" for a, why in left_out.items()) + ".")
        return _campaign_page(request, campaign, form=form, chosen=chosen, confirmed=confirmed, status=UNPROCESSABLE)
    arguments = form.decision_arguments()
    sentence = campaign_decision_sentence(action=arguments["action"], count=len(acting),
                                          duration_days=arguments["duration_days"])
    confirming = {"campaign": campaign, "form": form, "acting": acting, "left_out": left_out, "sentence": sentence,
                  "action_label": Action(arguments["action"]).label,
                  "second_approval": arguments["action"] != "no_violation" and (
                      campaign_needs_second_approval(len(acting)) or needs_second_approval(
                          arguments["action"], arguments["clauses"])),
                  "large": campaign_needs_second_approval(len(acting)),
                  "approval_threshold": settings.CAMPAIGN_DECISION_APPROVAL_THRESHOLD,
                  "token": form.confirmation_token(campaign_id=campaign.pk, reviewer_id=request.user.pk)}
    if step != "confirm":
        return render(request, "cases/campaign_confirm.html", confirming)
    try:
        form.check_confirmation(request.POST.get("token", ""), campaign_id=campaign.pk, reviewer_id=request.user.pk)
    except CampaignConfirmationStale as exc:
        return render(request, "cases/campaign_confirm.html", {**confirming, "page_error": f"Not decided: {exc}."},
                      status=409)
    try:
        result = campaign_decide(
            reviewer=request.user, campaign=campaign, account_ids=form.cleaned_data["accounts"],
            researchers_confirmed=set(form.cleaned_data["researchers_confirmed"]), **arguments)
    except PolicyViolation as exc:
        form.add_error(None, f"Not recorded: {exc}.")
        return _campaign_page(request, campaign, form=form, chosen=chosen, confirmed=confirmed, status=UNPROCESSABLE)
    return _campaign_page(request, campaign, result=result)


# ── Statements of reasons ─────────────────────────────────────────────────────────────────────────────


def _statement_or_404(pk: int) -> StatementOfReasons:
    return get_object_or_404(StatementOfReasons.objects.select_related("decision__case", "decision__account"), pk=pk)


def _parsed(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@login_required
@permission_required("cases.view_statementofreasons", raise_exception=True)
@require_safe
def statement_detail(request, pk: int):
    statement = _statement_or_404(pk)
    content = statement.content
    try:
        dsa_export(statement)
        not_reportable = ""
    except NotReportable as exc:
        not_reportable = str(exc)
    return render(request, "cases/statement.html", {
        "statement": statement, "s": content, "not_reportable": not_reportable,
        "issued_at": _parsed(content["issued_at"]), "starts_at": _parsed(content["restriction"]["starts_at"]),
        "ends_at": _parsed(content["restriction"]["ends_at"]),
        "appeal_deadline": _parsed(content["redress"]["appeal_deadline"]),
    })


@login_required
@permission_required("cases.view_statementofreasons", raise_exception=True)
@require_safe
def statement_dsa(request, pk: int):
    statement = _statement_or_404(pk)
    try:
        return JsonResponse(dsa_export(statement), json_dumps_params={"indent": 2})
    except NotReportable as exc:
        return JsonResponse({"error": str(exc)}, status=409)
