"""The account-holder portal. Plain pages, no JavaScript needed; every read goes through a selector
scoped to the signed-in holder's account (another account's things are 404)."""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_ratelimit.decorators import ratelimit

from reviewapp.cases.holders import HolderLinkError, holder_link_use

from . import services
from .forms import LinkRequestForm
from .selectors import holder_appeals, holder_decisions
from .session import holder_account, holder_login, holder_logout, holder_required


@ratelimit(key="ip", rate=lambda group, request: settings.HOLDER_LINK_RATE_LIMIT, method="POST", block=True)
@ratelimit(key="post:email", rate=lambda group, request: settings.HOLDER_LINK_RATE_LIMIT, method="POST", block=True)
def start(request):
    """Where a holder without a valid link lands: ask for a new link by email."""
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


def sign_in(request, token: str):
    """A GET shows a button (mail scanners that follow links must not use them up); the POST signs in."""
    if request.method != "POST":
        return render(request, "appeals/sign_in.html", {"token": token})
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


@holder_required
def home(request, account):
    return render(request, "appeals/home.html", {
        "account": account, "decisions": holder_decisions(account), "appeals": holder_appeals(account)})
