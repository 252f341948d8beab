"""A decided case that relied on Forum intelligence the peer then revoked, made through the real inbound code
(``inbound.inbound_pull``: storing, matching, the forum flag, the revocation, the re-review); only the hub's
transport is replaced by the pages a test hands in (the hub itself is exercised in test_inbound.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flags.models import Flag
from reviewapp.forum import inbound, taxii
from reviewapp.forum.models import InboundObject, InboundReReview
from reviewapp.forum.trust_groups import trust_group

from .conftest import FRONTIER
from .test_inbound import T0, SecondLab, _revoked, _ts

_pages = iter(range(1, 10_000))


def pull_pages(monkeypatch, *pages: list[dict]) -> inbound.PullResult:
    """Pull ``pages`` as if the hub of the first trust group answered them (the cursor advances per page)."""
    served = [taxii.Page(objects=objects, added_last=_ts(T0 + timedelta(minutes=next(_pages)))) for objects in pages]
    monkeypatch.setattr(taxii, "pull", lambda group, **kwargs: iter(served))
    inbound.pseudonyms_backfill()
    inbound.fingerprints_backfill()
    return inbound.inbound_pull(group=trust_group(FRONTIER))


@dataclass
class Withdrawn:
    account: object
    case: object
    flag: Flag  # the forum detector's flag, now withdrawn
    indicator: dict  # the peer's object as first shared
    revoked: InboundObject  # its revoked version as received
    rereview: InboundReReview | None  # only for a decided case


def decided_case_with_withdrawn_source(world, monkeypatch, *, external_id: str, simhash: str = "aaaaaaaaaaaaaaaa",
                                       revoke: bool = True, decided: bool = True) -> Withdrawn:
    """A decided (or, ``decided=False``, in-review) case whose evidence includes a forum flag (a peer's fingerprint
    within distance 1 of the case's own), then (``revoke``) the peer's revocation of that indicator."""
    lab = SecondLab()
    account, case = world.account(external_id, flags=[{"simhash": simhash}], decided=decided)
    near = f"{int(simhash, 16) ^ 1:016x}"
    indicator = lab.indicator(near)
    pull_pages(monkeypatch, lab.bundle([indicator])["objects"])
    flag = Flag.objects.select_related("detector").get(detector__slug=inbound.FORUM_DETECTOR,
                                                       account_external_id=account.external_id)
    Flag.objects.filter(pk=flag.pk).update(case=case)  # grouping's part, done directly
    revoked = rereview = None
    if revoke:
        pull_pages(monkeypatch, lab.bundle([_revoked(indicator, T0 + timedelta(days=3))])["objects"])
        revoked = InboundObject.objects.get(stix_id=indicator["id"], revoked=True)
        rereview = InboundReReview.objects.filter(case=case).first()
    return Withdrawn(account=account, case=case, flag=flag, indicator=indicator, revoked=revoked, rereview=rereview)
