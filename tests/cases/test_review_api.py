"""The review API calls the same services as the pages: claim, release, decide, approve, send back."""

import pytest

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.cases.models import Case, Decision
from reviewapp.people.roles import Role

pytestmark = pytest.mark.django_db
DECISION = {"clauses": ["T-2"], "action": "terminate", "rationale": "Outputs used to train a competing model.",
            "facts_for_holder": "Your account sent 16,000 reasoning-extraction prompts in two days."}


def as_user(client, user):
    client.force_login(user)
    return client


def test_claim_decide_approve_through_the_api(client, case, policy, make_staff):
    reviewer, senior = make_staff(Role.REVIEWER), make_staff(Role.SENIOR_REVIEWER)
    api = as_user(client, reviewer)
    assert api.post(f"/api/v1/cases/{case.pk}/claim").json()["state"] == "in_review"
    response = api.post(f"/api/v1/cases/{case.pk}/decisions", DECISION, content_type="application/json")
    assert response.status_code == 201, response.json()
    assert response.json()["state"] == "awaiting_approval" and response.json()["clauses"] == ["T-2"]
    assert api.post(f"/api/v1/cases/{case.pk}/approve").status_code == 403  # a reviewer, and the decider
    approved = as_user(client, senior).post(f"/api/v1/cases/{case.pk}/approve")
    assert approved.status_code == 200 and approved.json()["state"] == "enforced"
    assert approved.json()["statement"] is not None
    assert Case.objects.get(pk=case.pk).state == Case.State.DECIDED


def test_claim_next_and_release(client, case, make_staff):
    api = as_user(client, make_staff(Role.REVIEWER))
    response = api.post(f"/api/v1/queues/{case.queue}/claim-next")
    assert response.status_code == 200 and response.json()["id"] == case.pk
    assert api.post(f"/api/v1/queues/{case.queue}/claim-next").status_code == 204
    assert api.post(f"/api/v1/cases/{case.pk}/release").json()["state"] == "new"
    assert api.post("/api/v1/queues/nonsense/claim-next").status_code == 404
    assert AuditEvent.objects.filter(action=AuditAction.CASE_RELEASED).count() == 1


def test_errors_say_what_went_wrong(client, case, policy, make_staff):
    reviewer, other = make_staff(Role.REVIEWER), make_staff(Role.REVIEWER)
    api = as_user(client, reviewer)
    not_claimed = api.post(f"/api/v1/cases/{case.pk}/decisions", DECISION, content_type="application/json")
    assert not_claimed.status_code == 403 and "Claim case" in not_claimed.json()["detail"]
    api.post(f"/api/v1/cases/{case.pk}/claim")
    bad_ref = api.post(f"/api/v1/cases/{case.pk}/decisions", {**DECISION, "clauses": ["UP-99"]},
                       content_type="application/json")
    assert bad_ref.status_code == 400 and "UP-99" in str(bad_ref.json()["clauses"])
    not_permitted = api.post(f"/api/v1/cases/{case.pk}/decisions", {**DECISION, "clauses": ["T-3"]},
                             content_type="application/json")
    assert not_permitted.status_code == 400 and "does not permit" in not_permitted.json()["detail"]
    taken = as_user(client, other).post(f"/api/v1/cases/{case.pk}/claim")
    assert taken.status_code == 409 and "claimed by" in taken.json()["detail"]
    assert as_user(client, other).post(f"/api/v1/cases/{case.pk}/approve").status_code == 403  # not a senior
    senior = make_staff(Role.SENIOR_REVIEWER)
    assert as_user(client, senior).post(f"/api/v1/cases/{case.pk}/approve").status_code == 404  # nothing pending
    assert not Decision.objects.exists()


def test_send_back_needs_a_reason(client, case, policy, make_staff):
    reviewer, senior = make_staff(Role.REVIEWER), make_staff(Role.SENIOR_REVIEWER)
    api = as_user(client, reviewer)
    api.post(f"/api/v1/cases/{case.pk}/claim")
    api.post(f"/api/v1/cases/{case.pk}/decisions", DECISION, content_type="application/json")
    api = as_user(client, senior)
    assert api.post(f"/api/v1/cases/{case.pk}/send-back", {}, content_type="application/json").status_code == 400
    sent = api.post(f"/api/v1/cases/{case.pk}/send-back", {"reason": "Check the researcher programme."},
                    content_type="application/json")
    assert sent.status_code == 200 and sent.json()["state"] == "sent_back"


def test_compliance_reads_but_every_change_is_refused(client, case, policy, make_staff):
    api = as_user(client, make_staff(Role.COMPLIANCE_OFFICER))
    assert api.get(f"/api/v1/cases/{case.pk}/").status_code == 200
    for path in ("claim", "release", "approve", "decisions"):
        assert api.post(f"/api/v1/cases/{case.pk}/{path}", DECISION,
                        content_type="application/json").status_code in (403, 404)
    assert api.post(f"/api/v1/queues/{case.queue}/claim-next").status_code == 403
    assert Case.objects.get(pk=case.pk).assignee is None


@pytest.mark.parametrize("path", ["claim", "release", "decisions", "approve", "send-back"])
def test_a_role_that_may_not_write_gets_403_before_its_body_is_judged(client, case, make_staff, path):
    api = as_user(client, make_staff(Role.COMPLIANCE_OFFICER))
    for body in ({}, {"clauses": [], "reason": ""}):
        response = api.post(f"/api/v1/cases/{case.pk}/{path}", body, content_type="application/json")
        assert response.status_code == 403, (path, response.content)
    assert api.post(f"/api/v1/queues/{case.queue}/claim-next", {}, content_type="application/json"
                    ).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_the_second_of_two_concurrent_approvals_is_a_conflict(case, policy, make_staff):
    """Two senior reviewers both see the decision waiting and approve at once (`make load` met this): the one whose
    request takes the row lock second is told 409, the decision's state changed under them, not 400 as if what
    they sent were wrong; the decision is approved once."""
    import threading

    from django.db import connection, transaction
    from django.test import Client

    from reviewapp.cases.services.decisions import decision_approve

    reviewer, first, second = (make_staff(Role.REVIEWER), make_staff(Role.SENIOR_REVIEWER),
                               make_staff(Role.SENIOR_REVIEWER))
    api = as_user(Client(), reviewer)
    api.post(f"/api/v1/cases/{case.pk}/claim")
    assert api.post(f"/api/v1/cases/{case.pk}/decisions", DECISION, content_type="application/json").status_code == 201
    decision = Decision.objects.get(case=case)
    answers = []

    def second_approves():
        try:
            answers.append(as_user(Client(), second).post(f"/api/v1/cases/{case.pk}/approve"))
        finally:
            connection.close()

    with transaction.atomic():
        Decision.objects.select_for_update().get(pk=decision.pk)  # the first senior's approval holds the row
        thread = threading.Thread(target=second_approves)
        thread.start()
        for _ in range(200):  # until the second request found the decision pending and waits for the lock
            with connection.cursor() as cursor:  # a transaction sees one snapshot of the activity unless cleared
                cursor.execute("SELECT pg_stat_clear_snapshot()")
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND wait_event_type = 'Lock'")
                if cursor.fetchone()[0]:
                    break
            thread.join(0.05)
        else:
            pytest.fail("the second approval never waited for the row lock")
        decision_approve(approver=first, decision=decision)
    thread.join(30)
    (answer,) = answers
    assert answer.status_code == 409 and "not awaiting approval" in answer.json()["detail"]
    decision.refresh_from_db()
    assert decision.state == Decision.State.ENFORCED and decision.approved_by == first
    assert AuditEvent.objects.filter(action=AuditAction.DECISION_APPROVED).count() == 1
