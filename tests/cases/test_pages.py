"""The reviewer's pages: queues, claiming, the case workspace, evidence, decisions, approvals, campaigns,
statements — who sees what, and that every button ends in the one service that owns the change."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM
from reviewapp.cases.models import Account, Case, CaseNote, Decision, StatementOfReasons
from reviewapp.cases.services import account_profile_set
from reviewapp.cases.services.claims import case_claim
from reviewapp.cases.services.decisions import decision_record
from reviewapp.people.roles import Role
from reviewapp.policy.models import Clause
from reviewapp.policy.services import policies_load
from tests.conftest import flag_payload
from tests.factories import ingest_and_group

pytestmark = pytest.mark.django_db

EXCERPT = "Solve step by step. Number each step and justify it. Problem: find all integers n"


@pytest.fixture
def policy(db):
    [result] = policies_load(directory=settings.POLICIES_DIR, actor=SYSTEM)
    return result.version


def clause(ref: str) -> Clause:
    return Clause.objects.get(ref=ref)


@pytest.fixture
def reviewer(make_staff):
    return make_staff(Role.REVIEWER, username="rhea")


@pytest.fixture
def senior(make_staff):
    return make_staff(Role.SENIOR_REVIEWER, username="sam")


@pytest.fixture
def case(detector, policy):
    """One extraction case with evidence, and its account in a campaign with two other accounts."""
    ingest_and_group(detector, [
        flag_payload(1, account_id="acct_main", signal="reasoning_extraction", score=0.93, cluster_id="c-7",
                     evidence={"excerpts": [EXCERPT], "template_share": 0.91}),
        flag_payload(2, account_id="acct_main", signal="templated_prompts", score=0.7, cluster_id="c-7",
                     observed_from="2026-11-22T00:00:00Z", observed_to="2026-11-23T00:00:00Z", request_count=9000),
        flag_payload(3, account_id="acct_peer", signal="templated_prompts", cluster_id="c-7"),
        flag_payload(4, account_id="acct_lab", signal="templated_prompts", cluster_id="c-7"),
    ])
    return Case.objects.get(account__external_id="acct_main")


def as_user(client, user):
    client.force_login(user)
    return client


def claimed(case, reviewer):
    return case_claim(reviewer=reviewer, case=case)


def decide(client, case, **fields):
    data = {"clauses": [clause(ref).pk for ref in fields.pop("refs", ["UP-2.1"])], "action": "warn",
            "rationale": "Template share 0.91 over 9,000 requests.", "facts_for_holder": "Your prompts were filled "
            "from one template 9,000 times in two days."}
    data.update(fields)
    return client.post(reverse("review:case-decide", args=[case.pk]), data)


def events(action) -> int:
    return AuditEvent.objects.filter(action=action).count()


# ── Queues ────────────────────────────────────────────────────────────────────────────────────────────


def test_queues_page_counts_open_unclaimed_and_overdue_cases_per_queue(client, detector, reviewer, policy):
    ingest_and_group(detector, [flag_payload(n, signal="reasoning_extraction") for n in range(3)]
         + [flag_payload(9, signal="volume_anomaly")])
    first = Case.objects.filter(queue="extraction").first()
    claimed(first, reviewer)
    Case.objects.filter(pk=first.pk).update(sla_due_at=timezone.now() - timedelta(hours=1))
    page = as_user(client, reviewer).get(reverse("review:queues")).content.decode()
    row = re.search(r"Model extraction</a></th>(.*?)</tr>", page, re.S).group(1)
    assert re.findall(r'class="num">(?:<span class="status-bad">)?(\d+)', row) == ["3", "2", "1"]
    assert "<svg" in page and "<title id=\"queues-chart-title\">" in page
    assert "Model extraction: 3 open, 2 unclaimed, 1 overdue" in page


def test_queue_lists_open_cases_by_priority_then_age_and_marks_the_overdue(client, detector, reviewer, policy):
    ingest_and_group(detector, [
        flag_payload(1, account_id="acct_low", score=0.1, request_count=10),
        flag_payload(2, account_id="acct_high", signal="reasoning_extraction", score=0.99, request_count=5_000_000),
        flag_payload(3, account_id="acct_mid", score=0.6, request_count=50_000),
    ])
    Case.objects.filter(account__external_id="acct_low").update(sla_due_at=timezone.now() - timedelta(minutes=5))
    page = as_user(client, reviewer).get(reverse("review:queue", args=["extraction"])).content.decode()
    assert re.findall(r'class="row-link">(acct_\w+)<', page) == ["acct_high", "acct_mid", "acct_low"]
    overdue_rows = re.findall(r'<tr class="overdue">.*?row-link">(acct_\w+)<', page, re.S)
    assert overdue_rows == ["acct_low"] and "Overdue</strong> by" in page


def test_queue_filters_by_signal_campaign_priority_and_account(client, detector, reviewer, policy):
    ingest_and_group(detector, [
        flag_payload(1, account_id="acct_a", signal="templated_prompts", score=0.1, request_count=1),
        flag_payload(2, account_id="acct_b", signal="reasoning_extraction", score=0.99, cluster_id="c-1",
                     request_count=3_000_000),
        flag_payload(3, account_id="acct_c", signal="capability_sweep", cluster_id="c-1"),
    ])
    client = as_user(client, reviewer)
    url = reverse("review:queue", args=["extraction"])
    from reviewapp.cases.models import Campaign

    def accounts(**params):
        return sorted(re.findall(r'class="row-link">(acct_\w+)<', client.get(url, params).content.decode()))

    assert accounts() == ["acct_a", "acct_b", "acct_c"]
    assert accounts(signal="capability_sweep") == ["acct_c"]
    assert accounts(campaign=Campaign.objects.get().pk) == ["acct_b", "acct_c"]
    assert accounts(priority_min=80) == ["acct_b"]
    assert accounts(account="_a") == ["acct_a"]
    assert client.get(reverse("review:queue", args=["nonsense"])).status_code == 404


def test_queue_page_queries_do_not_grow_with_the_cases(client, detector, reviewer, policy):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = as_user(client, reviewer)
    url = reverse("review:queue", args=["extraction"])
    ingest_and_group(detector, [flag_payload(n, cluster_id=f"c-{n % 2}") for n in range(3)])
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    ingest_and_group(detector, [flag_payload(n, cluster_id=f"c-{n % 3}") for n in range(3, 30)])
    claimed(Case.objects.first(), reviewer)
    with CaptureQueriesContext(connection) as many:
        assert len(re.findall("row-link", client.get(url).content.decode())) == 30
    assert len(many.captured_queries) == len(few.captured_queries)


def test_claim_next_takes_the_best_case_and_says_when_the_queue_is_empty(client, detector, reviewer, policy):
    ingest_and_group(detector, [flag_payload(1, account_id="acct_low", score=0.1),
                    flag_payload(2, account_id="acct_high", signal="reasoning_extraction", score=0.99)])
    client = as_user(client, reviewer)
    url = reverse("review:claim-next", args=["extraction"])
    assert client.get(url).status_code == 405  # a link cannot claim
    response = client.post(url)
    best = Case.objects.get(account__external_id="acct_high")
    assert response.status_code == 302 and response.url == reverse("review:case", args=[best.pk])
    best.refresh_from_db()
    assert best.assignee == reviewer and best.state == Case.State.IN_REVIEW
    client.post(url)
    response = client.post(url, follow=True)
    assert response.redirect_chain[-1][0] == reverse("review:queue", args=["extraction"])
    assert "Nothing to claim in Model extraction" in response.content.decode()


# ── The case workspace ────────────────────────────────────────────────────────────────────────────────


def test_a_reviewer_who_has_not_claimed_sees_the_summary_but_not_the_evidence_or_the_decision_form(
        client, case, reviewer, make_staff):
    other = make_staff(Role.REVIEWER)
    claimed(case, other)
    page = as_user(client, reviewer).get(reverse("review:case", args=[case.pk])).content.decode()
    assert "acct_main" in page and "reasoning_extraction" in page and "template-miner" in page
    assert f"Claimed by <strong>{other.username}</strong>" in page
    assert "acct_peer" in page and "acct_lab" in page  # the campaign's other accounts
    assert "<svg" in page and 'id="timeline-desc"' in page and "Timeline numbers" in page
    # The chart's numbers, per day: a flag's requests spread over the days its window covers.
    days = re.findall(r'<tr><td>(2026-11-\d\d)</td><td class="num">(\d+)</td><td class="num">(\d+)</td>', page)
    assert days == [("2026-11-20", "1", "600"), ("2026-11-21", "1", "600"), ("2026-11-22", "1", "4500"),
                    ("2026-11-23", "1", "4500")]
    assert EXCERPT not in page
    assert "Show evidence" not in page and reverse("review:case-evidence", args=[case.pk]) not in page
    assert 'id="decision-form"' not in page and "Only the reviewer holding the case decides it." in page
    assert events(AuditAction.EVIDENCE_OPENED) == 0


def test_the_assignee_sees_the_decision_form_with_the_clauses_in_force(client, case, reviewer):
    claimed(case, reviewer)
    page = as_user(client, reviewer).get(reverse("review:case", args=[case.pk])).content.decode()
    assert 'id="decision-form"' in page and "Show evidence" in page
    assert page.count('name="clauses"') == Clause.objects.count() == 11
    assert "UP-1.1" in page and "You may not use outputs of our models" in page  # the clause text beside the form
    assert EXCERPT not in page  # evidence only on demand


def test_evidence_opened_by_the_assignee_shows_excerpts_and_writes_one_access_event(client, case, reviewer):
    claimed(case, reviewer)
    response = as_user(client, reviewer).post(reverse("review:case-evidence", args=[case.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert EXCERPT in page and "template_share" in page
    opened = AuditEvent.objects.filter(action=AuditAction.EVIDENCE_OPENED)
    assert opened.count() == 1
    assert opened.get().actor_display == "rhea" and opened.get().target_id == str(case.pk)
    assert client.get(reverse("review:case-evidence", args=[case.pk])).status_code == 405


def test_evidence_is_not_found_for_anyone_but_the_assignee_and_nothing_is_recorded(client, case, reviewer, make_staff):
    response = as_user(client, reviewer).post(reverse("review:case-evidence", args=[case.pk]))
    assert response.status_code == 404 and EXCERPT not in response.content.decode()
    claimed(case, make_staff(Role.REVIEWER))
    assert client.post(reverse("review:case-evidence", args=[case.pk])).status_code == 404
    assert events(AuditAction.EVIDENCE_OPENED) == 0


def test_claim_and_release_from_the_case_page(client, case, reviewer):
    client = as_user(client, reviewer)
    client.post(reverse("review:case-claim", args=[case.pk]))
    case.refresh_from_db()
    assert case.assignee == reviewer
    response = client.post(reverse("review:case-release", args=[case.pk]))
    assert response.url == reverse("review:queue", args=["extraction"])
    case.refresh_from_db()
    assert case.assignee is None and case.state == Case.State.NEW


def test_someone_elses_live_claim_is_refused_with_the_reason(client, case, reviewer, make_staff):
    claimed(case, make_staff(Role.REVIEWER, username="otto"))
    page = as_user(client, reviewer).post(reverse("review:case-claim", args=[case.pk]), follow=True).content.decode()
    assert "Not claimed: case" in page and "claimed by otto" in page


def test_notes_are_listed_and_added(client, case, reviewer):
    client = as_user(client, reviewer)
    response = client.post(reverse("review:case-note", args=[case.pk]), {"text": "Same template as case 12."})
    assert response.status_code == 302 and response.url.endswith("#notes")
    assert CaseNote.objects.get().author == reviewer
    assert "Same template as case 12." in client.get(reverse("review:case", args=[case.pk])).content.decode()
    assert client.post(reverse("review:case-note", args=[case.pk]), {"text": ""}).status_code == 422


# ── Decisions and second approval ─────────────────────────────────────────────────────────────────────


def test_a_minor_decision_is_enforced_at_once_with_its_statement(client, case, reviewer):
    claimed(case, reviewer)
    response = decide(as_user(client, reviewer), case)
    assert response.status_code == 302 and response.url == reverse("review:case", args=[case.pk])
    decision = Decision.objects.get()
    assert decision.state == Decision.State.ENFORCED and decision.action == "warn"
    assert StatementOfReasons.objects.filter(decision=decision).exists()
    page = client.get(response.url).content.decode()
    assert "recorded and enforced" in page and "Decided" in page
    assert reverse("review:statement", args=[decision.statement.pk]) in page


def test_a_termination_waits_for_second_approval(client, case, reviewer):
    claimed(case, reviewer)
    decide(as_user(client, reviewer), case, refs=["UP-2.1"], action="terminate")
    decision = Decision.objects.get()
    case.refresh_from_db()
    assert decision.state == Decision.State.AWAITING_APPROVAL and case.state == Case.State.AWAITING_APPROVAL
    assert not StatementOfReasons.objects.exists()
    page = client.get(reverse("review:case", args=[case.pk])).content.decode()
    assert "Awaiting second approval: decision" in page and "Approve and enforce" not in page


def test_a_refused_decision_is_explained_beside_the_form_and_keeps_what_was_typed(client, case, reviewer):
    claimed(case, reviewer)
    response = decide(as_user(client, reviewer), case, refs=["UP-4.1"], action="terminate",
                      rationale="My careful rationale")
    assert response.status_code == 422
    page = response.content.decode()
    error = re.search(r'<div class="error-box" role="alert"><p>(Not recorded: .*?)</p>', page).group(1)
    assert "UP-4.1" in error and "terminate" in error  # the service's own words, beside the form
    assert "My careful rationale</textarea>" in page
    assert re.search(rf'value="{clause("UP-4.1").pk}" id="clause-\d+"[^>]* checked', page)
    assert not Decision.objects.exists()
    response = decide(client, case, action="suspend")  # a suspension needs its duration
    assert response.status_code == 422 and "needs a duration" in response.content.decode()
    response = decide(client, case, rationale="")
    assert response.status_code == 422 and "Write the rationale." in response.content.decode()


def test_a_reviewer_cannot_decide_a_case_they_do_not_hold(client, case, reviewer):
    response = decide(as_user(client, reviewer), case)
    assert response.status_code == 403 and "Claim case" in response.content.decode()
    assert not Decision.objects.exists()


def test_submit_and_next_claims_the_next_case_of_the_queue(client, case, reviewer):
    claimed(case, reviewer)
    response = decide(as_user(client, reviewer), case, next="1")
    following = Case.objects.get(assignee=reviewer, state=Case.State.IN_REVIEW)
    assert following.pk != case.pk and response.url == reverse("review:case", args=[following.pk])


def test_another_senior_reviewer_approves_and_the_decider_cannot(client, case, senior, make_staff):
    claimed(case, senior)
    decide(as_user(client, senior), case, refs=["UP-1.1"], action="suspend", duration_days="30")
    decision = Decision.objects.get()
    assert decision.state == Decision.State.AWAITING_APPROVAL
    assert "Case " + str(case.pk) not in client.get(reverse("review:approvals")).content.decode()  # not their own
    response = client.post(reverse("review:decision-approve", args=[decision.pk]))
    assert response.status_code == 403 and "Not approved: Nobody approves their own decision." in (
        response.content.decode())
    decision.refresh_from_db()
    assert decision.state == Decision.State.AWAITING_APPROVAL

    second = as_user(client, make_staff(Role.SENIOR_REVIEWER, username="sena"))
    page = second.get(reverse("review:approvals")).content.decode()
    assert f"Case {case.pk} · acct_main" in page
    case_page = second.get(reverse("review:case", args=[case.pk])).content.decode()
    assert "Approve and enforce" in case_page and "Show evidence" in case_page  # the approver may read it
    response = second.post(reverse("review:decision-approve", args=[decision.pk]))
    assert response.url == reverse("review:case", args=[case.pk])
    decision.refresh_from_db()
    case.refresh_from_db()
    assert decision.state == Decision.State.ENFORCED and decision.approved_by.username == "sena"
    assert case.state == Case.State.DECIDED and StatementOfReasons.objects.filter(decision=decision).exists()


def test_a_plain_reviewer_cannot_approve(client, case, reviewer, senior):
    claimed(case, senior)
    decision_record(reviewer=senior, case=case, clauses=[clause("UP-1.1")], action="terminate", rationale="r",
                    facts_for_holder="f")
    decision = Decision.objects.get()
    assert as_user(client, reviewer).post(reverse("review:decision-approve", args=[decision.pk])).status_code == 403
    assert client.get(reverse("review:approvals")).status_code == 403


def test_sending_back_needs_a_reason_and_returns_the_case_to_its_reviewer(client, case, reviewer, senior):
    claimed(case, reviewer)
    decide(as_user(client, reviewer), case, refs=["UP-1.1"], action="warn")
    decision = Decision.objects.get()
    approver = as_user(client, senior)
    response = approver.post(reverse("review:decision-send-back", args=[decision.pk]), {"reason": "  "})
    assert response.status_code == 422 and "Not sent back: say why the decision is sent back." in (
        response.content.decode())
    decision.refresh_from_db()
    assert decision.state == Decision.State.AWAITING_APPROVAL
    response = approver.post(reverse("review:decision-send-back", args=[decision.pk]),
                             {"reason": "Cite UP-2.1 too: the volume is the point."})
    assert response.url == reverse("review:approvals")
    decision.refresh_from_db()
    case.refresh_from_db()
    assert decision.state == Decision.State.SENT_BACK and case.state == Case.State.IN_REVIEW
    page = as_user(client, reviewer).get(reverse("review:case", args=[case.pk])).content.decode()
    assert 'id="decision-form"' in page
    # The banner at the top of the case says who sent it back, when, and why.
    banner = re.search(r'<div class="banner banner-warn" role="status" id="sent-back">(.*?)</div>', page, re.S)
    assert banner and page.index('id="sent-back"') < page.index('id="summary-h"')
    assert re.search(r"Sent back by sam on \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", banner.group(1))
    assert "Cite UP-2.1 too: the volume is the point." in banner.group(1)


# ── Campaigns ────────────────────────────────────────────────────────────────────────────────────────


def confirmed_campaign_decision(client, campaign_id: int, data: dict):
    """Submit a campaign decision, then confirm it on its confirmation page, as a reviewer would."""
    url = reverse("review:campaign-decide", args=[campaign_id])
    confirmation = client.post(url, data)
    assert confirmation.status_code == 200, confirmation.content.decode()[:2000]
    token = re.search(r'name="token" value="([^"]+)"', confirmation.content.decode()).group(1)
    return client.post(url, {**data, "token": token, "step": "confirm"})


CAMPAIGN_DECISION = {"action": "rate_limit", "duration_days": "14", "facts_for_holder": "Template fills.",
                     "rationale": "One template across the cluster.\nSame cadence."}


def campaign_data(**changes) -> dict:
    return {**CAMPAIGN_DECISION, "clauses": [clause("UP-2.1").pk], **changes}


def test_the_campaign_page_ticks_no_account_until_the_reviewer_selects_all(client, case, reviewer):
    account_profile_set(actor=SYSTEM, account=Account.objects.get(external_id="acct_lab"), researcher_programme=True)
    client = as_user(client, reviewer)
    page = client.get(reverse("review:campaign", args=[case.campaign_id])).content.decode()
    assert re.search(r'name="accounts" value="acct_main" id="account-\d+">', page)
    assert not re.search(r'name="accounts"[^>]* checked', page)
    assert "Select all 2 open accounts" in page and "not the 1 researcher-programme account" in page
    before = AuditEvent.objects.count()
    # Without JavaScript, "Select all" is a submit button: the page comes back with every open account ticked
    # (researchers still one by one) and what was typed kept, and nothing is decided.
    response = client.post(reverse("review:campaign-decide", args=[case.campaign_id]),
                           campaign_data(step="select_all", accounts=[]))
    page = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'value="acct_main" id="account-\d+" checked', page)
    assert re.search(r'value="acct_peer" id="account-\d+" checked', page)
    assert re.search(r'value="acct_lab" id="account-\d+">', page)
    assert "One template across the cluster." in page and "field-error" not in page
    assert not Decision.objects.exists() and AuditEvent.objects.count() == before


def test_a_campaign_decision_names_its_count_and_action_and_acts_only_once_confirmed(client, case, reviewer):
    client = as_user(client, reviewer)
    url = reverse("review:campaign-decide", args=[case.campaign_id])
    data = campaign_data(accounts=["acct_main", "acct_peer"])
    before = AuditEvent.objects.count()
    confirmation = client.post(url, data)
    page = confirmation.content.decode()
    assert confirmation.status_code == 200
    assert "<h1>Confirm: Rate-limit 2 accounts for 14 days</h1>" in page
    assert re.search(r'<button type="submit" name="step" value="confirm" class="button-danger">'
                     r'Rate-limit 2 accounts for 14 days</button>', page)
    assert "acct_main" in page and "acct_peer" in page and ">acct_lab<" not in page
    assert not Decision.objects.exists() and AuditEvent.objects.count() == before  # nothing happened yet

    response = confirmed_campaign_decision(client, case.campaign_id, data)
    assert response.status_code == 200 and "2 decided, 0 skipped." in response.content.decode()
    decided = Decision.objects.all()
    assert sorted(d.account.external_id for d in decided) == ["acct_main", "acct_peer"]
    assert {d.state for d in decided} == {Decision.State.ENFORCED} and {d.duration_days for d in decided} == {14}
    assert {d.rationale for d in decided} == {"One template across the cluster.\nSame cadence."}


def test_a_campaign_confirmation_only_confirms_what_it_showed(client, case, reviewer, make_staff):
    client = as_user(client, reviewer)
    url = reverse("review:campaign-decide", args=[case.campaign_id])
    data = campaign_data(accounts=["acct_main"])
    token = re.search(r'name="token" value="([^"]+)"', client.post(url, data).content.decode()).group(1)
    widened = client.post(url, {**data, "accounts": ["acct_main", "acct_peer", "acct_lab"], "token": token,
                                "step": "confirm"})
    assert widened.status_code == 409 and "Not decided: the decision changed after its confirmation page" in (
        widened.content.decode())
    assert "Confirm: Rate-limit 3 accounts for 14 days" in widened.content.decode()  # shown again, truthfully
    harsher = client.post(url, {**data, "duration_days": "90", "token": token, "step": "confirm"})
    assert harsher.status_code == 409
    unconfirmed = client.post(url, {**data, "step": "confirm"})
    assert unconfirmed.status_code == 409 and "was not confirmed on its confirmation page" in (
        unconfirmed.content.decode())
    someone_else = as_user(client, make_staff(Role.REVIEWER, username="ravi"))
    assert someone_else.post(url, {**data, "token": token, "step": "confirm"}).status_code == 409
    assert not Decision.objects.exists()


def test_changing_a_campaign_decision_from_its_confirmation_keeps_what_was_chosen(client, case, reviewer):
    client = as_user(client, reviewer)
    data = campaign_data(accounts=["acct_peer"], step="edit")
    response = client.post(reverse("review:campaign-decide", args=[case.campaign_id]), data)
    page = response.content.decode()
    assert response.status_code == 200 and "Review the decision for the chosen accounts" in page
    assert re.search(r'value="acct_peer" id="account-\d+" checked', page)
    assert re.search(r'value="acct_main" id="account-\d+">', page)
    assert "One template across the cluster." in page and not Decision.objects.exists()


def test_a_campaign_decision_leaves_researchers_out_unless_confirmed(client, case, reviewer):
    account_profile_set(actor=SYSTEM, account=Account.objects.get(external_id="acct_lab"), researcher_programme=True)
    client = as_user(client, reviewer)
    url = reverse("review:campaign", args=[case.campaign_id])
    page = client.get(url).content.decode()
    assert re.search(r'value="acct_lab" id="account-\d+">', page)  # a researcher: unchecked
    assert "Confirm researcher acct_lab" in page
    data = {"accounts": ["acct_main", "acct_peer", "acct_lab"], "clauses": [clause("UP-2.1").pk],
            "action": "warn", "rationale": "One template across the cluster.", "facts_for_holder": "Template fills."}
    confirmation = client.post(reverse("review:campaign-decide", args=[case.campaign_id]), data).content.decode()
    assert "Confirm: Warn 2 accounts" in confirmation
    assert "acct_lab</span>: researcher-programme account not confirmed" in confirmation
    response = confirmed_campaign_decision(client, case.campaign_id, data)
    page = response.content.decode()
    assert response.status_code == 200 and "2 decided, 1 skipped." in page
    assert "acct_lab</span>: researcher-programme account: confirm it individually" in page
    assert set(Decision.objects.values_list("account__external_id", flat=True)) == {"acct_main", "acct_peer"}

    data["researchers_confirmed"] = ["acct_lab"]
    assert "Confirm: Warn 1 account<" in client.post(
        reverse("review:campaign-decide", args=[case.campaign_id]), data).content.decode()
    page = confirmed_campaign_decision(client, case.campaign_id, data).content.decode()
    assert "1 decided, 2 skipped." in page
    assert Decision.objects.filter(account__external_id="acct_lab").exists()


def test_a_campaign_decision_needs_chosen_accounts(client, case, reviewer):
    response = as_user(client, reviewer).post(reverse("review:campaign-decide", args=[case.campaign_id]), {
        "clauses": [clause("UP-2.1").pk], "action": "warn", "rationale": "r", "facts_for_holder": "f"})
    assert response.status_code == 422 and "Choose at least one account." in response.content.decode()


def test_a_campaign_decision_above_the_threshold_waits_for_a_senior(client, case, reviewer, senior, settings):
    settings.CAMPAIGN_DECISION_APPROVAL_THRESHOLD = 2
    client = as_user(client, reviewer)
    data = campaign_data(action="warn", duration_days="", accounts=["acct_main", "acct_peer", "acct_lab"])
    confirmation = client.post(reverse("review:campaign-decide", args=[case.campaign_id]), data).content.decode()
    assert "Confirm: Warn 3 accounts" in confirmation
    assert "More than 2 accounts: each decision waits for a senior reviewer's second approval" in confirmation
    confirmed_campaign_decision(client, case.campaign_id, data)
    decided = list(Decision.objects.all())
    assert len(decided) == 3 and {d.state for d in decided} == {Decision.State.AWAITING_APPROVAL}
    assert not StatementOfReasons.objects.exists()
    assert as_user(client, senior).post(reverse("review:decision-approve", args=[decided[0].pk])).status_code == 302
    decided[0].refresh_from_db()
    assert decided[0].state == Decision.State.ENFORCED


# ── Statements ───────────────────────────────────────────────────────────────────────────────────────


def test_the_statement_page_and_its_dsa_export(client, case, reviewer):
    claimed(case, reviewer)
    decide(as_user(client, reviewer), case, action="suspend", duration_days="14")
    statement = StatementOfReasons.objects.get()
    page = client.get(reverse("review:statement", args=[statement.pk])).content.decode()
    assert "Statement of reasons No." in page and "UP-2.1 Automated extraction at scale" in page
    assert "Your prompts were filled from one template" in page and "14 days" in page
    export = client.get(reverse("review:statement-dsa", args=[statement.pk]))
    assert export.status_code == 200 and export.json()["decision_account"] == "DECISION_ACCOUNT_SUSPENDED"
    assert export.json()["puid"] == f"reviewapp-statement-{statement.pk}"


def test_a_warning_is_not_reported_to_the_transparency_database(client, case, reviewer):
    claimed(case, reviewer)
    decide(as_user(client, reviewer), case, action="warn")
    statement = StatementOfReasons.objects.get()
    export = client.get(reverse("review:statement-dsa", args=[statement.pk]))
    assert export.status_code == 409 and "restricts nothing" in export.json()["error"]
    assert "Not reported to the DSA Transparency Database" in client.get(
        reverse("review:statement", args=[statement.pk])).content.decode()


# ── Compliance, strangers, unknown ids ───────────────────────────────────────────────────────────────


def test_compliance_reads_every_page_but_every_change_is_refused(client, case, reviewer, senior, make_staff):
    claimed(case, reviewer)
    decide(as_user(client, reviewer), case, refs=["UP-1.1"], action="terminate")
    decision = Decision.objects.get()
    client = as_user(client, make_staff(Role.COMPLIANCE_OFFICER))
    for url in [reverse("review:queues"), reverse("review:queue", args=["extraction"]),
                reverse("review:case", args=[case.pk]), reverse("review:campaign", args=[case.campaign_id])]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert 'id="decision-form"' not in response.content.decode() and "Claim next" not in (
            response.content.decode())
    before = AuditEvent.objects.count()
    peer = Case.objects.get(account__external_id="acct_peer")
    for url, data in [
        (reverse("review:claim-next", args=["extraction"]), {}),
        (reverse("review:case-claim", args=[peer.pk]), {}),
        (reverse("review:case-release", args=[case.pk]), {}),
        (reverse("review:case-note", args=[case.pk]), {"text": "x"}),
        (reverse("review:case-decide", args=[peer.pk]), {"clauses": [clause("UP-2.1").pk], "action": "warn",
                                                         "rationale": "r", "facts_for_holder": "f"}),
        (reverse("review:decision-approve", args=[decision.pk]), {}),
        (reverse("review:decision-send-back", args=[decision.pk]), {"reason": "no"}),
        (reverse("review:campaign-decide", args=[case.campaign_id]), {"accounts": ["acct_peer"]}),
    ]:
        assert client.post(url, data).status_code == 403, url
    assert AuditEvent.objects.count() == before
    decision.refresh_from_db()
    assert decision.state == Decision.State.AWAITING_APPROVAL
    # Reading evidence is a read compliance is granted (roles.py), and it is audited like anyone's.
    assert EXCERPT in client.post(reverse("review:case-evidence", args=[case.pk])).content.decode()
    assert events(AuditAction.EVIDENCE_OPENED) == 1


def test_admins_cannot_open_the_reviewer_pages(client, case, make_staff):
    client = as_user(client, make_staff(Role.ADMIN))
    assert client.get(reverse("review:queues")).status_code == 403
    assert client.get(reverse("review:case", args=[case.pk])).status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(client, case):
    response = client.get(reverse("review:case", args=[case.pk]))
    assert response.status_code == 302 and response.url.startswith(reverse("people:login"))


@pytest.mark.parametrize("name", ["review:case", "review:campaign", "review:statement", "review:statement-dsa"])
def test_unknown_ids_are_not_found(client, reviewer, policy, name):
    assert as_user(client, reviewer).get(reverse(name, args=[999999])).status_code == 404


@pytest.mark.parametrize("name", ["review:case-claim", "review:case-evidence", "review:case-decide",
                                  "review:case-note", "review:decision-approve", "review:decision-send-back",
                                  "review:campaign-decide"])
def test_posts_to_unknown_ids_are_not_found(client, senior, policy, name):
    assert as_user(client, senior).post(reverse(name, args=[999999])).status_code == 404


def test_a_refused_decision_opens_on_an_error_summary_at_the_top_linking_to_each_field(client, case, reviewer):
    claimed(case, reviewer)
    response = decide(as_user(client, reviewer), case, refs=[], rationale="Kept rationale")
    assert response.status_code == 422
    page = response.content.decode()
    assert page.index('class="error-summary" role="alert"') < page.index('id="summary-h"')
    assert '<a href="#id_clauses">Clauses: Cite at least one clause.</a>' in page
    assert 'id="id_clauses"' in page and "Kept rationale</textarea>" in page
    response = decide(client, case, action="suspend")
    assert re.search(r'<a href="#decision-form">Not recorded: [^<]*duration', response.content.decode())


def test_the_claim_line_gives_the_date_and_how_long_is_left(client, case, reviewer):
    client = as_user(client, reviewer)
    response = client.post(reverse("review:case-claim", args=[case.pk]), follow=True)
    case.refresh_from_db()
    day = case.lease_expires_at.strftime("%Y-%m-%d")
    page = response.content.decode()
    assert re.search(rf"You claimed case {case.pk} until {day} \d{{2}}:\d{{2}} UTC \(in \d+", page)
    assert re.search(rf"You hold this case until {day} \d{{2}}:\d{{2}} UTC \(in \d+", page)


def test_a_decided_case_shows_its_rationale_and_no_earlier_decisions_only_when_there_are_none(
        client, case, reviewer):
    page = as_user(client, reviewer).get(reverse("review:case", args=[case.pk])).content.decode()
    assert "No earlier decisions on acct_main." in page
    claimed(case, reviewer)
    decide(client, case, rationale="Template share 0.91; the volume is the point.")
    page = client.get(reverse("review:case", args=[case.pk])).content.decode()
    assert "<dt>Rationale</dt><dd>Template share 0.91; the volume is the point.</dd>" in page
    assert "No earlier decisions" not in page
    assert "No decisions on other cases of acct_main" in page


def test_evidence_and_audit_data_read_as_a_person_reads_them(client, detector, policy, reviewer, make_staff):
    ingest_and_group(detector, [flag_payload(1, account_id="acct_read", evidence={
        "excerpts": [EXCERPT], "features": ["device_fingerprint", "egress_asn"], "proxy": None, "shared": True,
        "asn": {"number": 64500, "tor": False}})])
    case = Case.objects.get(account__external_id="acct_read")
    claimed(case, reviewer)
    page = as_user(client, reviewer).post(reverse("review:case-evidence", args=[case.pk])).content.decode()
    assert "<dd>device_fingerprint, egress_asn</dd>" in page
    assert "<dt>proxy</dt><dd>—</dd>" in page and "<dt>shared</dt><dd>yes</dd>" in page
    assert re.search(r'<dl class="readable">(<dt>(number</dt><dd>64500|tor</dt><dd>no)</dd>){2}</dl>', page)
    assert "[&#x27;" not in page and "None" not in page and "True" not in page
    event = AuditEvent.objects.filter(action=AuditAction.EVIDENCE_OPENED).latest("created_at")
    page = as_user(client, make_staff(Role.COMPLIANCE_OFFICER)).get(
        reverse("audit:event", args=[event.pk])).content.decode()
    assert '<dl class="readable">' in page and "{&#x27;" not in page
