"""The Forum's staff pages (thin: every write is a service in services.py / inbound.py, every read a selector in
listings.py / previews.py). No JavaScript needed; reject and withdraw confirm first (confirm_action.html).

Objects a user may not know exist answer 404: a reviewer sees only the shares they proposed; sharing officers
and compliance officers (read-only) see every share."""

from __future__ import annotations

import json
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reviewapp.cases.models import Account, Campaign, Case
from reviewapp.cases.workflow import InvalidTransition

from . import listings
from .content import ShareChoice, ShareError
from .extensions import extension_definitions
from .forms import ApproveForm, IncludeForm, NarrowForm, ProposeForm, ReasonForm, ReReviewDoneForm
from .inbound import InboundError, Verdict, feedback_publish, rereview_done
from .models import ForumPush, InboundObject, InboundReReview, ShareState
from .previews import share_candidates, share_preview
from .services import (
    current_version,
    share_approve,
    share_include_researcher,
    share_narrow,
    share_propose,
    share_reject,
    share_withdraw,
)
from .trust_groups import UnknownCollection, collection_choices

UNPROCESSABLE = 422
PAGE_SIZE = 50
SOURCES = {"case": Case, "account": Account, "campaign": Campaign}


def _needs(user, *perms) -> None:
    if not any(user.has_perm(p) for p in perms):
        raise Http404("No such page.")


def _source_or_404(kind: str, pk: int):
    if kind not in SOURCES:
        raise Http404("No such source.")
    return get_object_or_404(SOURCES[kind], pk=pk)


def _proposal_or_404(user, pk: int):
    proposal = listings.proposal_for(user, pk)
    if proposal is None:
        raise Http404("No such share.")
    return proposal


def _errors_from(form, exc: ShareError | InboundError) -> None:
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, f"{exc.field}: {exc.message}" if field is None else exc.message)


_REFUSED = object()


def _attempt(form, call):
    """Run an officer's service call for a submitted form: its result, or _REFUSED with the refusal added to
    the form (a field's error when it names one, else the form's)."""
    try:
        return call()
    except (ShareError, InboundError) as exc:
        _errors_from(form, exc)
    except (PermissionDenied, InvalidTransition) as exc:
        form.add_error(None, str(exc))
    return _REFUSED


def _paged(request, rows):
    """One page of ``rows`` (Django's Paginator, PAGE_SIZE a page) and the request's other parameters as a query
    string, so the pager's links keep the filters (templates/_pager.html)."""
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return page, query.urlencode()


def _choice_form_args(candidates) -> dict:
    return {"fingerprints": [f.simhash64 for f in candidates.fingerprints],
            "excerpts": [e.key for e in candidates.excerpts]}


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def propose(request, kind: str, pk: int):
    """The proposal form: each item shown with exactly what it contains; excerpts unticked, one by one."""
    _needs(request.user, "forum.propose_share")
    source = _source_or_404(kind, pk)
    try:
        candidates = share_candidates(user=request.user, source=source)
    except ShareError as exc:
        return render(request, "forum/propose.html", {"source": source, "kind": kind, "page_error": exc.message},
                      status=UNPROCESSABLE)
    except PermissionDenied:
        raise Http404("No such page.") from None
    form = ProposeForm(request.POST or None, **_choice_form_args(candidates))
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                proposal = share_propose(proposer=request.user, source=source, choice=form.choice(),
                                         collection_id=form.cleaned_data["collection_id"],
                                         tlp=form.cleaned_data["tlp"],
                                         intrusion_set_name=form.cleaned_data["intrusion_set_name"])
            except ShareError as exc:
                _errors_from(form, exc)
            else:
                messages.success(request, f"Share {proposal.pk} proposed; a sharing officer will review it.")
                return redirect("forum:share", pk=proposal.pk)
        status = UNPROCESSABLE
    ticked = set(form["excerpts"].value() or []) if form.is_bound else set()
    fingerprints_ticked = set(form["fingerprints"].value() or []) if form.is_bound else set()
    return render(request, "forum/propose.html", {
        "source": source, "kind": kind, "form": form, "candidates": candidates, "ticked": ticked,
        "fingerprints_ticked": fingerprints_ticked}, status=status)


@login_required
@require_GET
def share_list(request):
    _needs(request.user, "forum.propose_share", "forum.approve_share", "forum.view_shareproposal")
    state = request.GET.get("state", "") if request.GET.get("state", "") in ShareState.values else ""
    shares = listings.proposals_visible(request.user)
    if state:
        shares = shares.filter(state=state)
    page, query = _paged(request, listings.with_delivery(shares))
    rows = [{"proposal": p, "delivery": listings.delivery_label(p.delivery_code)} for p in page]
    return render(request, "forum/shares.html", {
        "rows": rows, "page": page, "query": query, "to_review": list(listings.proposals_to_review(request.user)),
        "state": state, "states": ShareState.choices})


def _share_page(request, proposal, *, status=200, **forms):
    preview = share_preview(user=request.user, proposal=proposal)
    version = preview.version
    choice = ShareChoice.from_items(list(version.items.all()))
    officer = request.user.has_perm("forum.approve_share") and request.user.pk != proposal.proposed_by_id
    waiting = proposal.state == ShareState.AWAITING_APPROVAL
    context = {
        "proposal": proposal, "preview": preview, "version": version, "items": list(version.items.all()),
        "versions": list(proposal.versions.order_by("number")), "pushes": listings.share_pushes(proposal),
        "withdrawals": listings.share_withdrawals(proposal), "can_decide": officer and waiting,
        "own": request.user.pk == proposal.proposed_by_id and waiting,
        "can_withdraw": request.user.has_perm("forum.withdraw_share")
        and proposal.state in (ShareState.APPROVED, ShareState.AWAITING_APPROVAL),
        "researchers": [a for a in preview.accounts if a.excluded == "researcher_programme"],
        "approve_form": forms.get("approve_form") or ApproveForm(initial={"version": version.number,
                                                                          "bundle_sha256": preview.sha256}),
        "reject_form": forms.get("reject_form") or ReasonForm(),
        "narrow_form": forms.get("narrow_form") or NarrowForm(
            initial={"campaign_summary": choice.campaign_summary, "volume_stats": choice.volume_stats,
                     "account_pseudonyms": choice.account_pseudonyms,
                     "organization_pseudonyms": choice.organization_pseudonyms,
                     "fingerprints": sorted(choice.fingerprints),
                     "excerpts": [f"{f}:{i}" for f, i in sorted(choice.excerpts)]},
            fingerprints=sorted(choice.fingerprints), excerpts=[f"{f}:{i}" for f, i in sorted(choice.excerpts)]),
        "include_form": forms.get("include_form") or IncludeForm(),
        "withdraw_form": forms.get("withdraw_form") or ReasonForm(),
    }
    return render(request, "forum/share.html", context, status=status)


@login_required
@require_GET
def share_detail(request, pk: int):
    """The preview: the plain-language "what leaves" beside the exact bundle JSON and its SHA-256."""
    return _share_page(request, _proposal_or_404(request.user, pk))


def _officer_proposal(request, pk: int, perm="forum.approve_share"):
    proposal = _proposal_or_404(request.user, pk)
    if not request.user.has_perm(perm):
        raise PermissionDenied("Only a sharing officer may do this.")
    return proposal


def _done(request, proposal, message):
    messages.success(request, message)
    return redirect("forum:share", pk=proposal.pk)


@login_required
@require_POST
def share_approve_view(request, pk: int):
    proposal = _officer_proposal(request, pk)
    form = ApproveForm(request.POST)
    if form.is_valid():
        approved = _attempt(form, lambda: share_approve(officer=request.user, proposal=proposal,
                                                         version_number=form.cleaned_data["version"],
                                                         bundle_sha256=form.cleaned_data["bundle_sha256"]))
        if approved is not _REFUSED:
            return _done(request, proposal, f"Share {proposal.pk} approved; it is queued for the Forum hub.")
    return _share_page(request, proposal, status=UNPROCESSABLE, approve_form=form)


def _confirm(request, proposal, *, title, question, consequence, action, reason, button):
    return render(request, "confirm_action.html", {
        "title": title, "question": question, "consequence": consequence, "action_url": action,
        "hidden": {"reason": reason}, "button": button,
        "cancel_url": reverse("forum:share", args=[proposal.pk])})


@login_required
@require_POST
def share_reject_view(request, pk: int):
    proposal = _officer_proposal(request, pk)
    form = ReasonForm(request.POST)
    if form.is_valid():
        if request.POST.get("confirm") != "1":
            return _confirm(request, proposal, title=f"Reject share {proposal.pk}",
                            question=f"Reject share {proposal.pk}?",
                            consequence="Nothing is sent to the Forum; the proposer sees your reason. "
                                        "This cannot be undone.",
                            action=reverse("forum:reject", args=[proposal.pk]), reason=form.cleaned_data["reason"],
                            button="Reject the share")
        if _attempt(form, lambda: share_reject(officer=request.user, proposal=proposal,
                                                reason=form.cleaned_data["reason"])) is not _REFUSED:
            return _done(request, proposal, f"Share {proposal.pk} rejected.")
    return _share_page(request, proposal, status=UNPROCESSABLE, reject_form=form)


@login_required
@require_POST
def share_narrow_view(request, pk: int):
    proposal = _officer_proposal(request, pk)
    choice = ShareChoice.from_items(list(current_version(proposal).items.all()))
    form = NarrowForm(request.POST, fingerprints=sorted(choice.fingerprints),
                      excerpts=[f"{f}:{i}" for f, i in sorted(choice.excerpts)])
    if form.is_valid():
        version = _attempt(form, lambda: share_narrow(officer=request.user, proposal=proposal, choice=form.choice(),
                                                      reason=form.cleaned_data["reason"],
                                                      tlp=form.cleaned_data["tlp"] or None))
        if version is not _REFUSED:
            return _done(request, proposal, f"Version {version.number} made; preview it before approving.")
    return _share_page(request, proposal, status=UNPROCESSABLE, narrow_form=form)


@login_required
@require_POST
def share_include_view(request, pk: int):
    proposal = _officer_proposal(request, pk)
    form = IncludeForm(request.POST)
    if form.is_valid():
        account = Account.objects.filter(pk=form.cleaned_data["account"]).first()

        def include():
            if account is None:
                raise ShareError("account", f"account {form.cleaned_data['account']} is not part of this share")
            return share_include_researcher(officer=request.user, proposal=proposal, account=account,
                                            reason=form.cleaned_data["reason"])

        version = _attempt(form, include)
        if version is not _REFUSED:
            return _done(request, proposal, f"Account included in version {version.number}; preview it again.")
    return _share_page(request, proposal, status=UNPROCESSABLE, include_form=form)


@login_required
@require_POST
def share_withdraw_view(request, pk: int):
    proposal = _officer_proposal(request, pk, perm="forum.withdraw_share")
    form = ReasonForm(request.POST)
    if form.is_valid():
        if request.POST.get("confirm") != "1":
            return _confirm(request, proposal, title=f"Withdraw share {proposal.pk}",
                            question=f"Withdraw everything share {proposal.pk} sent to the Forum?",
                            consequence="Every object it sent gets a revoked new version, pushed to the trust group; "
                                        "the holders' portal says it was withdrawn. This cannot be undone.",
                            action=reverse("forum:withdraw", args=[proposal.pk]),
                            reason=form.cleaned_data["reason"], button="Withdraw the share")
        if _attempt(form, lambda: share_withdraw(officer=request.user, proposal=proposal,
                                                  reason=form.cleaned_data["reason"])) is not _REFUSED:
            return _done(request, proposal, f"Share {proposal.pk} withdrawn; the revocation is queued for the hub.")
    return _share_page(request, proposal, status=UNPROCESSABLE, withdraw_form=form)


@login_required
@require_GET
def register(request):
    """The sharing register: sharing officers and compliance officers (read-only)."""
    _needs(request.user, "forum.view_shareproposal")
    page, query = _paged(request, listings.register_proposals())
    return render(request, "forum/register.html", {"rows": listings.register_rows(page), "page": page,
                                                   "query": query})


def _inbound_page(request, *, status: int = 200, feedback_error: dict | None = None):
    collections = dict(collection_choices())
    collection = request.GET.get("collection", "") if request.GET.get("collection", "") in collections else ""
    page, query = _paged(request, listings.inbound_objects(collection_id=collection))
    rows = [{"object": o, "body_json": json.dumps(body, indent=2) if (body := listings.shown_body(o)) is not None
             else "", "matches": list(o.matches.all()), "configured": o.collection_id in collections} for o in page]
    errors = [{"href": f"#inbound-{feedback_error['pk']}", "text": feedback_error["message"]}] if feedback_error \
        else []
    return render(request, "forum/inbound.html", {"rows": rows, "page": page, "query": query,
                                                  "collection": collection, "collections": collections,
                                                  "verdicts": Verdict.CHOICES, "feedback_error": feedback_error,
                                                  "errors": errors}, status=status)


@login_required
@require_GET
def inbound(request):
    """What other labs shared: sharing officers read it and give feedback; compliance officers read it."""
    _needs(request.user, "forum.view_inboundobject")
    return _inbound_page(request)


@login_required
@require_GET
def push_list(request):
    """Every push to the hub — shares, withdrawals, feedback — with its delivery; filter by state and purpose."""
    _needs(request.user, "forum.approve_share", "forum.view_shareproposal")
    state = request.GET.get("state", "") if request.GET.get("state", "") in ForumPush.State.values else ""
    purpose = request.GET.get("purpose", "") if request.GET.get("purpose", "") in ForumPush.Purpose.values else ""
    page, query = _paged(request, listings.pushes(state=state, purpose=purpose))
    return render(request, "forum/pushes.html", {
        "page": page, "query": query, "state": state, "purpose": purpose, "states": ForumPush.State.choices,
        "purposes": ForumPush.Purpose.choices})


WITHDRAWAL_PERIODS = {"7": "the last 7 days", "30": "the last 30 days"}


@login_required
@require_GET
def withdrawal_list(request):
    """What we withdrew from our shares: by an officer, or because a decision was overturned on appeal."""
    _needs(request.user, "forum.approve_share", "forum.view_shareproposal")
    days = request.GET.get("days", "") if request.GET.get("days", "") in WITHDRAWAL_PERIODS else ""
    since = timezone.now() - timedelta(days=int(days)) if days else None
    page, query = _paged(request, listings.withdrawals(since=since))
    return render(request, "forum/withdrawals.html", {"page": page, "query": query, "days": days,
                                                      "period": WITHDRAWAL_PERIODS.get(days, ""),
                                                      "periods": WITHDRAWAL_PERIODS})


@login_required
@require_GET
def match_list(request):
    """Inbound matches against our accounts; ``awaiting=1``: those whose flag no person has reviewed yet."""
    _needs(request.user, "forum.view_inboundmatch")
    awaiting = request.GET.get("awaiting") == "1"
    page, query = _paged(request, listings.matches(awaiting=awaiting))
    for match in page:
        match.case_state_label = Case.State(match.case_state).label if match.case_state else ""
    return render(request, "forum/matches.html", {"page": page, "query": query, "awaiting": awaiting})


@login_required
@require_POST
def feedback(request, pk: int):
    """Publish feedback on an inbound object; a refusal (a verdict we do not know, a collection no longer
    configured) re-renders the inbound page with the reason, never a 500."""
    _needs(request.user, "forum.approve_share")
    obj = get_object_or_404(InboundObject, pk=pk)
    try:
        feedback_publish(officer=request.user, inbound=obj, verdict=request.POST.get("verdict", ""))
    except InboundError as exc:
        message = f"Feedback on {obj.stix_id} not sent: {exc.field}: {exc.message}."
    except UnknownCollection as exc:
        message = (f"Feedback on {obj.stix_id} not sent: it came from a collection that is no longer configured, "
                   f"so there is no trust group to publish it to ({exc}).")
    else:
        messages.success(request, f"Feedback on {obj.stix_id} queued for the Forum hub.")
        return redirect("forum:inbound")
    return _inbound_page(request, status=UNPROCESSABLE, feedback_error={"pk": obj.pk, "message": message})


def _senior(user) -> None:
    if not user.has_perm("cases.approve_decision"):
        raise PermissionDenied("Only a senior reviewer looks again at decisions whose Forum intelligence was "
                               "withdrawn.")


def _rereviews_page(request, *, status=200, failed: int | None = None, form=None):
    page, query = _paged(request, listings.rereviews_for_page())
    errors = [{"href": f"#note-{failed}" if name == "note" else "", "text": error}
              for name, field_errors in (form.errors.items() if form else []) for error in field_errors]
    return render(request, "forum/rereviews.html", {
        "page": page, "query": query, "failed": failed, "failed_form": form, "errors": errors,
        "note_field": ReReviewDoneForm().fields["note"]}, status=status)


@login_required
@require_GET
def rereviews(request):
    """Decided cases that relied on Forum intelligence a peer has since revoked, for a senior reviewer's fresh
    look (inbound.rereviews_open); each is marked done with a note (inbound.rereview_done, audited). Compliance
    officers read the list; only a senior marks one done."""
    if not request.user.has_perm("forum.view_inboundrereview"):
        _senior(request.user)
    return _rereviews_page(request)


@login_required
@require_POST
def rereview_done_view(request, pk: int):
    _senior(request.user)
    rereview = get_object_or_404(InboundReReview, pk=pk)
    form = ReReviewDoneForm(request.POST)
    if form.is_valid():
        done = _attempt(form, lambda: rereview_done(senior=request.user, rereview=rereview,
                                                    note=form.cleaned_data["note"]))
        if done is not _REFUSED:
            messages.success(request, f"Re-review of case {rereview.case_id} marked done; your note is in the "
                                      "audit trail.")
            return redirect("forum:rereviews")
    return _rereviews_page(request, status=UNPROCESSABLE, failed=rereview.pk, form=form)


@require_GET
def extensions_json(request):
    """The STIX extension-definitions our bundles use, served out of band (never in a trust-group collection)."""
    return JsonResponse({"objects": [json.loads(e.serialize())
                                                                   for e in extension_definitions()]})
