"""Appeal review by staff: the filing rules it relies on, separation of duties, outcomes and their effects,
overturn rates; then the staff pages and the staff API, which call the same services.

Effects leave through the outbox (invariant 7): here we check the rows written in the outcome's transaction;
tests/appeals/test_outcome_delivery.py has a real worker deliver them.
"""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

import appeals.services
from appeals.models import Appeal
from appeals.selectors import appeals_queue, took_part
from appeals.services import (
    AppealError,
    appeal_claim,
    appeal_decide,
    appeal_message_add,
    attachment_read,
)
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify
from reviewapp.cases.events import decision_overturned
from reviewapp.cases.models import Account, Decision, StatementOfReasons
from reviewapp.core.selectors import overturn_rates
from reviewapp.outbox.models import OutboxMessage

from .review_fixtures import (  # noqa: F401 (fixtures, asked for by name)
    PDF,
    appeal_staff_fixture,
    attachments_dir_fixture,
    contested_fixture,
    decide,
    file_appeal,
    flagged_case,
)

pytestmark = pytest.mark.django_db

ART_21 = "out-of-court dispute settlement body under Article 21 of the Digital Services Act"
REASON = "Your harness is a published benchmark run under the researcher programme; the volume matches it."


def enforcement_events(decision: Decision) -> list[str]:
    return [m.payload["event"] for m in OutboxMessage.objects.filter(
        kind="enforcement", target_type="cases.decision", target_id=str(decision.pk)).order_by("pk")]


def emails_to(address: str) -> list[OutboxMessage]:
    return [m for m in OutboxMessage.objects.filter(kind="email").order_by("pk") if m.payload["to"] == [address]]


@pytest.fixture
def overturned_signals():
    """Every decision_overturned sent during the test, as (decision id, appeal id, actor)."""
    received = []

    def receiver(sender, *, decision, appeal_id, actor, **kwargs):
        received.append((decision.pk, appeal_id, actor))

    decision_overturned.connect(receiver, weak=False)
    yield received
    decision_overturned.disconnect(receiver)


@pytest.fixture
def suspension(policy, appeal_staff, attachments_dir):
    """A plain suspension under T-1 (enforced at once, no approver) by dana; nobody appealed yet."""
    case = flagged_case("template-miner", "acct_plain")
    return decide(case, reviewer=appeal_staff.decider, clauses=[policy["extraction"]])


# ── Filing: the window and one open appeal per decision ──────────────────────────────────────────────

def test_an_appeal_is_open_until_the_clause_window_closes(suspension, monkeypatch):
    statement = StatementOfReasons.objects.get(decision=suspension)
    assert statement.appeal_deadline == statement.issued_at + timedelta(days=180)  # T-1: the default window

    monkeypatch.setattr(appeals.services, "timezone",
                        SimpleNamespace(now=lambda: statement.appeal_deadline + timedelta(seconds=1)))
    with pytest.raises(AppealError, match="The appeal window for this decision closed on"):
        file_appeal(suspension)
    assert not Appeal.objects.exists()

    monkeypatch.setattr(appeals.services, "timezone",
                        SimpleNamespace(now=lambda: statement.appeal_deadline - timedelta(minutes=1)))
    appeal = file_appeal(suspension)
    assert appeal.state == Appeal.State.FILED and appeal.deadline == statement.appeal_deadline


def test_a_clause_can_give_a_longer_window(contested):
    statement = contested.decision.statement
    assert contested.appeal.deadline == statement.issued_at + timedelta(days=200)  # T-2 sets 200 days


def test_one_open_appeal_per_decision(suspension, appeal_staff):
    first = file_appeal(suspension)
    with pytest.raises(AppealError, match="already have an open appeal"):
        file_appeal(suspension, grounds="Again, louder.")
    assert Appeal.objects.count() == 1

    appeal_claim(reviewer=appeal_staff.outsider, appeal=first)
    appeal_decide(reviewer=appeal_staff.outsider, appeal=first, outcome="upheld", reason=REASON)
    # Decided: nothing is open against the decision any more, so a new appeal (new facts) is accepted.
    assert file_appeal(suspension, grounds="New facts: our programme enrolment letter.").is_open


def test_only_a_notified_decision_of_ones_own_account_can_be_appealed(contested, policy, appeal_staff):
    other = decide(flagged_case("template-miner", "acct_other", email="other@example.org"),
                   reviewer=appeal_staff.decider, clauses=[policy["competing"]])  # awaits approval: not notified
    with pytest.raises(AppealError, match="no such decision"):
        appeals.services.appeal_file(account=contested.account, decision=other, grounds="Not mine.")
    with pytest.raises(AppealError, match="no such decision"):
        appeals.services.appeal_file(account=other.account, decision=other, grounds="Not told yet.")


# ── Separation of duties (invariant 5) ───────────────────────────────────────────────────────────────

@pytest.mark.parametrize("who", ["claimer", "decider", "sender", "approver"])
def test_anyone_who_took_part_is_refused_the_claim(contested, who):
    person = getattr(contested.staff, who)
    assert took_part(person, contested.decision)
    with pytest.raises(PermissionDenied, match="You took part in this decision"):
        appeal_claim(reviewer=person, appeal=contested.appeal)
    contested.appeal.refresh_from_db()
    assert contested.appeal.reviewer is None and contested.appeal.state == Appeal.State.FILED
    assert not AuditEvent.objects.filter(action=AuditAction.APPEAL_CLAIMED).exists()


@pytest.mark.parametrize("who", ["reviewer", "compliance"])
def test_only_senior_reviewers_handle_appeals(contested, who):
    with pytest.raises(PermissionDenied, match=r"^Only senior reviewers handle appeals\.$"):
        appeal_claim(reviewer=getattr(contested.staff, who), appeal=contested.appeal)


def test_a_senior_who_took_no_part_claims_and_decides(contested):
    staff, appeal = contested.staff, contested.appeal
    assert not took_part(staff.outsider, contested.decision)

    with pytest.raises(PermissionDenied, match=f"Claim appeal {appeal.pk} first"):
        appeal_decide(reviewer=staff.outsider, appeal=appeal, outcome="upheld", reason=REASON)
    appeal = appeal_claim(reviewer=staff.outsider, appeal=appeal)
    assert (appeal.state, appeal.reviewer) == (Appeal.State.IN_REVIEW, staff.outsider)
    [event] = AuditEvent.objects.filter(action=AuditAction.APPEAL_CLAIMED)
    assert event.actor_display == "olga" and event.target_id == str(appeal.pk)

    with pytest.raises(AppealError, match="is assigned to olga"):
        appeal_claim(reviewer=staff.other_senior, appeal=appeal)
    with pytest.raises(PermissionDenied, match="Claim appeal"):
        appeal_decide(reviewer=staff.other_senior, appeal=appeal, outcome="overturned", reason=REASON)

    appeal = appeal_decide(reviewer=staff.outsider, appeal=appeal, outcome="upheld", reason=REASON)
    assert appeal.state == Appeal.State.DECIDED and appeal.outcome == Appeal.Outcome.UPHELD


def test_a_part_taken_after_the_claim_still_bars_the_decision(contested):
    """appeal_decide re-checks took_part: a claim can predate the reviewer's later part in the case."""
    from reviewapp.audit.services import record

    staff, appeal = contested.staff, contested.appeal
    appeal = appeal_claim(reviewer=staff.outsider, appeal=appeal)
    record(actor=staff.outsider, action=AuditAction.CASE_CLAIMED, target=contested.case,
           data={"note": "a later involvement in the case"})
    assert took_part(staff.outsider, contested.decision)
    with pytest.raises(PermissionDenied,  # the reason, said as the reviewer reads it
                       match=f"^{re.escape('You took part in this decision; someone else must decide the appeal.')}$"):
        appeal_decide(reviewer=staff.outsider, appeal=appeal, outcome="overturned", reason=REASON)
    appeal.refresh_from_db()
    contested.decision.refresh_from_db()
    assert appeal.state == Appeal.State.IN_REVIEW and contested.decision.state == Decision.State.ENFORCED


def test_the_queue_lists_open_appeals_by_review_due_not_by_the_filing_deadline(contested, suspension, appeal_staff):
    first = contested.appeal  # T-2: the holder could have filed for 200 days; filed first, so due first
    second = file_appeal(suspension)  # T-1: a nearer filing deadline (180 days), filed after the other
    assert second.deadline < first.deadline and first.review_due_at < second.review_due_at
    assert first.review_due_at == first.filed_at + Appeal.REVIEW_SLA
    assert list(appeals_queue()) == [first, second]
    appeal_claim(reviewer=appeal_staff.outsider, appeal=first)
    appeal_decide(reviewer=appeal_staff.outsider, appeal=first, outcome="upheld", reason=REASON)
    assert list(appeals_queue()) == [second]


# ── Asking the holder, reading attachments ───────────────────────────────────────────────────────────

def test_the_reviewer_asks_the_holder_for_information(contested):
    staff, appeal = contested.staff, contested.appeal
    with pytest.raises(PermissionDenied):
        appeal_message_add(appeal=appeal, text="Which programme?", staff=staff.outsider)  # not claimed yet
    appeal_claim(reviewer=staff.outsider, appeal=appeal)
    with pytest.raises(AppealError, match="Write a message first"):
        appeal_message_add(appeal=appeal, text="  ", staff=staff.outsider)

    message = appeal_message_add(appeal=appeal, text="Which programme enrolled you, and since when?",
                                 staff=staff.outsider)
    appeal.refresh_from_db()
    assert appeal.state == Appeal.State.INFO_REQUESTED and message.author == staff.outsider
    [mail] = [m for m in emails_to("holder@example.org") if "need more information" in m.payload["subject"]]
    assert "Which programme enrolled you" in mail.payload["body"]
    assert re.search(r"http://\S+/appeals/signin/\S+/", mail.payload["body"])  # a fresh sign-in link


def test_attachments_open_for_the_appeals_reviewer_and_compliance_each_opening_audited(contested):
    staff, appeal = contested.staff, contested.appeal
    [attachment] = appeal.attachments.all()
    with pytest.raises(PermissionDenied):
        attachment_read(attachment=attachment, staff=staff.outsider)  # not their appeal (yet)
    appeal_claim(reviewer=staff.outsider, appeal=appeal)
    attachment.refresh_from_db()
    assert attachment_read(attachment=attachment, staff=staff.outsider) == PDF
    assert attachment_read(attachment=attachment, staff=staff.compliance) == PDF
    with pytest.raises(PermissionDenied):
        attachment_read(attachment=attachment, staff=staff.other_senior)
    openings = AuditEvent.objects.filter(action=AuditAction.ATTACHMENT_OPENED).order_by("id")
    assert [e.actor_display for e in openings] == ["olga", "cora"]


# ── Outcomes ─────────────────────────────────────────────────────────────────────────────────────────

@pytest.fixture
def claimed(contested):
    appeal_claim(reviewer=contested.staff.outsider, appeal=contested.appeal)
    contested.appeal.refresh_from_db()
    return contested


def _unchanged(contested) -> None:
    contested.appeal.refresh_from_db()
    contested.decision.refresh_from_db()
    assert contested.appeal.state == Appeal.State.IN_REVIEW and contested.appeal.outcome == ""
    assert contested.decision.state == Decision.State.ENFORCED
    assert Account.objects.get(pk=contested.account.pk).enforcement_status == "suspended"
    assert enforcement_events(contested.decision) == ["enforcement.apply"]
    assert not Decision.objects.filter(replaces_on_appeal__isnull=False).exists()


@pytest.mark.parametrize(("outcome", "arguments", "error"), [
    ("overturned", {"reason": "   "}, "Write the reasons the holder will read"),
    ("upheld", {"reason": ""}, "Write the reasons the holder will read"),
    ("modified", {"reason": REASON}, "Choose the lesser action"),
    ("modified", {"reason": REASON, "clause": "research", "action": "suspend", "duration_days": 30},
     "'suspend' is not a lesser action than 'suspend'"),
    ("modified", {"reason": REASON, "action": "warn"}, "cite at least one clause"),
    ("modified", {"reason": REASON, "clause": "research", "action": "rate_limit", "duration_days": 7},
     "clause T-3 does not permit the action 'rate_limit'"),
    ("modified", {"reason": REASON, "clause": "extraction", "action": "rate_limit"},
     "'rate_limit' needs a duration"),
])
def test_an_outcome_needs_reasons_and_a_modification_a_lesser_permitted_action(claimed, policy, overturned_signals,
                                                                               outcome, arguments, error):
    arguments = dict(arguments)  # the parameter itself stays whole for a rerun in the same process (mutmut)
    clause = arguments.pop("clause", None)
    with pytest.raises(AppealError, match=re.escape(error)):
        appeal_decide(reviewer=claimed.staff.outsider, appeal=claimed.appeal, outcome=outcome,
                      clauses=[policy[clause]] if clause else [], **arguments)
    _unchanged(claimed)
    assert overturned_signals == []


def test_upheld_changes_nothing_but_tells_the_holder(claimed, overturned_signals):
    appeal = appeal_decide(reviewer=claimed.staff.outsider, appeal=claimed.appeal, outcome="upheld", reason=REASON)

    assert appeal.state == Appeal.State.DECIDED and appeal.outcome_reason == REASON
    claimed.decision.refresh_from_db()
    assert claimed.decision.state == Decision.State.ENFORCED
    assert Account.objects.get(pk=claimed.account.pk).enforcement_status == "suspended"
    assert enforcement_events(claimed.decision) == ["enforcement.apply"]
    assert overturned_signals == []
    [mail] = [m for m in emails_to("holder@example.org") if "is decided" in m.payload["subject"]]
    assert "The decision stands." in mail.payload["body"] and REASON in mail.payload["body"]
    assert ART_21 in mail.payload["body"]
    with pytest.raises(AppealError, match="already decided"):
        appeal_decide(reviewer=claimed.staff.outsider, appeal=appeal, outcome="overturned", reason=REASON)
    with pytest.raises(AppealError, match="takes no more messages"):
        appeal_message_add(appeal=appeal, text="One more thing", staff=claimed.staff.outsider)


def test_overturned_reverses_the_decision_through_the_outbox_and_says_so_once(claimed, overturned_signals):
    reviewer = claimed.staff.outsider
    appeal = appeal_decide(reviewer=reviewer, appeal=claimed.appeal, outcome="overturned", reason=REASON)

    assert appeal.outcome == Appeal.Outcome.OVERTURNED
    claimed.decision.refresh_from_db()
    assert claimed.decision.state == Decision.State.REVERSED
    assert Account.objects.get(pk=claimed.account.pk).enforcement_status == Account.EnforcementStatus.NONE
    assert enforcement_events(claimed.decision) == ["enforcement.apply", "enforcement.reverse"]
    reverse_message = OutboxMessage.objects.get(idempotency_key=f"enforcement-reverse-{claimed.decision.pk}")
    assert reverse_message.payload["account_id"] == "acct_contested"
    assert reverse_message.payload["decision_id"] == claimed.decision.pk
    assert overturned_signals == [(claimed.decision.pk, appeal.pk, reviewer)]

    [mail] = [m for m in emails_to("holder@example.org") if "is decided" in m.payload["subject"]]
    body = mail.payload["body"]
    assert "Overturned" in body and "any restriction on your account is lifted" in body
    assert REASON in body and ART_21 in body
    assert re.search(r"http://\S+/appeals/signin/\S+/", body)

    decided = AuditEvent.objects.get(action=AuditAction.APPEAL_DECIDED)
    assert decided.data["outcome"] == "overturned" and decided.actor_display == "olga"
    assert AuditEvent.objects.get(action=AuditAction.DECISION_REVERSED).data["appeal"] == appeal.pk
    assert chain_verify().ok


def test_modified_replaces_the_decision_with_a_lesser_one_under_a_clause_in_force(claimed, policy,
                                                                                  overturned_signals):
    appeal = appeal_decide(reviewer=claimed.staff.outsider, appeal=claimed.appeal, outcome="modified",
                           reason=REASON, clauses=[policy["research"]], action="warn",
                           facts_for_holder="Your harness sent 1,200 templated prompts outside the programme's quota.")

    replacement = appeal.replacement
    assert (replacement.action, replacement.state) == ("warn", Decision.State.ENFORCED)
    assert [c.ref for c in replacement.clauses.all()] == ["T-3"] and replacement.decided_by == claimed.staff.outsider
    claimed.decision.refresh_from_db()
    assert claimed.decision.state == Decision.State.REVERSED
    assert Account.objects.get(pk=claimed.account.pk).enforcement_status == Account.EnforcementStatus.WARNED
    assert enforcement_events(claimed.decision) == ["enforcement.apply", "enforcement.reverse"]
    assert enforcement_events(replacement) == ["enforcement.apply"]
    statement = StatementOfReasons.objects.get(decision=replacement)
    assert "outside the programme's quota" in statement.content["facts"]
    subjects = [m.payload["subject"] for m in emails_to("holder@example.org")]
    assert "Decision about your account acct_contested: Warning" in subjects  # the new statement's notice
    [mail] = [m for m in emails_to("holder@example.org") if "is decided" in m.payload["subject"]]
    assert "replaced by a lesser action: Warning" in mail.payload["body"] and ART_21 in mail.payload["body"]
    assert overturned_signals == [(claimed.decision.pk, appeal.pk, claimed.staff.outsider)]


# ── Overturn rates ───────────────────────────────────────────────────────────────────────────────────

def test_overturn_rates_by_clause_detector_and_reviewer(policy, appeal_staff, attachments_dir):
    """Four decided appeals and an open one:

    | account | detector       | clause | decided by | outcome    |
    | a1      | template-miner | T-1    | dana       | overturned |
    | a2      | template-miner | T-1    | dana       | upheld     |
    | a3      | cluster-watch  | T-1    | cleo       | modified   |
    | a4      | cluster-watch  | T-3    | cleo       | upheld     |
    | a5      | cluster-watch  | T-3    | cleo       | (open)     |
    """
    staff = appeal_staff
    rows = [("a1", "template-miner", "extraction", staff.decider, "overturned"),
            ("a2", "template-miner", "extraction", staff.decider, "upheld"),
            ("a3", "cluster-watch", "extraction", staff.claimer, "modified"),
            ("a4", "cluster-watch", "research", staff.claimer, "upheld"),
            ("a5", "cluster-watch", "research", staff.claimer, None)]
    for account, detector, clause, decider, outcome in rows:
        action = "warn" if clause == "research" else "suspend"
        decision = decide(flagged_case(detector, account, email=f"{account}@example.org"), reviewer=decider,
                          clauses=[policy[clause]], action=action, duration_days=30 if action == "suspend" else None)
        appeal = file_appeal(decision)
        if outcome:
            appeal_claim(reviewer=staff.outsider, appeal=appeal)
            extra = {"clauses": [policy["research"]], "action": "warn"} if outcome == "modified" else {}
            appeal_decide(reviewer=staff.outsider, appeal=appeal, outcome=outcome, reason=REASON, **extra)

    def table(by):
        return {row["key"]: (row["decided"], row["overturned"], row["modified"], row["rate"])
                for row in overturn_rates(by=by)}

    assert table("clause") == {"T-1": (3, 1, 1, pytest.approx(2 / 3)), "T-3": (1, 0, 0, 0.0)}
    assert table("detector") == {"cluster-watch": (2, 0, 1, 0.5), "template-miner": (2, 1, 0, 0.5)}
    assert table("reviewer") == {"cleo": (2, 0, 1, 0.5), "dana": (2, 1, 0, 0.5)}
    with pytest.raises(ValueError, match="grouped by one of"):
        overturn_rates(by="region")


# ── The staff pages ──────────────────────────────────────────────────────────────────────────────────

def _page(client, user, url_name: str, *args, **post):
    client.force_login(user)
    url = reverse(f"appeal-review:{url_name}", args=args)
    return client.post(url, post) if post or url_name in POSTS else client.get(url)


POSTS = {"claim", "outcome", "message", "evidence", "attachment"}


def test_the_queue_page_orders_by_review_due_and_marks_who_took_part(contested, suspension, client):
    staff = contested.staff
    later = file_appeal(suspension)  # decided by dana (T-1, 180 days): dana took part in both

    page = _page(client, staff.outsider, "queue").content.decode()
    assert page.index(f"Appeal {contested.appeal.pk} · acct_contested") < page.index(f"Appeal {later.pk} · acct_plain")
    assert ">Review due</th>" in page and contested.appeal.review_due_at.strftime("%Y-%m-%d") in page
    assert page.count('aria-label="Claim appeal') == 2 and "You took part" not in page
    assert "time left" not in page and "left</small>" in page  # the time left until each deadline

    page = _page(client, staff.sender, "queue").content.decode()  # sent back a draft of the contested decision
    assert page.count("You took part") == 1
    assert f'aria-label="Claim appeal {later.pk}"' in page
    assert f'aria-label="Claim appeal {contested.appeal.pk}"' not in page

    page = _page(client, staff.decider, "queue").content.decode()
    assert page.count("You took part") == 2 and 'aria-label="Claim appeal' not in page

    page = _page(client, staff.compliance, "queue").content.decode()  # reads, never claims
    assert "acct_contested" in page and 'aria-label="Claim appeal' not in page
    assert _page(client, staff.reviewer, "queue").status_code == 403
    assert _page(client, staff.reviewer, "appeal", contested.appeal.pk).status_code == 403
    client.logout()
    assert client.get(reverse("appeal-review:queue")).status_code == 302  # to sign-in


def test_the_queue_page_and_api_do_not_grow_in_queries_with_the_appeals(policy, appeal_staff, attachments_dir,
                                                                        client):
    def appeal(n: int) -> None:
        file_appeal(decide(flagged_case("template-miner", f"acct_q{n}", email=f"q{n}@example.org"),
                           reviewer=appeal_staff.decider, clauses=[policy["extraction"]]))

    def queries(path: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200
        return len(captured)

    client.force_login(appeal_staff.outsider)
    appeal(1)
    one = queries(reverse("appeal-review:queue")), queries("/api/v1/appeals/")
    for n in range(2, 6):
        appeal(n)
    assert (queries(reverse("appeal-review:queue")), queries("/api/v1/appeals/")) == one


def test_the_appeal_page_shows_the_case_decision_statement_and_the_holders_side(contested, client):
    staff, appeal, decision = contested.staff, contested.appeal, contested.decision
    page = _page(client, staff.outsider, "appeal", appeal.pk).content.decode()

    assert f'href="/cases/{contested.case.pk}/"' in page
    assert "T-2 Competing models" in page and "Suspension" in page
    assert "Template share 94% across 1,200 prompts; cluster cg-1." in page  # the internal rationale
    assert "dana" in page and "ava" in page  # decider and approver
    assert f"No. {decision.statement.pk}" in page and "Do not train competing models on outputs." in page
    assert "published evaluation harness" in page  # the grounds
    assert "Claims researcher-programme membership" in page and "Example University" in page
    assert "Not enrolled in the researcher programme" in page
    assert "letter.pdf" in page and "Claim this appeal" in page
    assert "Record the outcome" not in page and "Send the question" not in page  # not claimed yet

    page = _page(client, staff.approver, "appeal", appeal.pk).content.decode()
    assert "You took part in this decision" in page and "Claim this appeal" not in page


def test_claiming_on_the_page_and_refusals_shown(contested, client):
    staff, appeal = contested.staff, contested.appeal
    refused = _page(client, staff.decider, "claim", appeal.pk)
    assert refused.status_code == 403
    assert "Not claimed: You took part in this decision" in refused.content.decode()

    claimed = _page(client, staff.outsider, "claim", appeal.pk)
    assert claimed.status_code == 302 and claimed.url == reverse("appeal-review:appeal", args=[appeal.pk])
    page = client.get(claimed.url).content.decode()
    assert f"You claimed appeal {appeal.pk}" in page and "You handle this appeal" in page
    assert "Record the outcome" in page and "Send the question" in page

    taken = _page(client, staff.other_senior, "claim", appeal.pk)
    assert taken.status_code == 409 and "is assigned to olga" in taken.content.decode()


def test_the_outcome_form_shows_the_services_refusal_beside_it(claimed, client):
    staff, appeal = claimed.staff, claimed.appeal
    response = _page(client, staff.outsider, "outcome", appeal.pk, outcome="overturned", reason=" ")
    assert response.status_code == 422
    page = response.content.decode()
    assert "Not decided: Write the reasons the holder will read." in page
    assert 'value="overturned" id="id_outcome_1" required checked' in page  # what was chosen is kept
    assert Appeal.objects.get(pk=appeal.pk).is_open

    response = _page(client, staff.outsider, "outcome", appeal.pk, outcome="modified", reason=REASON,
                     action="rate_limit", duration_days="7", clauses=[claimed.decision.clauses.get().pk])
    assert response.status_code == 422
    assert "clause T-2 does not permit the action &#x27;rate_limit&#x27;" in response.content.decode()

    forbidden = _page(client, staff.other_senior, "outcome", appeal.pk, outcome="upheld", reason=REASON)
    assert forbidden.status_code == 403 and f"Claim appeal {appeal.pk} first" in forbidden.content.decode()


def test_overturning_on_the_page(claimed, client, overturned_signals):
    staff, appeal = claimed.staff, claimed.appeal
    response = _page(client, staff.outsider, "outcome", appeal.pk, outcome="overturned", reason=REASON)
    assert response.status_code == 302
    page = client.get(response.url).content.decode()
    assert f"Appeal {appeal.pk} decided: overturned" in page
    assert "Outcome: Overturned: the decision is reversed" in page and REASON in page
    assert "Reversed on appeal" in page and "Account status now: <span class=\"enforcement enforcement-none\">" in page
    assert "Record the outcome" not in page
    assert len(overturned_signals) == 1
    decided = _page(client, staff.compliance, "queue").content.decode()
    assert "Recently decided" in decided and f"Appeal {appeal.pk} · acct_contested" in decided


def test_modifying_on_the_page(claimed, client, policy):
    staff, appeal = claimed.staff, claimed.appeal
    page = _page(client, staff.outsider, "appeal", appeal.pk).content.decode()
    options = re.findall(r'<option value="(\w*)"', page.split('name="action"')[1].split("</select>")[0])
    assert options == ["", "warn", "rate_limit"]  # lesser than a suspension; "no violation" is an overturn

    response = _page(client, staff.outsider, "outcome", appeal.pk, outcome="modified", reason=REASON,
                     action="rate_limit", duration_days="7", clauses=[policy["extraction"].pk])
    assert response.status_code == 302
    appeal.refresh_from_db()
    assert appeal.replacement.action == "rate_limit" and appeal.replacement.duration_days == 7
    assert Account.objects.get(pk=claimed.account.pk).enforcement_status == "rate_limited"


def test_asking_the_holder_on_the_page(claimed, client):
    staff, appeal = claimed.staff, claimed.appeal
    empty = _page(client, staff.outsider, "message", appeal.pk, text="")
    assert empty.status_code == 422 and "Not sent: Write a message first." in empty.content.decode()

    sent = _page(client, staff.outsider, "message", appeal.pk, text="Which programme enrolled you?")
    assert sent.status_code == 302 and sent.url.endswith("#messages")
    page = client.get(sent.url).content.decode()
    assert "Which programme enrolled you?" in page and "olga (reviewer)" in page
    assert "Waiting for the holder&#x27;s reply" in page


def test_attachments_download_only_for_the_reviewer_and_compliance_audited(claimed, client):
    staff, appeal = claimed.staff, claimed.appeal
    attachment = appeal.attachments.get()
    response = _page(client, staff.outsider, "attachment", appeal.pk, attachment.pk)
    assert response.status_code == 200 and response.content == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="letter.pdf"'
    assert _page(client, staff.compliance, "attachment", appeal.pk, attachment.pk).content == PDF
    refused = _page(client, staff.other_senior, "attachment", appeal.pk, attachment.pk)
    assert refused.status_code == 403 and "Not opened" in refused.content.decode()
    assert client.get(reverse("appeal-review:attachment", args=[appeal.pk, attachment.pk])).status_code == 405
    assert _page(client, staff.outsider, "attachment", appeal.pk + 1, attachment.pk).status_code == 404
    openings = AuditEvent.objects.filter(action=AuditAction.ATTACHMENT_OPENED).order_by("id")
    assert [e.actor_display for e in openings] == ["olga", "cora"]


def test_the_appeals_reviewer_opens_the_evidence_audited(claimed, client):
    staff, appeal = claimed.staff, claimed.appeal
    refused = _page(client, staff.other_senior, "evidence", appeal.pk)
    assert refused.status_code == 403
    page = _page(client, staff.outsider, "evidence", appeal.pk).content.decode()
    assert "Opened just now for you" in page
    [event] = AuditEvent.objects.filter(action=AuditAction.EVIDENCE_OPENED)
    assert event.actor_display == "olga" and event.data["context"] == f"appeal {appeal.pk}"
    assert event.target_id == str(claimed.case.pk)


def test_the_rates_page_tables_and_charts(claimed, client):
    appeal_decide(reviewer=claimed.staff.outsider, appeal=claimed.appeal, outcome="overturned", reason=REASON)
    for user in (claimed.staff.compliance, claimed.staff.outsider):
        response = _page(client, user, "rates")
        assert response.status_code == 200
        page = response.content.decode()
        for heading in ("By clause", "By detector", "By decided by"):
            assert heading in page
        assert page.count('role="img"') == 3
        assert '<th scope="row">T-2</th><td class="num">1</td><td class="num">1</td><td class="num">0</td>' \
               '<td class="num">100%</td>' in page
        assert '<th scope="row">template-miner</th>' in page and '<th scope="row">dana</th>' in page
    assert _page(client, claimed.staff.reviewer, "rates").status_code == 403


# ── The staff API ────────────────────────────────────────────────────────────────────────────────────

def _api(client, user, method: str, path: str, body: dict | None = None):
    client.force_login(user)
    if method == "get":
        return client.get(path)
    return client.post(path, body or {}, content_type="application/json")


def test_api_queue_and_one_appeal(contested, suspension, client):
    staff = contested.staff
    later = file_appeal(suspension)  # filed after the contested appeal: its review is due later
    listing = _api(client, staff.sender, "get", "/api/v1/appeals/")
    assert listing.status_code == 200
    rows = listing.json()["results"]
    assert [(r["id"], r["took_part"]) for r in rows] == [(contested.appeal.pk, True), (later.pk, False)]
    assert rows[0]["account"] == "acct_contested" and rows[0]["clauses"] == ["T-2"]
    assert rows[0]["action"] == "suspend" and rows[0]["state"] == "filed" and rows[0]["reviewer"] is None

    detail = _api(client, staff.compliance, "get", f"/api/v1/appeals/{contested.appeal.pk}/").json()
    assert detail["grounds"].startswith("We run a published evaluation harness")
    assert detail["decision"]["decided_by"] == "dana" and detail["decision"]["approved_by"] == "ava"
    assert detail["attachments"][0]["name"] == "letter.pdf" and detail["researcher_claim"] is True
    assert _api(client, staff.outsider, "get", "/api/v1/appeals/999999/").status_code == 404
    assert _api(client, staff.reviewer, "get", "/api/v1/appeals/").status_code == 403
    client.logout()
    assert client.get("/api/v1/appeals/").status_code == 403


def test_api_claim_messages_and_outcome_map_refusals(contested, client, overturned_signals):
    staff, pk = contested.staff, contested.appeal.pk
    refused = _api(client, staff.approver, "post", f"/api/v1/appeals/{pk}/claim")
    assert refused.status_code == 403 and "You took part" in refused.json()["detail"]
    assert _api(client, staff.reviewer, "post", f"/api/v1/appeals/{pk}/claim").status_code == 403

    claimed = _api(client, staff.outsider, "post", f"/api/v1/appeals/{pk}/claim")
    assert claimed.status_code == 200 and claimed.json()["reviewer"] == "olga"
    assert claimed.json()["state"] == "in_review"
    conflict = _api(client, staff.other_senior, "post", f"/api/v1/appeals/{pk}/claim/")
    assert conflict.status_code == 409 and "assigned to olga" in conflict.json()["detail"]

    assert _api(client, staff.outsider, "post", f"/api/v1/appeals/{pk}/messages", {"text": ""}).status_code == 400
    asked = _api(client, staff.outsider, "post", f"/api/v1/appeals/{pk}/messages", {"text": "Since when?"})
    assert asked.status_code == 201 and asked.json()["author"] == "olga"
    assert _api(client, staff.other_senior, "post", f"/api/v1/appeals/{pk}/messages",
                {"text": "Me too"}).status_code == 403

    outcome = f"/api/v1/appeals/{pk}/outcome"
    no_reason = _api(client, staff.outsider, "post", outcome, {"outcome": "overturned", "reason": ""})
    assert no_reason.status_code == 400 and "Write the reasons" in no_reason.json()["detail"]
    not_lesser = _api(client, staff.outsider, "post", outcome, {"outcome": "modified", "reason": REASON,
                                                                "clauses": ["T-2"], "action": "terminate"})
    assert not_lesser.status_code == 400 and "not a lesser action" in not_lesser.json()["detail"]
    unknown = _api(client, staff.outsider, "post", outcome, {"outcome": "modified", "reason": REASON,
                                                             "clauses": ["Z-9"], "action": "warn"})
    assert unknown.status_code == 400 and "Z-9" in str(unknown.json()["clauses"])

    done = _api(client, staff.outsider, "post", outcome, {"outcome": "overturned", "reason": REASON})
    assert done.status_code == 200
    assert (done.json()["state"], done.json()["outcome"]) == ("decided", "overturned")
    assert done.json()["decision"]["state"] == "reversed" and done.json()["outcome_reason"] == REASON
    again = _api(client, staff.outsider, "post", outcome, {"outcome": "upheld", "reason": REASON})
    assert again.status_code == 409 and "already decided" in again.json()["detail"]
    assert len(overturned_signals) == 1


def test_api_is_documented_under_appeals(client):
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/json").json()
    for path, method in [("/api/v1/appeals/", "get"), ("/api/v1/appeals/{id}/", "get"),
                         ("/api/v1/appeals/{id}/claim/", "post"), ("/api/v1/appeals/{id}/messages/", "post"),
                         ("/api/v1/appeals/{id}/outcome/", "post")]:
        assert schema["paths"][path][method]["tags"] == ["appeals"], path


def test_a_refused_outcome_opens_on_an_error_summary_at_the_top_linking_to_each_field(claimed, client):
    staff, appeal = claimed.staff, claimed.appeal
    response = _page(client, staff.outsider, "outcome", appeal.pk, reason="Kept reasons")
    assert response.status_code == 422
    page = response.content.decode()
    summary = re.search(r'<div class="error-summary" role="alert"[^>]*tabindex="-1" autofocus data-error-summary>'
                        r'(.*?)</div>', page, re.S)
    assert summary and page.index("error-summary") < page.index('id="decide"')  # at the top, above the form
    assert '<a href="#id_outcome">Outcome: Choose an outcome.</a>' in summary.group(1)
    assert 'id="id_outcome"' in page and "Kept reasons</textarea>" in page
    response = _page(client, staff.outsider, "outcome", appeal.pk, outcome="overturned", reason=" ")
    assert '<a href="#decide">Not decided: Write the reasons the holder will read.</a>' in response.content.decode()
