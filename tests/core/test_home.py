"""The staff home page shows each person their work, with counts and a link to act on each item: a reviewer's
claims (with the claim's date and time), decisions sent back to them and the queues; a senior's approvals (never
their own decisions) and appeals by review due date; an admin's locked-out sign-ins, unchosen passwords, set-aside
flags and failed deliveries; a compliance officer's unwitnessed tail and latest events; a sharing officer's
campaigns. Each count is one query and no list costs a query per row."""

from __future__ import annotations

import re

import pytest
from django.db import transaction
from django.urls import reverse

from reviewapp.audit.services import SYSTEM
from reviewapp.cases.models import Decision
from reviewapp.cases.services.claims import case_claim
from reviewapp.cases.services.decisions import decision_send_back
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.services import outbox_enqueue
from reviewapp.people.roles import Role
from reviewapp.people.services import staff_create
from tests.appeals.review_fixtures import (  # noqa: F401 (fixtures, asked for by name)
    appeal_staff_fixture,
    attachments_dir_fixture,
    contested_fixture,
    decide,
    file_appeal,
    flagged_case,
)
from tests.support import sequence_audit

pytestmark = pytest.mark.django_db


def _home(client, user) -> str:
    client.force_login(user)
    response = client.get(reverse("core:home"))
    assert response.status_code == 200
    return re.sub(r"\s+", " ", response.content.decode())


def _count(html: str, title: str) -> int:
    """The count beside a section's heading."""
    match = re.search(rf'>{re.escape(title)} <span class="badge">(\d+)</span></h2>', html)
    assert match, title
    return int(match.group(1))


def _section(html: str, key: str) -> str:
    match = re.search(rf'<section id="{key}".*?</section>', html)
    assert match, key
    return match.group(0)


def test_a_reviewer_sees_their_claims_with_date_and_time_and_the_queues(policy, make_staff, client):
    rhea, ravi = make_staff(Role.REVIEWER, username="rhea"), make_staff(Role.REVIEWER, username="ravi")
    mine = case_claim(reviewer=rhea, case=flagged_case("template-miner", "acct_mine"))
    theirs = case_claim(reviewer=ravi, case=flagged_case("template-miner", "acct_theirs"))

    html = _home(client, rhea)
    claims = _section(html, "claims")
    assert _count(html, "Your claimed cases") == 1
    assert f'href="{reverse("review:case", args=[mine.pk])}"' in claims and "acct_mine" in claims
    assert f'{mine.lease_expires_at:%Y-%m-%d %H:%M} UTC (' in claims  # the date with the time, and time left
    assert "acct_theirs" not in html and theirs.pk
    queues = _section(html, "queues")
    assert f'href="{reverse("review:queue", args=[mine.queue])}"' in queues
    assert _count(html, "Sent back to you") == 0 and "No decision of yours was sent back." in html


def test_a_senior_sees_what_awaits_their_approval_never_their_own_and_what_was_sent_back(policy, make_staff, client):
    dana, ava = make_staff(Role.SENIOR_REVIEWER, username="dana"), make_staff(Role.SENIOR_REVIEWER, username="ava")
    severe = decide(flagged_case("template-miner", "acct_severe"), reviewer=dana, clauses=[policy["competing"]])
    assert severe.state == Decision.State.AWAITING_APPROVAL

    html = _home(client, dana)
    assert _count(html, "Awaiting your approval") == 0  # her own decision: someone else approves it
    assert _count(html, "Your decisions waiting for a second approval") == 1 and "acct_severe" in html
    html = _home(client, ava)
    assert _count(html, "Awaiting your approval") == 1
    approvals = _section(html, "approvals")
    assert f'href="{reverse("review:case", args=[severe.case_id])}#decision"' in approvals and "dana" in approvals
    assert f'href="{reverse("review:approvals")}"' in approvals

    decision_send_back(approver=ava, decision=severe, reason="Cite the usage numbers.")
    html = _home(client, dana)
    sent_back = _section(html, "sent-back")
    assert _count(html, "Sent back to you") == 1 and "Cite the usage numbers." in sent_back
    assert f'href="{reverse("review:case", args=[severe.case_id])}"' in sent_back
    assert _count(html, "Your claimed cases") == 0  # listed once, as sent back
    assert _count(_home(client, ava), "Awaiting your approval") == 0


def test_a_senior_sees_appeals_by_review_due_and_whether_they_took_part(contested, policy, client):
    staff = contested.staff
    later = file_appeal(decide(flagged_case("template-miner", "acct_plain"), reviewer=staff.decider,
                               clauses=[policy["extraction"]]))
    html = _home(client, staff.outsider)
    due = _section(html, "appeals-due")
    assert _count(html, "Appeals waiting for a reviewer, review due first") == 2
    assert due.index(f"Appeal {contested.appeal.pk} ·") < due.index(f"Appeal {later.pk} ·")  # filed first, due first
    assert f'{contested.appeal.review_due_at:%Y-%m-%d %H:%M} UTC' in due and "You took part" not in due
    assert f'href="{reverse("appeal-review:appeal", args=[contested.appeal.pk])}"' in due

    due = _section(_home(client, staff.decider), "appeals-due")
    assert due.count("You took part") == 2

    from appeals.services import appeal_claim

    appeal_claim(reviewer=staff.outsider, appeal=later)
    html = _home(client, staff.outsider)
    assert _count(html, "Appeals you are reviewing") == 1 and f"Appeal {later.pk} ·" in _section(html, "my-appeals")
    assert _count(html, "Appeals waiting for a reviewer, review due first") == 1


def test_an_admin_sees_what_needs_attention(make_staff, client):
    admin = make_staff(Role.ADMIN)
    staff_create(actor=SYSTEM, username="newbie", role=Role.REVIEWER)  # a one-time password, not changed yet
    with transaction.atomic():
        failed = outbox_enqueue(kind="email", payload={"to": ["h@example.org"], "subject": "s", "body": "b"},
                                idempotency_key="k-failed")
    OutboxMessage.objects.filter(pk=failed.pk).update(state="failed", next_attempt_at=None)

    html = _home(client, admin)
    assert re.search(r'<strong class="num status-bad">1</strong> staff who have not chosen their password yet', html)
    assert re.search(r'href="/outbox/\?state=failed"><strong class="num status-bad">1</strong> deliveries that failed',
                     html)
    assert re.search(r'<strong class="num">0</strong> sign-ins locked out', html)
    assert re.search(r'<strong class="num">0</strong> flags set aside by grouping', html)
    assert "Your claimed cases" not in html and "Awaiting your approval" not in html


def test_a_compliance_officer_sees_the_unwitnessed_tail_and_the_latest_events(make_staff, client):
    cora = make_staff(Role.COMPLIANCE_OFFICER)
    make_staff(Role.REVIEWER, username="rhea")
    sequence_audit()
    html = _home(client, cora)
    audit = _section(html, "audit")
    assert "No checkpoint has been signed yet." in audit
    assert re.search(r"<strong>\d+</strong> events? after the last signed checkpoint", audit)
    assert "Staff member created" in audit and f'href="{reverse("audit:events")}"' in audit


def test_a_sharing_officer_sees_the_campaigns_with_open_cases(policy, make_staff, client, detector):
    from tests.conftest import flag_payload
    from tests.factories import ingest_and_group

    ingest_and_group(detector, [flag_payload(f"c-{n}", account_id=f"acct_c{n}", cluster_id="cg-7") for n in range(3)])
    html = _home(client, make_staff(Role.SHARING_OFFICER))
    campaigns = _section(html, "campaigns")
    assert re.search(r'<a href="/campaigns/\d+/">[^<]+</a></td><td class="num">3</td>', campaigns)


@pytest.mark.parametrize("role", list(Role))
def test_the_home_page_costs_the_same_queries_for_one_item_as_for_many(policy, make_staff, client, role,
                                                                       django_assert_max_num_queries):
    """Each list is one query and each count one; rows never add queries (here: claims, approvals, send-backs)."""
    user = make_staff(role, username="me")
    other = make_staff(Role.SENIOR_REVIEWER, username="other")

    def work(n: int, start: int) -> None:
        for i in range(start, start + n):
            if user.has_perm("cases.claim_case"):
                case_claim(reviewer=user, case=flagged_case("template-miner", f"acct_mine{i}"))
            severe = decide(flagged_case("template-miner", f"acct_other{i}"), reviewer=other,
                            clauses=[policy["competing"]])
            if user.has_perm("cases.approve_decision") and i % 2:
                decision_send_back(approver=user, decision=severe, reason="Again.")

    def queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        client.force_login(user)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("core:home")).status_code == 200
        return len(captured)

    work(1, 0)
    few = queries()
    work(5, 1)
    assert queries() == few
    with django_assert_max_num_queries(30):
        client.get(reverse("core:home"))


def test_a_sharing_officer_sees_their_forum_work_as_counts_linking_to_the_lists(policy, make_staff, client, detector,
                                                                               monkeypatch):
    """Proposals waiting for them (not their own), pushes pending / failed / partially accepted, the last 7 days'
    withdrawals, inbound matches awaiting review: each a count linking to its list, costing the same queries for
    one item as for many."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from reviewapp.forum import services as forum_services
    from reviewapp.forum.content import ShareChoice
    from reviewapp.forum.models import ForumPush
    from tests.forum.conftest import FRONTIER, World
    from tests.forum.withdrawn_source import decided_case_with_withdrawn_source

    officer = make_staff(Role.SHARING_OFFICER, username="otto")
    world = World(policy, detector, make_staff(Role.REVIEWER, username="rita"))

    def work(n: int, start: int) -> None:
        for i in range(start, start + n):
            _account, case = world.account(f"acct_share{i}")
            forum_services.share_propose(proposer=world.reviewer, source=case, collection_id=FRONTIER,
                                         choice=ShareChoice())
            withdrawn = forum_services.share_propose(proposer=world.reviewer, source=world.account()[1],
                                                     collection_id=FRONTIER, choice=ShareChoice())
            forum_services.share_withdraw(officer=officer, proposal=withdrawn, reason="Wrong cluster.")
            for state in ("pending", "pending", "failed", "partial", "sent"):
                ForumPush.objects.create(purpose="share", collection_id=FRONTIER, state=state,
                                         bundle_sha256="0" * 64, created_at=timezone.now())
            decided_case_with_withdrawn_source(world, monkeypatch, external_id=f"acct_match{i}",
                                               simhash=f"{i + 1:x}" * 16, revoke=False, decided=False)

    def count(html: str, url: str, label: str) -> int:
        match = re.search(rf'href="{re.escape(url)}"><strong class="num[^"]*">(\d+)</strong> {re.escape(label)}</a>',
                          html)
        assert match, label
        return int(match.group(1))

    def queries() -> int:
        client.force_login(officer)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("core:home")).status_code == 200
        return len(captured)

    work(1, 0)
    html = _home(client, officer)
    expected = {("/forum/shares/#to-review", "share proposals waiting for your approval"): 1,
                ("/forum/pushes/?state=pending", "deliveries to the hub pending"): 2,
                ("/forum/pushes/?state=failed", "deliveries to the hub failed"): 1,
                ("/forum/pushes/?state=partial", "deliveries partially accepted by the hub"): 1,
                ("/forum/withdrawals/?days=7", "withdrawals sent in the last 7 days"): 1,
                ("/forum/matches/?awaiting=1", "inbound matches awaiting review"): 1}
    assert {key: count(html, *key) for key in expected} == expected
    few = queries()
    work(3, 1)
    assert queries() == few
    html = _home(client, officer)
    assert count(html, "/forum/pushes/?state=pending", "deliveries to the hub pending") == 8
    assert count(html, "/forum/matches/?awaiting=1", "inbound matches awaiting review") == 4
