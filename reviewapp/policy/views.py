"""Staff pages of the documented policy: the version in force, any version, the history, and diffs.

Read-only: versions are published by ``manage.py load_policies`` from policies/*.md, never from a page.
"""

from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_safe

from . import selectors
from .models import Policy, PolicyVersion

_READ = ("policy.view_policyversion", "policy.view_clause")


def _policy_or_404(slug: str) -> Policy:
    try:
        return selectors.policy_get(slug)
    except Policy.DoesNotExist:
        raise Http404(f"no policy {slug}") from None


def _version_or_404(slug: str, number: int) -> PolicyVersion:
    try:
        return selectors.version_get(slug, number)
    except PolicyVersion.DoesNotExist:
        raise Http404(f"no version {number} of policy {slug}") from None


def _status(version: PolicyVersion, in_force: PolicyVersion | None) -> str:
    if in_force is None or version.number > in_force.number:
        return "upcoming"
    return "in force" if version.number == in_force.number else "superseded"


@login_required
@permission_required(_READ, raise_exception=True)
@require_safe
def current(request):
    return render(request, "policy/current.html", {
        "versions": selectors.versions_in_force(),
        "upcoming": selectors.versions_upcoming(),
    })


@login_required
@permission_required(_READ, raise_exception=True)
@require_safe
def version_detail(request, slug: str, number: int):
    version = _version_or_404(slug, number)
    return render(request, "policy/version.html", {
        "version": version,
        "status": _status(version, selectors.version_in_force(slug)),
    })


@login_required
@permission_required(_READ, raise_exception=True)
@require_safe
def history(request, slug: str):
    policy = _policy_or_404(slug)
    in_force = selectors.version_in_force(slug)
    return render(request, "policy/history.html", {
        "policy": policy,
        "versions": [(version, _status(version, in_force)) for version in selectors.version_history(slug)],
    })


@login_required
@permission_required(_READ, raise_exception=True)
@require_safe
def diff(request, slug: str):
    """``?from=N&to=M``; without them, the latest version against the one before it."""
    policy = _policy_or_404(slug)
    numbers = list(selectors.version_history(slug).values_list("number", flat=True))
    if not numbers:
        raise Http404(f"policy {slug} has no published version")
    try:
        to_number = int(request.GET.get("to") or numbers[0])
        from_number = int(request.GET.get("from") or max(to_number - 1, 1))
    except ValueError:
        return HttpResponseBadRequest("from and to must be version numbers")
    old, new = _version_or_404(slug, from_number), _version_or_404(slug, to_number)
    return render(request, "policy/diff.html", {
        "policy": policy, "numbers": numbers, "diff": selectors.version_diff(old, new),
    })
