"""The account holder's session in the portal: which account is signed in. Not a staff login."""

from __future__ import annotations

from functools import wraps

from django.shortcuts import redirect

from reviewapp.cases.models import Account

SESSION_KEY = "appeals_holder_account"


def holder_login(request, account: Account) -> None:
    request.session.cycle_key()  # a fresh session id on sign-in (no fixation)
    request.session[SESSION_KEY] = account.pk


def holder_logout(request) -> None:
    request.session.pop(SESSION_KEY, None)
    request.session.cycle_key()


def holder_account(request) -> Account | None:
    pk = request.session.get(SESSION_KEY)
    return Account.objects.filter(pk=pk).first() if pk else None


def holder_required(view):
    """The view gets ``account`` (the signed-in holder's); without one, the "get a link" page."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        account = holder_account(request)
        if account is None:
            return redirect("appeals:start")
        return view(request, *args, account=account, **kwargs)

    return wrapper
