"""Labels for the policy vocabulary in templates: actions and DSA categories."""

from django import template

from reviewapp.policy.dsa import dsa_category_label
from reviewapp.policy.enforcement import Action

register = template.Library()


@register.filter
def action_labels(values: list[str]) -> str:
    """``["no_violation", "warn"]`` → ``"No violation, Warning"``."""
    return ", ".join(Action(value).label for value in values)


@register.filter
def dsa_label(value: str) -> str:
    return dsa_category_label(value)
