"""The statement of reasons as issued, the notice email, and the DSA Transparency Database export."""

import pytest

from reviewapp.cases.models import StatementOfReasons
from reviewapp.cases.services.claims import case_claim
from reviewapp.cases.services.decisions import decision_record
from reviewapp.cases.statements import NotReportable, dsa_export
from reviewapp.outbox.models import OutboxMessage
from reviewapp.people.roles import Role

pytestmark = pytest.mark.django_db
FACTS = "On 20 November the account sent 1,200 prompts filled from one template."


def enforce(case, policy, make_staff, action, duration=None):
    reviewer = make_staff(Role.REVIEWER)
    case_claim(reviewer=reviewer, case=case)
    decision_record(reviewer=reviewer, case=case, clauses=[policy["extraction"]], action=action,
                    duration_days=duration, rationale="Extraction at scale.", facts_for_holder=FACTS)
    return StatementOfReasons.objects.get()


def test_statement_carries_what_article_17_asks(case, policy, make_staff):
    content = enforce(case, policy, make_staff, "suspend", 10).content
    assert content["restriction"]["action"] == "suspend" and content["restriction"]["duration_days"] == 10
    assert content["restriction"]["ends_at"] and content["restriction"]["scope"]
    assert content["facts"] == FACTS
    assert content["automated_detection"] is True and content["automated_decision"] is False
    (clause,) = content["ground"]["clauses"]
    assert (clause["ref"], clause["text"]) == ("T-1", "Do not extract outputs at scale.")
    assert content["ground"]["version"] == 1
    assert content["redress"]["appeal_deadline"] > content["issued_at"]
    assert "out-of-court" in content["redress"]["other"]


def test_statement_is_immutable_once_issued(case, policy, make_staff):
    from django.db import transaction
    from django.db.utils import DatabaseError

    statement = enforce(case, policy, make_staff, "warn")
    with pytest.raises(DatabaseError, match="pgtrigger"), transaction.atomic():
        StatementOfReasons.objects.filter(pk=statement.pk).update(content={})


def test_the_holder_is_emailed_the_statement_through_the_outbox(case, policy, make_staff):
    statement = enforce(case, policy, make_staff, "rate_limit", 14)
    email = OutboxMessage.objects.get(kind="email")
    assert email.payload["to"] == ["holder@example.com"]
    assert "Rate limit" in email.payload["subject"]
    body = email.payload["body"]
    assert FACTS in body and "T-1 Automated extraction" in body and "/appeals/" in body
    assert f"no. {statement.pk}" in body


def test_dsa_export_uses_the_transparency_database_vocabulary(case, policy, make_staff):
    export = dsa_export(enforce(case, policy, make_staff, "suspend", 30))
    assert export["decision_account"] == "DECISION_ACCOUNT_SUSPENDED"
    assert export["decision_ground"] == "DECISION_GROUND_INCOMPATIBLE_CONTENT"
    assert export["incompatible_content_ground"] == "T-1 Automated extraction"
    assert export["category"] == "STATEMENT_CATEGORY_OTHER_VIOLATION_TC"
    assert export["automated_detection"] == "Yes"
    assert export["automated_decision"] == "AUTOMATED_DECISION_NOT_AUTOMATED"
    assert export["end_date_account_restriction"] and export["application_date"]
    assert export["puid"].startswith("reviewapp-statement-")


def test_a_warning_is_not_reported(case, policy, make_staff):
    with pytest.raises(NotReportable, match="restricts nothing"):
        dsa_export(enforce(case, policy, make_staff, "warn"))
