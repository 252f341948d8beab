"""User-account SCOs after a withdrawal (issue 10). STIX 2.1 has no revoked SCO (``revoked`` is a property of SDOs
and SROs), so a withdrawal takes them out of every observed-data of ours that stands (revoked, or a new version
without them) and, once the hub has accepted that, deletes them from the collection with TAXII 2.1 "Delete An
Object" (medallion 3.0.0 implements it), through the outbox (kind ``forum_delete``). Read back from the real
hub. An SCO's id comes from its pseudonym, so two shares about one account send the same SCO: it stays while an
observed-data of ours that stands still lists it."""

from __future__ import annotations

import pytest

from reviewapp.audit.models import AuditEvent
from reviewapp.forum import services, taxii
from reviewapp.forum.bundles import bundle_build
from reviewapp.forum.content import ShareChoice
from reviewapp.forum.models import ForumPush, ShareWithdrawal
from reviewapp.forum.pseudonyms import account_pseudonym
from reviewapp.forum.trust_groups import trust_group

from .conftest import FRONTIER, deliver_forum_outbox
from .test_withdrawal import _overturn, shared  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def _scos(bundle: dict) -> dict[str, str]:
    """user_id (pseudonym) → SCO id."""
    return {o["user_id"]: o["id"] for o in bundle["objects"] if o["type"] == "user-account"}


def _on_hub(stix_id: str) -> bool:
    return taxii.object_present(trust_group(FRONTIER), stix_id, "")


def _newest(hub, stix_id: str) -> dict:
    (found,) = [o for o in hub.objects() if o["id"] == stix_id]
    return found


def test_overturn_deletes_the_holders_user_account_from_the_hub(shared, make_staff, forum_hub):  # noqa: F811
    scos = _scos(shared.bundle)
    holder_sco = scos[account_pseudonym(shared.account.external_id)]
    assert len(scos) == 7 and all(_on_hub(i) for i in scos.values())

    _overturn(shared, make_staff)
    push = ShareWithdrawal.objects.get(proposal=shared.proposal, account=shared.account).push
    assert push.delete_ids == [holder_sco] and push.deleted_ids == []
    deliver_forum_outbox()
    push.refresh_from_db()
    assert push.state == ForumPush.State.SENT and push.deleted_ids == [holder_sco]

    assert not _on_hub(holder_sco)
    assert holder_sco not in {o["id"] for o in forum_hub.objects()}
    assert all(_on_hub(i) for i in scos.values() if i != holder_sco)  # the others' stay, still listed
    event = AuditEvent.objects.get(action="share.objects_deleted", target_id=str(push.pk))
    assert event.data["deleted"] == [holder_sco] and event.data["collection_id"] == FRONTIER


def test_whole_share_withdrawn_deletes_every_user_account(shared, sharing_people, forum_hub):  # noqa: F811
    scos = set(_scos(shared.bundle).values())
    services.share_withdraw(officer=sharing_people["officer2"], proposal=shared.proposal, reason="Mislabelled.")
    deliver_forum_outbox()
    push = ForumPush.objects.get(proposal=shared.proposal, purpose="withdrawal")
    assert set(push.deleted_ids) == scos
    held = {o["id"] for o in forum_hub.objects()}
    assert not scos & held and not any(_on_hub(i) for i in scos)


def test_a_user_account_another_share_still_lists_stays_until_that_one_is_withdrawn(shared, sharing_people,  # noqa: F811
                                                                                     make_staff, forum_hub):
    # A second share of the same campaign to the same collection: other ids for its SDOs, the same SCOs.
    second = services.share_propose(proposer=sharing_people["reviewer"], source=shared.campaign,
                                    choice=ShareChoice(campaign_summary=True, account_pseudonyms=True),
                                    collection_id=FRONTIER)
    version = services.current_version(second)
    built = bundle_build(version)
    assert set(_scos(built.bundle).values()) == set(_scos(shared.bundle).values())
    services.share_approve(officer=sharing_people["officer"], proposal=second, version_number=version.number,
                           bundle_sha256=built.sha256)
    deliver_forum_outbox()
    (second_observed,) = [o["id"] for o in built.bundle["objects"] if o["type"] == "observed-data"]

    services.share_withdraw(officer=sharing_people["officer2"], proposal=shared.proposal, reason="Mislabelled.")
    deliver_forum_outbox()
    first_withdrawal = ForumPush.objects.get(proposal=shared.proposal, purpose="withdrawal")
    assert first_withdrawal.delete_ids == []  # the second share's account list still names every one
    assert all(_on_hub(i) for i in _scos(shared.bundle).values())

    holder_sco = _scos(shared.bundle)[account_pseudonym(shared.account.external_id)]
    _overturn(shared, make_staff)
    deliver_forum_outbox()
    newest = _newest(forum_hub, second_observed)
    assert holder_sco not in newest["object_refs"] and len(newest["object_refs"]) == 6
    assert not _on_hub(holder_sco)
    assert sum(_on_hub(i) for i in _scos(shared.bundle).values()) == 6
