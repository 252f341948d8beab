"""The Deliveries page: compliance officers and admins see every message's delivery state; others do not."""

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from reviewapp.audit.services import Target
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.services import outbox_enqueue
from reviewapp.people.roles import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def messages(make_staff):
    holder = make_staff(Role.REVIEWER, username="target-user")
    with transaction.atomic():
        waiting = outbox_enqueue(kind="enforcement", payload={"account_id": "acct_1"}, idempotency_key="d-1-apply",
                                 target=holder)
        given_up = outbox_enqueue(kind="email", payload={"to": ["h@example.org"], "subject": "s", "body": "b"},
                                  idempotency_key="d-1-notice")
    OutboxMessage.objects.filter(pk=waiting.pk).update(attempts=2, last_error="HTTP 503 from platform")
    OutboxMessage.objects.filter(pk=given_up.pk).update(state="failed", attempts=12, next_attempt_at=None,
                                                        last_error="could not send email: refused")
    return holder


@pytest.mark.parametrize("role", [Role.COMPLIANCE_OFFICER, Role.ADMIN])
def test_staff_who_may_see_deliveries_see_state_attempts_and_errors(client, make_staff, messages, role):
    holder = messages
    client.force_login(make_staff(role))
    page = client.get(reverse("outbox:messages"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "HTTP 503 from platform" in html and "could not send email: refused" in html
    assert f"people.user {holder.pk}" in html
    assert "failed (gave up, can be retried): <strong class=\"status-bad\">1</strong>" in html

    failed_only = client.get(reverse("outbox:messages"), {"state": "failed"}).content.decode()
    assert "could not send email: refused" in failed_only and "HTTP 503 from platform" not in failed_only
    webhooks = client.get(reverse("outbox:messages"), {"kind": "enforcement"}).content.decode()
    assert "HTTP 503 from platform" in webhooks and "could not send email" not in webhooks


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.SENIOR_REVIEWER, Role.SHARING_OFFICER])
def test_other_roles_may_not(client, make_staff, role):
    client.force_login(make_staff(role))
    assert client.get(reverse("outbox:messages")).status_code == 403


def test_the_listing_does_not_grow_queries_with_the_page(client, make_staff, django_assert_max_num_queries):
    with transaction.atomic():
        for n in range(60):
            outbox_enqueue(kind="enforcement", payload={"n": n}, idempotency_key=f"k-{n}")
    OutboxMessage.objects.update(delivered_at=timezone.now(), state="delivered", next_attempt_at=None)
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    with django_assert_max_num_queries(12):
        assert client.get(reverse("outbox:messages")).status_code == 200


# ── What each delivery does: an enforcement is told from its reversal, emails and checkpoints by their purpose ──

from tests.appeals.review_fixtures import (  # noqa: E402, F401 (fixtures, asked for by name)
    appeal_staff_fixture,
    attachments_dir_fixture,
    contested_fixture,
)


def _rows(html: str) -> list[str]:
    import re

    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
            for row in re.findall(r"<tr>(.*?)</tr>", html, flags=re.S)]


def test_each_delivery_says_what_it_does_with_links_to_what_it_is_about(contested, client, make_staff):
    from appeals.services import appeal_claim, appeal_decide

    decision, appeal, case = contested.decision, contested.appeal, contested.case
    appeal_claim(reviewer=contested.staff.outsider, appeal=appeal)
    appeal_decide(reviewer=contested.staff.outsider, appeal=appeal, outcome="overturned", reason="Research.")
    with transaction.atomic():
        checkpoint = {"seq": 41, "hash": "ab" * 32, "at": "2026-12-02T10:00:00Z", "signature": "sig", "key_id": "k1"}
        outbox_enqueue(kind="witness", payload=checkpoint, idempotency_key="audit-checkpoint-41",
                       target=Target(type="audit.checkpoint", id="41"))

    client.force_login(contested.staff.compliance)
    html = client.get(reverse("outbox:messages")).content.decode()
    rows = _rows(html)
    applied = f"Enforcement of decision {decision.pk}: suspension on account acct_contested"
    reversed_ = f"Reversal of decision {decision.pk} after appeal {appeal.pk}: suspension on account acct_contested"
    assert [row for row in rows if applied in row] and [row for row in rows if reversed_ in row]
    assert not [row for row in rows if "enforcement · cases.decision" in row and "of decision" not in row]
    statement = decision.statement
    assert [row for row in rows if f"Statement of reasons {statement.pk} emailed to the holder" in row]
    assert [row for row in rows if f"Email about appeal {appeal.pk} “Your appeal no. {appeal.pk} is decided”" in row]
    assert [row for row in rows if "Witness checkpoint: the signed audit chain head through event 41" in row]
    # Links to act on what a delivery is about, for a reader who may open it.
    assert f'href="{reverse("review:case", args=[case.pk])}">decision {decision.pk} (case {case.pk})</a>' in html
    assert f'href="{reverse("appeal-review:appeal", args=[appeal.pk])}"' in html
    assert f'href="{reverse("review:statement", args=[statement.pk])}"' in html

    client.force_login(make_staff(Role.ADMIN))  # reads deliveries, not cases or appeals: the words, no links
    html = client.get(reverse("outbox:messages")).content.decode()
    assert reversed_ in " ".join(_rows(html))
    assert reverse("review:case", args=[case.pk]) not in html
    assert reverse("appeal-review:appeal", args=[appeal.pk]) not in html
