"""Inbound Forum intelligence against a real medallion hub: a second lab's objects are posted into the collection
(the way the Forum would hold them), pulled with the added_after cursor and paging, matched against local
accounts' pseudonyms and flag evidence's fingerprints, and each match becomes a flag from detector ``forum`` once;
the peer's revocation withdraws them and closes / returns what relied on them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pgtrigger
import pytest

from flags.models import Flag
from reviewapp.audit.models import AuditEvent
from reviewapp.cases.models import Case
from reviewapp.forum import inbound, taxii
from reviewapp.forum.bundles import bundle_build, sharer_identity
from reviewapp.forum.content import ShareChoice
from reviewapp.forum.extensions import PROMPT_FINGERPRINT_EXT, PSEUDONYM_EXT
from reviewapp.forum.models import ForumPush, InboundMatch, InboundObject, InboundReReview, PullCursor
from reviewapp.forum.pseudonyms import account_pseudonym
from reviewapp.forum.tlp import MARKING_IDS, Tlp, marking_definition
from reviewapp.forum.trust_groups import trust_group

from .conftest import FRONTIER, assert_valid_bundle

pytestmark = pytest.mark.django_db(transaction=True)

OTHER_LAB = "identity--0b6c1d1e-2f3a-4b5c-8d6e-7f8091a2b3c4"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _ts(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SecondLab:
    """Another lab's objects, as its own sharing tool would post them (TLP 2.0, pseudonyms under the Forum key)."""

    def __init__(self, tlp: Tlp = Tlp.AMBER_STRICT):
        self.tlp = tlp
        self.identity = {"type": "identity", "spec_version": "2.1", "id": OTHER_LAB, "created": _ts(T0),
                         "modified": _ts(T0), "name": "Another frontier lab", "identity_class": "organization"}

    def common(self, kind: str, at: datetime = T0) -> dict:
        return {"type": kind, "spec_version": "2.1", "id": f"{kind}--{uuid.uuid4()}", "created": _ts(at),
                "modified": _ts(at), "created_by_ref": OTHER_LAB, "object_marking_refs": [MARKING_IDS[self.tlp]]}

    def indicator(self, simhash: str) -> dict:
        return {**self.common("indicator"), "name": "Templated distillation prompts", "pattern_type": "stix",
                "indicator_types": ["malicious-activity"], "valid_from": _ts(T0),
                "pattern": f"[x-prompt-signature:simhash64 = '{simhash}'] REPEATS 100 TIMES WITHIN 86400 SECONDS",
                "extensions": {PROMPT_FINGERPRINT_EXT: {"extension_type": "property-extension",
                                                        "template_simhash64": simhash, "slot_count": 3}}}

    def accounts(self, pseudonyms: list[str]) -> list[dict]:
        scos = [{"type": "user-account", "spec_version": "2.1",
                 "id": f"user-account--{uuid.uuid5(uuid.NAMESPACE_URL, p)}",
                 "user_id": p, "object_marking_refs": [MARKING_IDS[self.tlp]],
                 "extensions": {PSEUDONYM_EXT: {"extension_type": "property-extension", "scheme": "hmac-sha256",
                                                "key_id": "demo-2026"}}} for p in pseudonyms]
        observed = {**self.common("observed-data"), "first_observed": _ts(T0),
                    "last_observed": _ts(T0 + timedelta(days=1)),
                    "number_observed": 1, "object_refs": [s["id"] for s in scos]}
        return [*scos, observed]

    def bundle(self, objects: list[dict]) -> dict:
        return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                "objects": [self.identity, marking_definition(self.tlp), *objects]}


def _post(hub, bundle: dict, collection_id: str = FRONTIER) -> None:
    status = taxii.post_bundle(trust_group(collection_id), json.dumps(bundle).encode())
    # The lab's identity and the marking travel in every bundle: the hub refuses them as already present.
    assert all(f["id"] == OTHER_LAB or f["id"].startswith("marking-definition--") for f in status.failures), \
        status.failures


def _revoked(obj: dict, at: datetime) -> dict:
    return {**obj, "modified": _ts(at), "revoked": True}


def _pull(per_request: int = 3) -> inbound.PullResult:
    inbound.pseudonyms_backfill()
    inbound.fingerprints_backfill()
    return inbound.inbound_pull(group=trust_group(FRONTIER), per_request=per_request)


def _forum_flags():
    return Flag.objects.filter(detector__slug="forum")


def test_paging_cursor_and_idempotency(forum_hub, world):
    lab = SecondLab()
    indicators = [lab.indicator(f"{n:016x}") for n in range(7)]
    _post(forum_hub, lab.bundle(indicators))
    first = _pull()
    assert first.pages >= 3  # 9 objects, 3 a page: taxii2-client's as_pages walked them all
    assert set(InboundObject.objects.values_list("stix_id", flat=True)) == {OTHER_LAB, *(i["id"] for i in indicators),
                                                                            MARKING_IDS[lab.tlp]}
    cursor = PullCursor.objects.get(collection_id=FRONTIER).added_after
    assert cursor

    again = _pull()
    assert again.stored == 0 and InboundObject.objects.count() == 9  # pull twice: nothing new

    later = lab.indicator("00000000000000ff")
    _post(forum_hub, lab.bundle([later]))
    third = _pull()
    assert third.stored == 1 and InboundObject.objects.filter(stix_id=later["id"]).exists()
    assert PullCursor.objects.get(collection_id=FRONTIER).added_after > cursor
    stored = InboundObject.objects.get(stix_id=later["id"])
    assert (stored.source_identity, stored.tlp, stored.collection_id) == (OTHER_LAB, Tlp.AMBER_STRICT, FRONTIER)
    assert AuditEvent.objects.filter(action="forum.inbound_pulled").exists()


def test_our_own_objects_are_never_inbound(forum_hub, world, sharing_people):
    from reviewapp.forum import services

    campaign, _ = world.campaign(5)
    proposal = services.share_propose(proposer=sharing_people["reviewer"], source=campaign,
                                      choice=ShareChoice(campaign_summary=True, account_pseudonyms=True),
                                      collection_id=FRONTIER)
    built = bundle_build(services.current_version(proposal))
    _post(forum_hub, json.loads(built.canonical))  # posted by hand: no ledger rows, the objects alone tell
    result = _pull(per_request=100)
    assert result.skipped_own > 0
    assert not InboundObject.objects.filter(source_identity=sharer_identity().id).exists()
    assert not InboundObject.objects.filter(stix_type="user-account").exists()  # ours: our observed-data lists them


def test_pseudonym_and_fingerprint_matches_become_flags_once(forum_hub, world):
    seen, _ = world.account("acct_seen_by_both_labs", flags=[{"simhash": "9f3c0a77e41b2d10"}])
    near, _ = world.account("acct_near_fingerprint", flags=[{"simhash": "1234567890abcdef"}])
    world.account("acct_far_fingerprint", flags=[{"simhash": "fedcba0987654321"}])
    lab = SecondLab()
    near_inbound = f"{0x1234567890abcdef ^ 0b10000000100000001:016x}"  # distance 3 across three bands
    objects = [*lab.accounts([account_pseudonym(seen.external_id), account_pseudonym("someone_we_never_saw")]),
               lab.indicator(near_inbound), lab.indicator(f"{0xfedcba0987654321 ^ 0xF0:016x}")]  # distance 4
    _post(forum_hub, lab.bundle(objects))
    result = _pull()

    matches = {(m.account_id, m.kind, m.distance) for m in InboundMatch.objects.all()}
    assert matches == {(seen.pk, "pseudonym", None), (near.pk, "fingerprint", 3)}
    flags = list(_forum_flags())
    assert {f.account_external_id for f in flags} == {seen.external_id, near.external_id}
    assert result.flags_created == 2
    pseudonym_flag = next(f for f in flags if f.account_external_id == seen.external_id)
    observed = objects[2]
    assert pseudonym_flag.evidence["forum"] == {
        "source_object_id": observed["id"], "source_version": observed["modified"], "collection_id": FRONTIER,
        "source_identity": OTHER_LAB, "tlp": "amber+strict", "match": "pseudonym"}
    # Nothing is enforced: the account keeps its status; the flag waits for grouping and a reviewer.
    seen.refresh_from_db()
    assert seen.enforcement_status == "none"

    # The same object pulled again (cursor reset: the hub's whole collection again) matches nothing new.
    PullCursor.objects.update(added_after="")
    _pull()
    assert InboundMatch.objects.count() == 2 and _forum_flags().count() == 2
    assert AuditEvent.objects.filter(action="forum.inbound_matched").count() == 2


def test_simhash_bands_find_every_hash_within_the_threshold():
    import random

    rng = random.Random(7)
    for _ in range(2_000):
        a = rng.getrandbits(64)
        b = a
        for bit in rng.sample(range(64), rng.randint(0, 3)):
            b ^= 1 << bit
        assert any(x == y for x, y in zip(inbound.bands(a), inbound.bands(b), strict=True))
        assert inbound.hamming(inbound.simhash_int(f"{a:016x}"), inbound.simhash_int(f"{b:016x}")) <= 3


def test_threshold_beyond_the_bands_is_refused(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.FORUM_SIMHASH_MAX_DISTANCE = 4
    with pytest.raises(ImproperlyConfigured, match="FORUM_SIMHASH_MAX_DISTANCE"):
        inbound.max_distance()


def test_peer_revocation_withdraws_flags_closes_forum_only_case_and_returns_decided_case(forum_hub, world):
    # One account known only through the Forum (its only case is the forum flag's), one decided case.
    lab = SecondLab()
    decided, decided_case = world.account("acct_decided_on_it", flags=[{"simhash": "aaaaaaaaaaaaaaaa"}])
    only, only_case = world.account("acct_only_forum", decided=False, flags=[])
    only_case.state = Case.State.NEW
    only_case.save(update_fields=["state"])
    observed_objects = lab.accounts([account_pseudonym(only.external_id)])
    indicator = lab.indicator("aaaaaaaaaaaaaaab")
    _post(forum_hub, lab.bundle([*observed_objects, indicator]))
    _pull()
    flags = {f.account_external_id: f for f in _forum_flags()}
    assert set(flags) == {decided.external_id, only.external_id}
    # Grouping's part, done directly: each forum flag joins its account's case.
    Flag.objects.filter(pk=flags[only.external_id].pk).update(case=only_case)
    Flag.objects.filter(pk=flags[decided.external_id].pk).update(case=decided_case)

    later = T0 + timedelta(days=3)
    _post(forum_hub, lab.bundle([_revoked(observed_objects[-1], later), _revoked(indicator, later)]))
    result = _pull()
    assert result.revoked == 2
    assert all(m.withdrawn_at is not None and "source withdrawn" in m.withdrawal_reason
               for m in InboundMatch.objects.all())
    assert inbound.withdrawn_flag_ids([f.pk for f in flags.values()]) == {f.pk for f in flags.values()}
    only_case.refresh_from_db()
    decided_case.refresh_from_db()
    assert only_case.state == Case.State.CLOSED
    assert decided_case.state == Case.State.DECIDED
    rereview = InboundReReview.objects.get()
    assert (rereview.case_id, rereview.stix_id, rereview.state) == (decided_case.pk, indicator["id"], "open")
    assert list(inbound.rereviews_open()) == [rereview]
    closed = AuditEvent.objects.filter(action="case.transitioned", target_id=str(only_case.pk)).last()
    assert "source withdrawn" in json.dumps(closed.data)
    assert AuditEvent.objects.filter(action="forum.inbound_revoked").count() == 2

    # Pulling again changes nothing more.
    PullCursor.objects.update(added_after="")
    assert _pull().revoked == 0 and InboundReReview.objects.count() == 1


def test_case_with_other_evidence_stays_open_after_revocation(forum_hub, world):
    lab = SecondLab()
    _, case = world.account("acct_has_own_flags", decided=False, flags=[{"simhash": "bbbbbbbbbbbbbbbb"}])
    indicator = lab.indicator("bbbbbbbbbbbbbbbb")
    _post(forum_hub, lab.bundle([indicator]))
    _pull()
    Flag.objects.filter(detector__slug="forum").update(case=case)
    _post(forum_hub, lab.bundle([_revoked(indicator, T0 + timedelta(days=2))]))
    _pull()
    case.refresh_from_db()
    assert case.state == Case.State.IN_REVIEW and not InboundReReview.objects.exists()


@pytest.mark.parametrize(("tlp", "reshared"), [(Tlp.AMBER_STRICT, False), (Tlp.RED, False), (Tlp.GREEN, True)])
def test_another_labs_strict_intelligence_is_never_reshared(forum_hub, world, sharing_people, tlp, reshared):
    from reviewapp.forum import services

    lab = SecondLab(tlp)
    campaign, accounts = world.campaign(5)
    peer_simhash = "c0ffee00c0ffee00"
    # Our own flags on the accounts carry 9f3c…; a peer's fingerprint of one of them comes in as a forum flag.
    _post(forum_hub, lab.bundle([*lab.accounts([account_pseudonym(accounts[0].external_id)]),
                                 lab.indicator(peer_simhash)]))
    _pull()
    forum_flag = _forum_flags().get()
    with pgtrigger.ignore("flags.Flag:flags_evidence_only_purged"):  # a peer's fingerprint on it, set up by hand
        Flag.objects.filter(pk=forum_flag.pk).update(
            evidence={**forum_flag.evidence, "template_simhash64": peer_simhash})
    if not reshared:  # not even offered to the proposer, and refused if asked for
        with pytest.raises(services.ShareError, match=peer_simhash):
            services.share_propose(
                proposer=sharing_people["reviewer"], source=campaign, collection_id=FRONTIER,
                choice=ShareChoice(campaign_summary=True, fingerprints=frozenset({"9f3c0a77e41b2d10", peer_simhash})))
    proposal = services.share_propose(
        proposer=sharing_people["reviewer"], source=campaign, collection_id=FRONTIER,
        choice=ShareChoice(campaign_summary=True,
                           fingerprints=frozenset({"9f3c0a77e41b2d10", *([peer_simhash] if reshared else [])})))
    canonical = bundle_build(services.current_version(proposal)).canonical
    assert_valid_bundle(canonical)
    assert (peer_simhash in canonical.decode()) is reshared


def test_feedback_is_an_opinion_with_counts_only(forum_hub, world, sharing_people):
    lab = SecondLab()
    account, _ = world.account("acct_researcher_xyz", flags=[])
    observed = lab.accounts([account_pseudonym(account.external_id)])
    _post(forum_hub, lab.bundle(observed))
    _pull()
    obj = InboundObject.objects.get(stix_id=observed[-1]["id"])
    with pytest.raises(Exception, match="sharing officer"):
        inbound.feedback_publish(officer=sharing_people["reviewer"], inbound=obj, verdict="confirmed")
    with pytest.raises(inbound.InboundError, match="verdict"):
        inbound.feedback_publish(officer=sharing_people["officer"], inbound=obj, verdict="maybe")
    push = inbound.feedback_publish(officer=sharing_people["officer"], inbound=obj,
                                    verdict=inbound.Verdict.FALSE_POSITIVE_RESEARCHER)
    assert push.purpose == ForumPush.Purpose.FEEDBACK
    assert_valid_bundle(push.bundle)
    text = json.dumps(push.bundle)
    assert account.external_id not in text and account_pseudonym(account.external_id) not in text
    opinion = next(o for o in push.bundle["objects"] if o["type"] == "opinion")
    assert opinion["object_refs"] == [obj.stix_id] and opinion["opinion"] == "strongly-disagree"
    assert opinion["explanation"] == "false positive: a researcher (1 local account matched)"
    assert opinion["object_marking_refs"] == [MARKING_IDS[Tlp.AMBER_STRICT]]
    assert AuditEvent.objects.filter(action="forum.feedback_published").count() == 1


def test_feedback_read_back_from_the_hub_as_the_peer_sees_it(forum_hub, world, sharing_people):
    """The opinion leaves through the outbox and the hub holds it: what the other lab reads (match[type]=opinion)
    names its object and counts, nothing local; our own pull never takes it back as inbound."""
    from .conftest import deliver_forum_outbox

    lab = SecondLab()
    accounts = [world.account(f"acct_feedback_{n}", flags=[])[0] for n in range(2)]
    observed = lab.accounts([account_pseudonym(a.external_id) for a in accounts])
    _post(forum_hub, lab.bundle(observed))
    _pull()
    obj = InboundObject.objects.get(stix_id=observed[-1]["id"])
    push = inbound.feedback_publish(officer=sharing_people["officer"], inbound=obj, verdict=inbound.Verdict.CONFIRMED)
    deliver_forum_outbox()
    push.refresh_from_db()
    assert push.state == ForumPush.State.SENT, push.failures

    (opinion,) = forum_hub.objects(type="opinion")  # match[type]=opinion
    sent = next(o for o in push.bundle["objects"] if o["type"] == "opinion")
    assert opinion == sent  # byte for byte what the service built, read back
    assert opinion["object_refs"] == [obj.stix_id] and opinion["opinion"] == "agree"
    assert opinion["explanation"] == "confirmed (2 local accounts matched)"
    assert opinion["created_by_ref"] == sharer_identity().id
    assert opinion["object_marking_refs"] == [MARKING_IDS[Tlp.AMBER_STRICT]]
    text = json.dumps(forum_hub.objects())
    for account in accounts:  # the peer's pseudonyms are its own objects; nothing of ours names an account
        assert account.external_id not in text
        assert account_pseudonym(account.external_id) not in json.dumps(opinion)
    assert_valid_bundle({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": [opinion]})

    result = _pull()
    assert result.stored == 0 and not InboundObject.objects.filter(stix_type="opinion").exists()
