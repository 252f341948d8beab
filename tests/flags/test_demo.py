"""The demo campaign: clusters become campaigns, heavy users and researchers stay apart, a rerun changes nothing."""

import pytest
from django.db.models import Count, F

from flags.demo import CLUSTERS, HEAVY_USERS, ID_PREFIX, RESEARCHERS, demo_campaign_ensure
from flags.models import Flag, FlagBatch
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify
from reviewapp.audit.services import Actor
from reviewapp.cases.models import Account, Campaign, Case
from reviewapp.cases.services import account_profile_set
from tests.support import sequence_audit

pytestmark = pytest.mark.django_db
SEEDER = Actor(type="system", id="seed_demo", display="seed_demo (demo data)")
HEAVY = [h[0] for h in HEAVY_USERS]
RESEARCH = [r[0] for r in RESEARCHERS]


def counts() -> dict[str, int]:
    return {"accounts": Account.objects.count(), "flags": Flag.objects.count(), "cases": Case.objects.count(),
            "campaigns": Campaign.objects.count(), "batches": FlagBatch.objects.count(),
            "events": AuditEvent.objects.count()}


def test_the_campaign_has_clusters_heavy_users_and_researchers():
    summary = demo_campaign_ensure(actor=SEEDER)

    cluster_accounts = sum(c.size for c in CLUSTERS)
    assert summary.accounts == Account.objects.count() == cluster_accounts + len(HEAVY) + len(RESEARCH)
    assert summary.flags == Flag.objects.count() and 200 <= summary.flags <= 1000
    assert summary.campaigns == Campaign.objects.count() == len(CLUSTERS)
    # Each cluster is one campaign holding exactly its accounts.
    for cluster in CLUSTERS:
        campaign = Campaign.objects.get(cluster_id=cluster.cluster_id, detector_slug="cluster-graph")
        members = set(campaign.cases.values_list("account__external_id", flat=True))
        assert len(members) == cluster.size and all(m.startswith(f"acct_{cluster.account_prefix}_") for m in members)
    assert set(Flag.objects.values_list("signal", flat=True)) >= {
        "templated_prompts", "reasoning_extraction", "capability_sweep", "volume_anomaly", "account_cluster"}
    assert set(Flag.objects.values_list("detector__slug", flat=True)) == {"template-miner", "volume-watch",
                                                                         "cluster-graph"}
    assert all(f.startswith(ID_PREFIX) for f in Flag.objects.values_list("external_id", flat=True))

    # Ordinary heavy users: volume only, low scores, no campaign.
    heavy = Case.objects.filter(account__external_id__in=HEAVY)
    assert heavy.count() == len(HEAVY)
    assert all(case.signals == ["volume_anomaly"] and case.max_score < 0.4 and case.campaign_id is None
               for case in heavy)

    # Researchers are enrolled, flagged, and outside the clusters.
    researchers = Account.objects.filter(researcher_programme=True)
    assert sorted(researchers.values_list("external_id", flat=True)) == sorted(RESEARCH)
    assert summary.researchers == len(RESEARCH)
    for account in researchers:
        assert account.contact_email.endswith("@example.org") and account.region
        case = account.cases.get()
        assert case.flag_count >= 2 and case.campaign_id is None
    assert not Account.objects.filter(contact_email="").exists()

    # Template evidence reads like the contract's example.
    evidence = Flag.objects.filter(signal="reasoning_extraction", account_external_id__startswith="acct_hl_") \
        .first().evidence
    assert len(evidence["template_simhash64"]) == 16 and evidence["slot_count"] == 2
    assert evidence["excerpts"] and all(e.startswith(("Solve step by step", "You are a meticulous tutor"))
                                        for e in evidence["excerpts"])


def test_every_flag_has_a_case_and_every_account_one_open_case():
    summary = demo_campaign_ensure(actor=SEEDER)
    assert not Flag.objects.filter(case__isnull=True).exists()
    assert summary.cases == Case.objects.count() == Account.objects.count()
    open_per_account = (Case.objects.filter(state__in=Case.OPEN_STATES).values("account")
                        .annotate(n=Count("id")).values_list("n", flat=True))
    assert set(open_per_account) == {1}
    # Every flag is attached to its own account's case.
    assert not Flag.objects.exclude(case__account__external_id=F("account_external_id")).exists()
    # Profile changes went through the service and its audit event.
    assert AuditEvent.objects.filter(action=AuditAction.ACCOUNT_PROFILE_UPDATED).count() == summary.accounts


def test_a_second_run_changes_nothing_and_the_chain_verifies():
    first = demo_campaign_ensure(actor=SEEDER)
    before = counts()
    head = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()

    second = demo_campaign_ensure(actor=SEEDER)

    assert second == first
    assert counts() == before
    assert not AuditEvent.objects.filter(id__gt=head).exists()
    sequence_audit()
    report = chain_verify()
    assert report.ok and report.count == before["events"]


def test_a_second_run_keeps_a_profile_changed_by_hand():
    demo_campaign_ensure(actor=SEEDER)
    account = Account.objects.get(external_id=HEAVY[0])
    account_profile_set(actor=SEEDER, account=account, region="ap-south", researcher_programme=True)
    demo_campaign_ensure(actor=SEEDER)
    account.refresh_from_db()
    assert account.region == "ap-south" and account.researcher_programme

