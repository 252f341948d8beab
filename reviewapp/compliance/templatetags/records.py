"""``{% audit_link record action target_type target_id %}``: the link to the audit event a line of a decision's
record comes from (the first event of the record's timeline with that action and target), or nothing."""

from django import template
from django.urls import reverse
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def audit_link(record, action: str, target_type: str, target_id) -> str:
    event = record.event_for(action, target_type, target_id)
    if event is None:
        return ""
    place = f"#{event.seq}" if event.seq else f"id {event.pk}, pending sequencing"
    return format_html('<a class="audit-link" href="{}">audit event {}</a>',
                       reverse("compliance:audit-event", args=[event.pk]), place)
