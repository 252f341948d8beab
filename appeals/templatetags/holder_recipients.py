"""``{% disclosures_about account as disclosures %}``: who received information about the account
(appeals/recipients.py), for the outcome message, which the appeal's service renders with its own context."""

from django import template

from appeals.recipients import disclosures_about as _disclosures_about

register = template.Library()


@register.simple_tag
def disclosures_about(account, appeal_id=None):
    """Every disclosure about ``account``; with ``appeal_id``, only those that appeal's outcome withdrew."""
    found = _disclosures_about(account)
    if appeal_id is not None:
        found = [d for d in found if d.withdrawn_for_appeal == appeal_id]
    return found
