"""Each role sees in the navigation what it may use, and only that."""

import pytest
from django.urls import reverse

from reviewapp.people.navigation import items_for
from reviewapp.people.roles import Role
from tests.support import sequence_audit

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("role", "expected"), [
    (Role.REVIEWER, ["Home", "Queues", "Policy", "My Forum shares", "API docs", "API tokens", "Change password"]),
    (Role.SENIOR_REVIEWER, ["Home", "Queues", "Approvals", "Forum re-reviews", "Appeals", "Policy",
                            "My Forum shares", "API docs", "API tokens", "Change password"]),
    (Role.SHARING_OFFICER, ["Home", "Policy", "Forum shares", "Sharing register", "Forum inbound", "API docs",
                            "API tokens", "Change password"]),
    (Role.COMPLIANCE_OFFICER, ["Home", "Forum re-reviews", "Appeals", "Policy", "Compliance", "Decision register",
                               "Audit trail", "Staff", "Detectors", "Forum shares", "Sharing register",
                               "Forum inbound", "Deliveries", "API docs", "API tokens", "Change password"]),
    (Role.ADMIN, ["Home", "Policy", "Staff", "Detectors", "Deliveries", "API docs", "API tokens", "Change password"]),
])
def test_navigation_per_role(make_staff, client, role, expected):
    user = make_staff(role)
    assert [item["label"] for item in items_for(user)] == expected
    client.force_login(user)
    page = client.get(reverse("core:home")).content.decode()
    assert f'<span class="role">{role.label}</span>' in page
    for label in {"Queues", "Approvals", "Appeals", "Compliance", "Decision register", "Audit trail", "Staff",
                  "Detectors", "Deliveries"} - set(expected):
        assert f">{label}</a>" not in page


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse("core:home"))
    assert response.status_code == 302 and response.url.startswith(reverse("people:login"))


def test_audit_trail_is_for_compliance_only(make_staff, client):
    client.force_login(make_staff(Role.REVIEWER))
    assert client.get(reverse("audit:events")).status_code == 403
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    page = client.get(reverse("audit:events"))
    assert page.status_code == 200 and b"Staff member created" in page.content


def test_audit_event_page_shows_its_hashes(make_staff, client):
    from reviewapp.audit.models import AuditEvent

    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    event = AuditEvent.objects.order_by("id").first()
    pending = client.get(reverse("audit:event", args=[event.pk])).content.decode()
    assert "pending sequencing" in pending
    sequence_audit()
    event.refresh_from_db()
    page = client.get(reverse("audit:event", args=[event.pk])).content.decode()
    assert f"#{event.seq}" in page and event.hash in page and event.prev_hash in page
    assert client.get(reverse("audit:event", args=[10**9])).status_code == 404


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "reviewapp API"
    docs = client.get(reverse("api-docs"))
    assert docs.status_code == 200 and b"swagger-ui" in docs.content


def test_not_found_pages_keep_the_visitors_layout(client):
    portal = client.get("/appeals/no-such-page/")
    assert portal.status_code == 404 and b"Back to your decisions" in portal.content
    staff = client.get("/no-such-page/")
    assert staff.status_code == 404 and b"Back to your decisions" not in staff.content
