"""The error summary of a refused form (cases and appeals pages): every error, each linking to its field."""

from __future__ import annotations

from django import template

register = template.Library()


@register.simple_tag
def error_items(*forms) -> list[dict]:
    """``[{"href": "#id_rationale", "text": "Rationale: Write the rationale."}, …]`` for the bound forms given.

    A form's non-field errors (a service's refusal) link to the form itself when it has an ``anchor``.
    """
    items = []
    for form in forms:
        if not form or not form.is_bound or not form.errors:
            continue
        anchor = getattr(form, "anchor", "")
        for error in form.non_field_errors():
            items.append({"href": f"#{anchor}" if anchor else "", "text": error})
        for field in form:
            for error in field.errors:
                items.append({"href": f"#{field.auto_id}", "text": f"{field.label}: {error}"})
    return items
