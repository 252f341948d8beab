"""How the quality pages show a share: "50.0%", or a dash when there is nothing to divide by."""

from django import template

register = template.Library()


@register.filter
def share(value) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


@register.filter
def decision_url(decision_id) -> str | None:
    """The decision's record in the console (``compliance.links``: None until that page exists)."""
    from reviewapp.compliance.links import target_url

    return target_url("cases.decision", str(decision_id))
