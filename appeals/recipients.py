"""Who outside us received information about a holder's account: the data subject's right to know the recipients
(GDPR Art. 15(1)(c)), shown in the holders' portal and in an appeal's outcome message.

Appeals sits below the apps that send such information out (the Forum sharing app, DESIGN.md "Layout"), so it
imports none of them: each registers a provider here from its ``AppConfig.ready()``
(``reviewapp.forum.selectors.shares_about_account``), and the portal reads ``disclosures_about(account)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Disclosure:
    """One time information about the account went to a recipient, in the words the holder reads."""

    recipient: str  # e.g. "the Frontier Model Forum (Frontier labs (all Forum members))"
    shared_at: datetime
    what: tuple[str, ...]  # the kinds of information, e.g. ("a pseudonym of your account (a keyed code)",)
    withdrawn_at: datetime | None = None
    withdrawn_because: str = ""  # "the decision was reversed on appeal no. 12", "we withdrew the whole share"
    withdrawn_for_appeal: int | None = None  # the appeal whose outcome withdrew it, if one did
    details: tuple[str, ...] = field(default_factory=tuple)

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None


Provider = Callable[[object], list[Disclosure]]
_providers: dict[str, Provider] = {}


def disclosure_provider(name: str, provider: Provider) -> None:
    """Register (or replace, by ``name``) a source of disclosures; called from an AppConfig.ready()."""
    _providers[name] = provider


def disclosures_about(account) -> list[Disclosure]:
    """Every disclosure about ``account`` any provider knows, oldest first."""
    found = [d for provider in _providers.values() for d in provider(account)]
    return sorted(found, key=lambda d: d.shared_at)
