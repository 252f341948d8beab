"""How the Forum pages name things for a person: a trust group by its name (not its collection's UUID), a STIX
timestamp as the UTC minute the other pages show."""

from __future__ import annotations

from django import template

from ..selectors import stix_minute
from ..trust_groups import UnknownCollection, trust_group

register = template.Library()


@register.filter
def trust_group_name(collection_id: str) -> str:
    """"Frontier labs", or the id itself with a note when the collection is no longer configured."""
    try:
        return trust_group(collection_id).name
    except UnknownCollection:
        return f"{collection_id} (no longer configured)"


@register.filter
def stix_time(value: str) -> str:
    """"2026-11-04T00:00:00.000Z" → "2026-11-04 00:00 UTC" (the text unchanged if it is not a timestamp)."""
    return stix_minute(value) or (value or "")
