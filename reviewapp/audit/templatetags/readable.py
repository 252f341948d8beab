"""``readable``: a stored value as a person reads it, not as Python prints it.

One filter for evidence details, audit data and any JSON shown on a page: a list becomes "a, b", None and
"" become "—", booleans "yes"/"no", a dict a definition list (nested values readable in turn). It lives at
the ground (audit) because the lowest layer that shows stored JSON is the audit trail's own page.
"""

from __future__ import annotations

from django import template
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()

EMPTY = "—"


@register.filter
def readable(value) -> SafeString:
    if value is None or value == "" or value in ({}, []):
        return conditional_escape(EMPTY)
    if isinstance(value, bool):
        return conditional_escape("yes" if value else "no")
    if isinstance(value, dict):
        rows = format_html_join("", "<dt>{}</dt><dd>{}</dd>", ((key, readable(item)) for key, item in value.items()))
        return format_html('<dl class="readable">{}</dl>', rows)
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return format_html_join(", ", "{}", ((readable(item),) for item in items))
    return conditional_escape(value)
