"""Flags their source has since withdrawn: a forum-detector flag whose Forum object the peer revoked (DESIGN.md
invariant 6: a peer's revocation withdraws what we derived from it). The flag row itself never changes (flags are
append-only evidence); the withdrawal is known to the app that made the flag.

Flags sits below the apps whose intelligence becomes flags (the Forum sharing app, DESIGN.md "Layout"), so it
imports none of them: each registers a provider here from its ``AppConfig.ready()``
(``reviewapp.forum.selectors.flag_withdrawals``), and the case page reads ``withdrawals_of(flags)``. Each flag is
handed over as a ``FlagRef`` (id, detector slug, external id), so a provider can skip the flags of detectors
that are not its own without a query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


@dataclass(frozen=True)
class FlagWithdrawal:
    """Why a flag no longer counts, in the words a reviewer reads."""

    flag_id: int
    withdrawn_at: datetime
    label: str  # "withdrawn by the source"
    detail: str  # "peer revoked object indicator--… at 2026-11-04 00:00 UTC"

    def __str__(self) -> str:
        return f"{self.label} ({self.detail})"


class FlagRef(NamedTuple):
    id: int
    detector: str  # the detector's slug
    external_id: str


Provider = Callable[[list[FlagRef]], dict[int, FlagWithdrawal]]
_providers: dict[str, Provider] = {}


def withdrawal_provider(name: str, provider: Provider) -> None:
    """Register (or replace, by ``name``) a source of flag withdrawals; called from an AppConfig.ready().
    A provider answers for a list of flags with a constant number of queries (none for flags not its own)."""
    _providers[name] = provider


def withdrawals_of(flags: Iterable[FlagRef]) -> dict[int, FlagWithdrawal]:
    """flag id → its withdrawal, for those of ``flags`` some provider knows to be withdrawn."""
    refs = sorted(set(flags))
    found: dict[int, FlagWithdrawal] = {}
    if refs:
        for provider in _providers.values():
            found.update(provider(refs))
    return found


def ref_of(flag) -> FlagRef:
    """A Flag (with its detector) or an evidence read's row (``id``, ``detector``, ``external_id``) as a FlagRef."""
    if isinstance(flag, dict):
        return FlagRef(flag["id"], flag.get("detector") or flag.get("detector__slug") or "", flag["external_id"])
    return FlagRef(flag.pk, flag.detector.slug, flag.external_id)
