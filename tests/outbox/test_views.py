"""The Deliveries page: compliance officers and admins see every message's delivery state; others do not."""

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

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
