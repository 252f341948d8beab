"""Staff pages for detectors and their tokens: list, create, (de)activate, issue, revoke, rotate.

Thin: each change is one call to a service in ``flags.services`` (which writes the audit event).
Revoke, rotate and deactivate are confirmed first, without JavaScript: the first POST shows what will
happen (templates/confirm_action.html) and changes nothing; its button posts again with ``confirm=1``.
A new token is handed to the browser once, in a flash message on the page after the redirect; only its
hash is stored, so it can never be shown again.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST, require_safe

from . import services
from .forms import DetectorActiveForm, DetectorCreateForm
from .models import Detector, DetectorToken
from .selectors import detectors_for_listing, set_aside_recent


def _list_page(request, create_form: DetectorCreateForm | None = None, status: int = 200):
    return render(request, "flags/detectors.html", {
        "detectors": detectors_for_listing(),
        "set_aside": set_aside_recent(),
        "create_form": create_form or DetectorCreateForm(),
    }, status=status)


def _show_once(request, lead: str, token: str) -> None:
    messages.success(request, format_html(
        '{} Copy it now; it is not shown again: <code class="mono">{}</code>', lead, token))


def _back_to(detector: Detector):
    return redirect(f"{reverse('detectors:list')}#detector-{detector.pk}")


def _confirmed(request) -> bool:
    """A destructive change happens on the second POST only (confirm=1, from the confirmation page)."""
    return request.POST.get("confirm") == "1"


def _confirm_page(request, *, detector: Detector, title: str, question: str, consequence: str, button: str,
                  hidden: dict | None = None):
    return render(request, "confirm_action.html", {
        "title": title, "question": question, "consequence": consequence, "button": button,
        "action_url": request.path, "hidden": hidden or {},
        "cancel_url": f"{reverse('detectors:list')}#detector-{detector.pk}",
    })


@login_required
@permission_required("flags.view_detector", raise_exception=True)
@require_safe
def detector_list(request):
    return _list_page(request)


@login_required
@permission_required("flags.add_detector", raise_exception=True)
@require_POST
def detector_create(request):
    form = DetectorCreateForm(request.POST)
    if not form.is_valid():
        return _list_page(request, create_form=form, status=400)
    detector = services.detector_ensure(actor=request.user, **form.cleaned_data)
    messages.success(request, f"Created detector {detector.slug}. Issue it a token to let it post flags.")
    return _back_to(detector)


@login_required
@permission_required("flags.change_detector", raise_exception=True)
@require_POST
def detector_active(request, pk: int):
    detector = get_object_or_404(Detector, pk=pk)
    form = DetectorActiveForm(request.POST)
    if form.is_valid() and not form.cleaned_data["active"] and detector.active and not _confirmed(request):
        return _confirm_page(
            request, detector=detector, title=f"Deactivate detector {detector.slug}", hidden={"active": "0"},
            question=f"Deactivate detector {detector.slug}?",
            consequence="Every one of its tokens is refused with 401 until it is reactivated: it cannot post flags. "
                        "Flags it already posted stay.",
            button=f"Deactivate {detector.slug}")
    if form.is_valid():
        detector = services.detector_set_active(actor=request.user, detector=detector,
                                                active=form.cleaned_data["active"])
        state = "active" if detector.active else "inactive: its tokens are refused until it is reactivated"
        messages.success(request, f"Detector {detector.slug} is {state}.")
    else:
        messages.error(request, "Choose active or inactive.")
    return _back_to(detector)


@login_required
@permission_required("flags.add_detectortoken", raise_exception=True)
@require_POST
def token_create(request, pk: int):
    detector = get_object_or_404(Detector, pk=pk)
    try:
        row, token = services.detector_token_create(actor=request.user, detector=detector)
    except services.DetectorError as exc:
        messages.error(request, f"{str(exc).capitalize()}.")
        return _back_to(detector)
    _show_once(request, f"New token {row.prefix}… for {detector.slug}.", token)
    return _back_to(detector)


@login_required
@permission_required("flags.change_detectortoken", raise_exception=True)
@require_POST
def token_revoke(request, pk: int):
    row = get_object_or_404(DetectorToken.objects.select_related("detector"), pk=pk)
    if row.revoked_at is not None:
        messages.info(request, f"Token {row.prefix}… of {row.detector.slug} was already revoked.")
    elif not _confirmed(request):
        return _confirm_page(
            request, detector=row.detector, title=f"Revoke token {row.prefix}…",
            question=f"Revoke token {row.prefix}… of detector {row.detector.slug}?",
            consequence="Detectors using it will get 401 from now on. This cannot be undone: to let the detector "
                        "post again, issue it a new token.",
            button=f"Revoke token {row.prefix}…")
    else:
        row = services.detector_token_revoke(actor=request.user, token=row)
        messages.success(request, f"Revoked token {row.prefix}… of {row.detector.slug}; it is refused from now on.")
    return _back_to(row.detector)


@login_required
@permission_required(["flags.add_detectortoken", "flags.change_detectortoken"], raise_exception=True)
@require_POST
def token_rotate(request, pk: int):
    row = get_object_or_404(DetectorToken.objects.select_related("detector"), pk=pk)
    if row.revoked_at is None and not _confirmed(request):
        return _confirm_page(
            request, detector=row.detector, title=f"Rotate token {row.prefix}…",
            question=f"Rotate token {row.prefix}… of detector {row.detector.slug}?",
            consequence="It is revoked at once and its replacement is shown to you once. Detectors still using "
                        f"{row.prefix}… will get 401 until they are given the new token.",
            button=f"Revoke {row.prefix}… and issue its replacement")
    try:
        new_row, token = services.detector_token_rotate(actor=request.user, token=row)
    except services.DetectorError as exc:
        messages.error(request, f"{str(exc).capitalize()}.")
        return _back_to(row.detector)
    _show_once(request, f"Revoked token {row.prefix}… of {row.detector.slug}; its replacement is {new_row.prefix}….",
               token)
    return _back_to(row.detector)
