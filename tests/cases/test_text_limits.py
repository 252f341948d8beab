"""Bounded staff text on the case side (README "Limits on what people type"): the service refuses an over-long
rationale, facts, send-back reason or note and stores nothing; the API answers 400 naming the field and the
limit, the schema states it, and the decision page says the limit under the box and, refused, keeps the text."""

import re

import pytest
from django.urls import reverse

from reviewapp.cases.models import CaseNote, Decision
from reviewapp.cases.services import case_note_add
from reviewapp.cases.services.claims import case_claim
from reviewapp.cases.services.decisions import PolicyViolation, decision_record, decision_send_back
from reviewapp.people.roles import Role

pytestmark = pytest.mark.django_db
FACTS = "Your account sent 16,000 reasoning-extraction prompts in two days."


@pytest.fixture
def reviewer(make_staff):
    return make_staff(Role.REVIEWER)


@pytest.fixture
def claimed(case, reviewer, policy):
    return case_claim(reviewer=reviewer, case=case)


def _decide(case, reviewer, policy, **fields):
    arguments = {"clauses": [policy["extraction"]], "action": "warn", "rationale": "Template share 0.91.",
                 "facts_for_holder": FACTS, **fields}
    return decision_record(reviewer=reviewer, case=case, **arguments)


def test_the_service_refuses_the_million_character_rationale_and_stores_nothing(claimed, reviewer, policy):
    with pytest.raises(PolicyViolation, match="Rationale is 1,000,000 characters long; the limit is 10,000"):
        _decide(claimed, reviewer, policy, rationale="x" * 1_000_000)
    with pytest.raises(PolicyViolation, match="Facts for the account holder is 5,001 characters long; the limit is"):
        _decide(claimed, reviewer, policy, facts_for_holder="x" * 5_001)
    assert not Decision.objects.exists()
    decision = _decide(claimed, reviewer, policy, rationale="x" * 10_000, facts_for_holder="y" * 5_000)
    assert len(decision.rationale) == 10_000 and len(decision.facts_for_holder) == 5_000


def test_the_send_back_reason_and_the_note_are_bounded_by_their_services(claimed, reviewer, policy, make_staff):
    decision = _decide(claimed, reviewer, policy, clauses=[policy["competing"]], action="terminate")
    senior = make_staff(Role.SENIOR_REVIEWER)
    with pytest.raises(PolicyViolation, match="Reason for sending back is 5,001 characters long; the limit is 5,000"):
        decision_send_back(approver=senior, decision=decision, reason="r" * 5_001)
    assert Decision.objects.get(pk=decision.pk).state == Decision.State.AWAITING_APPROVAL
    with pytest.raises(ValueError, match="Note is 10,001 characters long; the limit is 10,000"):
        case_note_add(author=reviewer, case=claimed, text="n" * 10_001)
    assert not CaseNote.objects.exists()


def test_the_column_itself_refuses_longer_text(claimed, reviewer, policy):
    from django.db import DataError, transaction

    decision = _decide(claimed, reviewer, policy)
    with pytest.raises(DataError), transaction.atomic():
        Decision.objects.filter(pk=decision.pk).update(rationale="x" * 10_001)


def test_the_api_answers_400_naming_the_field_and_its_limit(client, claimed, reviewer, policy, make_staff):
    client.force_login(reviewer)
    body = {"clauses": ["T-1"], "action": "warn", "rationale": "x" * 10_001, "facts_for_holder": FACTS}
    response = client.post(f"/api/v1/cases/{claimed.pk}/decisions", body, content_type="application/json")
    assert response.status_code == 400
    assert "10000" in str(response.json()["rationale"])
    assert not Decision.objects.exists()
    _decide(claimed, reviewer, policy, clauses=[policy["competing"]], action="terminate")
    client.force_login(make_staff(Role.SENIOR_REVIEWER))
    response = client.post(f"/api/v1/cases/{claimed.pk}/send-back", {"reason": "r" * 5_001},
                           content_type="application/json")
    assert response.status_code == 400 and "5000" in str(response.json()["reason"])


def max_length_in_schema(schemas: dict, component: str, field: str) -> int:
    """A string property's maxLength; a blank-allowed one states it in its first alternative (oneOf)."""
    prop = schemas[component]["properties"][field]
    return prop.get("maxLength") or prop["oneOf"][0]["maxLength"]


def test_the_schema_states_each_limit(client, reviewer):
    client.force_login(reviewer)
    schemas = client.get("/api/schema/", {"format": "json"}).json()["components"]["schemas"]
    assert max_length_in_schema(schemas, "DecisionInput", "rationale") == 10_000
    assert max_length_in_schema(schemas, "DecisionInput", "facts_for_holder") == 5_000
    assert max_length_in_schema(schemas, "SendBack", "reason") == 5_000


def test_the_decision_page_states_the_limit_and_keeps_an_over_long_rationale(client, claimed, reviewer, policy):
    client.force_login(reviewer)
    page = client.get(reverse("review:case", args=[claimed.pk])).content.decode()
    box = re.search(r'<textarea name="rationale"[^>]*>', page).group(0)
    assert "maxlength" not in box  # a browser would cut a paste at it, silently
    assert 'data-max-chars="10000"' in box and "At most 10,000 characters." in page
    rationale = "r" * 10_001
    response = client.post(reverse("review:case-decide", args=[claimed.pk]), {
        "clauses": [policy["extraction"].pk], "action": "warn", "rationale": rationale, "facts_for_holder": FACTS})
    assert response.status_code == 422
    page = response.content.decode()
    summary = re.search(r'<div class="error-summary".*?</div>', page, flags=re.S).group(0)
    assert "Rationale: This is 10001 characters long; the limit is 10000." in summary
    assert re.search(rf'<textarea name="rationale"[^>]*>\s*{rationale}</textarea>', page)  # all of it, kept
    assert not Decision.objects.exists()


def test_a_release_reason_is_bounded_though_only_the_audit_trail_keeps_it(claimed, reviewer):
    from reviewapp.cases.services.claims import ClaimError, case_release

    with pytest.raises(ClaimError, match="The reason for releasing is 2,001 characters long; the limit is 2,000"):
        case_release(reviewer=reviewer, case=claimed, reason="r" * 2_001)
    assert case_release(reviewer=reviewer, case=claimed, reason="r" * 2_000).state == "new"
