from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST
from django_ratelimit.decorators import ratelimit

from . import services
from .forms import StaffActiveForm, StaffCreateForm, StaffRoleForm
from .roles import ROLE_DESCRIPTIONS, Role
from .selectors import role_of, staff_for_listing, staff_member_or_404


@method_decorator(
    ratelimit(key="ip", rate=lambda group, request: settings.LOGIN_RATE_LIMIT, method="POST", block=True),
    name="dispatch",
)
class LoginView(auth_views.LoginView):
    template_name = "people/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """POST only (Django's default): a link cannot sign anyone out."""


@login_required
@permission_required("people.view_user", raise_exception=True)
def staff_list(request):
    staff = [(user, role_of(user)) for user in staff_for_listing()]
    return render(request, "people/staff.html", {
        "staff": staff,
        "create_form": StaffCreateForm(),
        "roles": [(role, ROLE_DESCRIPTIONS[role]) for role in Role],
        "can_manage": request.user.has_perm("people.change_user"),
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
