"""The proposer's candidates and the approver's preview: the exact bytes and their hash, the plain-language line,
and an audited evidence opening whenever prompt excerpts are shown (DESIGN.md invariant 2)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from flags.models import Flag
from reviewapp.audit.models import AuditEvent
from reviewapp.forum import services
from reviewapp.forum.bundles import sha256_of
from reviewapp.forum.content import ShareChoice
from reviewapp.forum.previews import share_candidates, share_preview

from .conftest import FRONTIER, assert_valid_bundle

pytestmark = pytest.mark.django_db


def test_candidates_list_included_items_and_the_opening_is_audited(world, sharing_people):
    campaign, accounts = world.campaign(3)
    researcher, _ = world.account(campaign=campaign, researcher=True,
                                  flags=[{"simhash": "0123456789abcdef", "excerpts": ["researcher's own prompt"]}])
    found = share_candidates(user=sharing_people["reviewer"], source=campaign)
    assert sorted(a.pk for a in found.included) == sorted(a.pk for a in accounts)
    assert dict(found.accounts)[researcher] == "researcher_programme"
    assert [f.simhash64 for f in found.fingerprints] == ["9f3c0a77e41b2d10"]  # not the researcher's template
    assert len(found.excerpts) == 3 and all("researcher" not in e.text for e in found.excerpts)
    opened = AuditEvent.objects.filter(action="evidence.opened")
    assert opened.count() == 3 and {e.actor_id for e in opened} == {str(sharing_people["reviewer"].pk)}
    with pytest.raises(PermissionDenied):
        share_candidates(user=sharing_people["officer"], source=campaign)


def test_preview_shows_the_exact_bytes_and_hash_and_audits_excerpts(world, sharing_people, make_staff):
    account, case = world.account()
    flag = Flag.objects.get(account_external_id=account.external_id)
    proposal = services.share_propose(proposer=sharing_people["reviewer"], source=case, collection_id=FRONTIER,
                                      choice=ShareChoice(excerpts=frozenset({(flag.pk, 0)})))
    preview = share_preview(user=sharing_people["officer"], proposal=proposal)
    assert_valid_bundle(preview.canonical_text)
    assert sha256_of(preview.canonical_text.encode()) == preview.sha256
    assert preview.sha256 == services.current_version(proposal).bundle_sha256
    assert preview.excerpts[0]["content"] == "Solve step by step: {problem}"
    assert preview.what_leaves.startswith("0 account pseudonyms, 0 organisation pseudonyms, 0 fingerprints, "
                                          "1 prompt excerpt, a campaign summary, rounded volume statistics, "
                                          "TLP:AMBER+STRICT, to ")
    event = AuditEvent.objects.get(action="evidence.opened")
    assert event.target_id == str(case.pk) and "preview" in event.data["context"]
    assert event.data["flags"] == [flag.pk]
    with pytest.raises(PermissionDenied):  # a reviewer who did not propose it
        share_preview(user=make_staff(), proposal=proposal)


def test_a_preview_without_excerpts_opens_no_evidence(world, sharing_people):
    campaign, _ = world.campaign(5)
    proposal = services.share_propose(proposer=sharing_people["reviewer"], source=campaign, collection_id=FRONTIER,
                                      choice=ShareChoice(account_pseudonyms=True))
    preview = share_preview(user=sharing_people["compliance"], proposal=proposal)
    assert_valid_bundle(preview.canonical_text)
    assert preview.built.summary["account_pseudonyms"] == 5
    assert not AuditEvent.objects.filter(action="evidence.opened").exists()
