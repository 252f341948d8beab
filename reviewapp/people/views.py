from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.password_validation import password_validators_help_text_html
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_ratelimit.decorators import ratelimit

from . import services
from .forms import (
    ApiTokenCreateForm,
    PasswordChangeForm,
    SignInUnlockForm,
    StaffActiveForm,
    StaffCreateForm,
    StaffMemberForm,
    StaffRoleForm,
)
from .roles import ROLE_DESCRIPTIONS, Role
from .selectors import (
    api_tokens_of,
    locked_sign_ins,
    own_api_token_or_404,
    role_of,
    staff_for_listing,
    staff_member_or_404,
)

LOCKED_OUT_MESSAGE = ("Sign-in for this username is paused after too many failed attempts. Try again in "
                      "{minutes} minutes, or ask an admin to unlock it.")


@method_decorator(
    ratelimit(key="ip", rate=lambda group, request: settings.LOGIN_RATE_LIMIT, method="POST", block=True),
    name="dispatch",
)
class LoginView(auth_views.LoginView):
    template_name = "people/login.html"
    redirect_authenticated_user = True
    http_method_names = ["get", "head", "post"]  # FormView would take PUT as a POST


def login_locked_out(request, original_response=None, credentials=None):
    """django-axes' answer to a locked-out username (AXES_LOCKOUT_CALLABLE): the sign-in form, saying so.

    The same words whether or not the username exists, since unknown names are locked alike.
    """
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    # Unbound: a bound form would authenticate again when its errors are read (one more failed attempt).
    form = AuthenticationForm(request, initial={"username": request.POST.get("username", "")})
    return render(request, "people/login.html", {
        "form": form, "locked_out": LOCKED_OUT_MESSAGE.format(minutes=minutes),
        "next": request.POST.get("next", ""),
    }, status=429)


class LogoutView(auth_views.LogoutView):
    """POST only (Django's default): a link cannot sign anyone out."""


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def password_change(request):
    """Choose a new password; the one page a holder of a one-time password can reach (people.middleware)."""
    forced = request.user.must_change_password
    form = PasswordChangeForm(request.POST or None, forced=forced)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.staff_password_change(
                user=request.user, new_password=form.cleaned_data["new_password1"],
                old_password=form.cleaned_data.get("old_password"),
            )
        except ValidationError as exc:
            field = "old_password" if any(e.code == "password_incorrect" for e in exc.error_list) else "new_password1"
            form.add_error(field, exc)
        else:
            update_session_auth_hash(request, user)  # this session stays signed in; others end
            messages.success(request, "Your password is changed.")
            return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "people/password_change.html", {
        "form": form, "forced": forced, "password_help": password_validators_help_text_html(),
    }, status=422 if form.errors else 200)


@login_required
@permission_required("people.view_user", raise_exception=True)
@require_safe
def staff_list(request):
    staff = [(user, role_of(user)) for user in staff_for_listing()]
    return render(request, "people/staff.html", {
        "staff": staff,
        "create_form": StaffCreateForm(),
        "roles": [(role, ROLE_DESCRIPTIONS[role]) for role in Role],
        "can_manage": request.user.has_perm("people.change_user"),
        "locked_sign_ins": locked_sign_ins() if request.user.has_perm("people.change_user") else [],
    })


@login_required
@permission_required("people.add_user", raise_exception=True)
@require_POST
def staff_create(request):
    form = StaffCreateForm(request.POST)
    if form.is_valid():
        try:
            user, password = services.staff_create(actor=request.user, **form.cleaned_data)
        except (services.StaffError, ValidationError) as exc:
            messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        else:
            messages.success(request, f"Created {user.username}. Their one-time password: {password} — "
                                      "hand it over privately; it is not shown again.")
    else:
        messages.error(request, "; ".join(f"{field}: {' '.join(errs)}" for field, errs in form.errors.items()))
    return redirect("people:staff")


@login_required
@permission_required("people.change_user", raise_exception=True)
@require_POST
def staff_role(request, pk: int):
    user = staff_member_or_404(pk)
    form = StaffRoleForm(request.POST)
    if form.is_valid():
        try:
            services.staff_set_role(actor=request.user, user=user, role=form.cleaned_data["role"])
        except services.StaffError as exc:
            messages.error(request, f"Role not changed: {exc}.")
        else:
            messages.success(request, f"{user.username} is now {Role(form.cleaned_data['role']).label}.")
    else:
        messages.error(request, "Choose a role.")
    return redirect("people:staff")


@login_required
@permission_required("people.change_user", raise_exception=True)
@require_POST
def staff_active(request, pk: int):
    user = staff_member_or_404(pk)
    form = StaffActiveForm(request.POST)
    if form.is_valid() and not form.cleaned_data["active"] and request.POST.get("confirm") != "1":
        # Deactivation is confirmed first, without JavaScript: this POST only shows what will happen.
        return render(request, "confirm_action.html", {
            "title": f"Deactivate {user.username}", "question": f"Deactivate {user.username}?",
            "consequence": f"{user.username} is signed out everywhere and cannot sign in until an admin reactivates "
                           "them. Nothing they did is deleted.",
            "button": f"Deactivate {user.username}", "action_url": request.path, "hidden": {"active": "0"},
            "cancel_url": reverse("people:staff"),
        })
    if form.is_valid():
        try:
            services.staff_set_active(actor=request.user, user=user, active=form.cleaned_data["active"])
        except services.StaffError as exc:
            messages.error(request, str(exc))
        else:
            state = "active" if form.cleaned_data["active"] else "deactivated"
            messages.success(request, f"{user.username} is {state}.")
    return redirect("people:staff")


@login_required
@permission_required("people.change_user", raise_exception=True)
@require_POST
def staff_password_issue(request):
    form = StaffMemberForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a staff member.")
        return redirect("people:staff")
    user = staff_member_or_404(form.cleaned_data["user"])
    try:
        password = services.staff_password_issue(actor=request.user, user=user)
    except services.StaffError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"New one-time password for {user.username}: {password} — hand it over "
                                  "privately; it is not shown again, and they must change it at sign-in.")
    return redirect("people:staff")


@login_required
@permission_required("people.change_user", raise_exception=True)
@require_POST
def staff_sign_in_unlock(request):
    form = SignInUnlockForm(request.POST)
    if form.is_valid():
        services.staff_sign_in_unlock(actor=request.user, username=form.cleaned_data["username"])
        messages.success(request, f"Sign-in for {form.cleaned_data['username']} is unlocked.")
    return redirect("people:staff")


# --- A person's own staff API tokens --------------------------------------------------------------------------

def _api_tokens_page(request, *, form: ApiTokenCreateForm, error: str = "", status: int = 200):
    now = timezone.now()
    return render(request, "people/api_tokens.html", {
        "tokens": [(token, token.state(now)) for token in api_tokens_of(request.user)],
        "form": form, "error": error, "api_root": request.build_absolute_uri("/api/v1/"),
    }, status=status)


@login_required
@require_safe
def api_tokens(request):
    return _api_tokens_page(request, form=ApiTokenCreateForm())


@login_required
@require_POST
def api_token_create(request):
    """Issue a token and show its secret on this answer only (no redirect, no message in the session: the
    secret is never stored anywhere, not even for the next page)."""
    form = ApiTokenCreateForm(request.POST)
    if not form.is_valid():
        return _api_tokens_page(request, form=form, status=422)
    days = form.cleaned_data["expires_in_days"]
    expires_at = timezone.now() + timedelta(days=days) if days else None
    try:
        token, secret = services.issue_api_token(actor=request.user, user=request.user,
                                                 name=form.cleaned_data["name"], expires_at=expires_at)
    except services.ApiTokenError as exc:
        return _api_tokens_page(request, form=form, error=str(exc), status=422)
    return render(request, "people/api_token_created.html", {
        "token": token, "secret": secret, "example_url": request.build_absolute_uri(_example_path(request.user)),
    })


def _example_path(user) -> str:
    """A read the person's role may make, for the page's curl line."""
    if user.has_perm("audit.view_auditevent"):
        return reverse("transparency-api")
    if user.has_perm("cases.view_case"):
        return reverse("case-list")
    return reverse("api-schema")


@login_required
@require_POST
def api_token_revoke(request, pk: int):
    token = own_api_token_or_404(request.user, pk)
    if token.revoked_at is None and request.POST.get("confirm") != "1":
        return render(request, "confirm_action.html", {
            "title": f"Revoke the API token {token.name}", "question": f"Revoke {token.name} ({token.prefix}…)?",
            "consequence": "Whatever uses it is refused from the next request on. A revoked token cannot be "
                           "restored; issue a new one instead.",
            "button": f"Revoke {token.name}", "action_url": request.path, "hidden": {},
            "cancel_url": reverse("people:api-tokens"),
        })
    services.revoke_api_token(actor=request.user, token=token)
    messages.success(request, f"The API token {token.name} ({token.prefix}…) is revoked.")
    return redirect("people:api-tokens")
