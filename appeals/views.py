"""The account-holder portal. Plain pages, no JavaScript needed; every read goes through a selector
scoped to the signed-in holder's account (another account's things are 404)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_ratelimit.core import is_ratelimited
from django_ratelimit.decorators import ratelimit

from reviewapp.cases.holders import HolderLinkError, holder_link_use

from . import services
from .forms import AppealForm, LinkRequestForm, MessageForm, attachment_rules, uploads_from
from .recipients import disclosures_about
from .selectors import (
    holder_appeal_or_404,
    holder_appeal_window,
    holder_appeals,
    holder_attachment_or_404,
    holder_decision_or_404,
    holder_decisions,
    holder_statement_or_404,
)
from .session import SESSION_KEY, holder_account, holder_login, holder_logout, holder_required

UNPROCESSABLE = 422  # a form the service refused: shown again with what was typed and why

# Holder writes are rate limited a little, per signed-in account; the pages and the API share the counters.
WRITE_RATES = {"appeals.file": "10/h", "appeals.message": "30/h"}


def _holder_key(group, request) -> str:
    return f"holder-{request.session.get(SESSION_KEY)}"


def holder_write_limited(request, group: str) -> bool:
    """Count one write by the signed-in holder; True when the account is over ``WRITE_RATES[group]``."""
    return is_ratelimited(request, group=group, key=_holder_key, rate=lambda group, request: WRITE_RATES[group],
                          increment=True)


def _too_many(request):
    return render(request, "appeals/429.html", {"holder": holder_account(request)}, status=429)


def _link_request_email_key(group, request) -> str:
    """The "email me a new link" limit counts per mailbox, however its address is spelled (case, spaces, IDNA)."""
    return services.holder_email_normalise(request.POST.get("email", ""))


@ratelimit(key="ip", rate=lambda group, request: settings.HOLDER_LINK_RATE_LIMIT, method="POST", block=False)
@ratelimit(key=_link_request_email_key, rate=lambda group, request: settings.HOLDER_LINK_RATE_LIMIT, method="POST",
           block=False)
@require_http_methods(["GET", "HEAD", "POST"])
def start(request):
    """Where a holder without a valid link lands: ask for a new link by email."""
    if getattr(request, "limited", False):
        return _too_many(request)
    if request.method == "POST":
        form = LinkRequestForm(request.POST)
        if form.is_valid():
            services.holder_link_request(email=form.cleaned_data["email"])
            # The same answer whether or not we know the address: nobody learns who has an account.
            messages.info(request, _("If that address belongs to an account we acted on, a sign-in link is on its "
                                     "way. It works once, for a few days."))
            return redirect("appeals:start")
    else:
        form = LinkRequestForm()
    return render(request, "appeals/start.html", {"form": form, "holder": holder_account(request)})


@require_http_methods(["GET", "HEAD", "POST"])
def sign_in(request, token: str):
    """A GET shows a button (mail scanners that follow links must not use them up); the POST signs in."""
    if request.method != "POST":
        return render(request, "appeals/sign_in.html", {"token": token, "holder": holder_account(request)})
    try:
        account = holder_link_use(token=token)
    except HolderLinkError as exc:
        messages.error(request, str(exc))
        return redirect("appeals:start")
    holder_login(request, account)
    return redirect("appeals:home")


@require_POST
def sign_out(request):
    holder_logout(request)
    messages.info(request, _("You are signed out."))
    return redirect("appeals:start")


@never_cache
@holder_required
@require_safe
def home(request, account):
    """The holder's decisions (with their appeal windows) and appeals, and who received information about the
    account (the Forum: whether, when, what kind, withdrawn)."""
    decisions = [(decision, holder_appeal_window(decision)) for decision in holder_decisions(account)]
    return render(request, "appeals/home.html", {
        "holder": account, "decisions": decisions, "appeals": holder_appeals(account),
        "disclosures": disclosures_about(account)})


@never_cache
@holder_required
@require_safe
def statement(request, pk: int, account):
    """The statement of reasons as issued, and what the holder can do about it now."""
    statement = holder_statement_or_404(account, pk)
    decision = holder_decision_or_404(account, statement.decision_id)
    content = statement.content
    return render(request, "appeals/statement.html", {
        "holder": account, "statement": statement, "decision": decision, "s": content,
        "window": holder_appeal_window(decision),
        "starts_at": parse_datetime(content["restriction"]["starts_at"]),
        "ends_at": parse_datetime(content["restriction"]["ends_at"] or ""),
    })


@never_cache
@holder_required
@require_http_methods(["GET", "HEAD", "POST"])
def appeal_file(request, pk: int, account):
    """File an appeal against one of the holder's decisions; a refusal is shown beside what was typed."""
    decision = holder_decision_or_404(account, pk)
    window = holder_appeal_window(decision)
    form, error = AppealForm(), None
    if request.method == "POST":
        if holder_write_limited(request, "appeals.file"):
            return _too_many(request)
        form = AppealForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            try:
                appeal = services.appeal_file(
                    account=account, decision=decision, grounds=data["grounds"],
                    researcher_claim=data["researcher_claim"], affiliation=data["affiliation"],
                    uploads=uploads_from(data["attachments"]))
            except services.AppealError as exc:
                error = str(exc)
            else:
                return redirect("appeals:appeal-filed", appeal.pk)
    status = UNPROCESSABLE if request.method == "POST" else 200
    return render(request, "appeals/appeal_file.html", {
        "holder": account, "decision": decision, "window": window, "form": form, "error": error,
        "files_sent": bool(request.FILES), "rules": attachment_rules(),
    }, status=status)


@never_cache
@holder_required
@require_safe
def appeal_filed(request, pk: int, account):
    """The confirmation after filing."""
    return render(request, "appeals/appeal_filed.html", {
        "holder": account, "appeal": holder_appeal_or_404(account, pk), "email": account.contact_email})


def _appeal_page(request, account, appeal, *, form=None, error=None, status=200):
    history = [{"kind": "filed", "at": appeal.filed_at}]
    if appeal.claimed_at:
        history.append({"kind": "claimed", "at": appeal.claimed_at})
    history += [{"kind": "message", "at": message.created_at, "message": message} for message in appeal.messages.all()]
    if appeal.decided_at:
        history.append({"kind": "decided", "at": appeal.decided_at})
    history.sort(key=lambda entry: entry["at"])
    return render(request, "appeals/appeal.html", {
        "holder": account, "appeal": appeal, "history": history, "attachments": appeal.attachments.all(),
        "form": form or MessageForm(), "error": error,
    }, status=status)


@never_cache
@holder_required
@require_safe
def appeal_detail(request, pk: int, account):
    """An appeal's status and history; the holder answers the reviewer here."""
    return _appeal_page(request, account, holder_appeal_or_404(account, pk))


@require_POST
@holder_required
def appeal_message(request, pk: int, account):
    appeal = holder_appeal_or_404(account, pk)
    if holder_write_limited(request, "appeals.message"):
        return _too_many(request)
    form = MessageForm(request.POST)
    if not form.is_valid():
        return _appeal_page(request, account, appeal, form=form, status=UNPROCESSABLE)
    try:
        services.appeal_message_add(appeal=appeal, text=form.cleaned_data["text"], holder=account)
    except services.AppealError as exc:
        return _appeal_page(request, account, appeal, form=form, error=str(exc), status=UNPROCESSABLE)
    messages.success(request, _("Your message is sent to the reviewer."))
    return redirect(reverse("appeals:appeal", args=[appeal.pk]) + "#history")


@never_cache
@holder_required
@require_safe
def attachment(request, pk: int, account):
    """One of the holder's own attachments, always as a download (never rendered by the browser)."""
    attachment = holder_attachment_or_404(account, pk)
    response = HttpResponse(services.attachment_read(attachment=attachment), content_type=attachment.content_type)
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=attachment.name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
