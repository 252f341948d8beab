"""Staff API tokens (issue 11): hashed at rest, shown once, acting with the person's role and nothing more,
revocable, refused when revoked, expired or their person is deactivated, audited, free of CSRF (a session is
not), rate limited on failures, and declared in the OpenAPI schema."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM
from reviewapp.people.models import StaffApiToken, User
from reviewapp.people.roles import Role
from reviewapp.people.services import (
    ApiTokenError,
    issue_api_token,
    revoke_api_token,
    staff_password_issue,
    staff_set_active,
    staff_set_role,
)
from tests.factories import FlaggedCaseFactory

pytestmark = pytest.mark.django_db
SECRET = re.compile(r"rvs_[A-Za-z0-9_-]{43}")
EVIDENCE_API = "/api/v1/compliance/evidence-access/"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


def token_client(secret: str, **extra) -> Client:
    """A client with no session at all: the token is all it has."""
    return Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {secret}", **extra)


def events(action: AuditAction, token: StaffApiToken) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, target_type="people.staffapitoken",
                                          target_id=str(token.pk)).order_by("id"))


def rows_containing(text: str) -> dict[str, int]:
    """Every table of the database whose rows contain ``text`` anywhere, with how many."""
    found = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT count(*) FROM {quoted} t WHERE t::text LIKE %s", [f"%{text}%"])
            count = cursor.fetchone()[0]
            if count:
                found[table] = count
    return found


# ── the pages: create, shown once, hashed at rest ───────────────────────────────────────────────────────────────

def test_a_new_token_is_shown_once_and_only_its_hash_is_kept(make_staff, client):
    officer = make_staff(Role.COMPLIANCE_OFFICER, username="cora")
    client.force_login(officer)
    page = client.get(reverse("people:api-tokens"))
    assert page.status_code == 200 and b"You have no API tokens." in page.content

    created = client.post(reverse("people:api-token-create"), {"name": "nightly export", "expires_in_days": "30"})
    assert created.status_code == 200
    assert "no-store" in created["Cache-Control"]
    secrets = SECRET.findall(created.content.decode())
    assert secrets, created.content.decode()
    secret = secrets[0]
    assert set(secrets) == {secret}  # the same one token in the field and the curl line
    assert f'curl -H "Authorization: Token {secret}" http://testserver/api/v1/compliance/transparency/' in \
        created.content.decode()

    token = StaffApiToken.objects.get()
    assert token.user == officer and token.name == "nightly export"
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret.startswith(token.prefix) and len(token.prefix) == 10
    assert timedelta(days=29, hours=23) < token.expires_at - timezone.now() <= timedelta(days=30)
    # Nowhere at rest: not the token row, the audit trail, the session, the cache of messages, any table.
    assert rows_containing(secret) == {}
    assert rows_containing(secret[len(token.prefix):]) == {}

    listing = client.get(reverse("people:api-tokens")).content.decode()
    assert secret not in listing and f"{token.prefix}…" in listing and "nightly export" in listing

    [event] = events(AuditAction.STAFF_API_TOKEN_CREATED, token)
    assert event.actor_id == str(officer.pk)
    assert event.data == {"user": "cora", "name": "nightly export", "prefix": token.prefix,
                          "expires_at": token.expires_at.isoformat()}


def test_the_form_refuses_a_missing_name_and_creates_nothing(make_staff, client):
    client.force_login(make_staff(Role.REVIEWER))
    response = client.post(reverse("people:api-token-create"), {"name": "  ", "expires_in_days": ""})
    assert response.status_code == 422 and b"No token was created" in response.content
    response = client.post(reverse("people:api-token-create"), {"name": "x" * 101, "expires_in_days": ""})
    assert response.status_code == 422 and b"No token was created" in response.content
    assert not StaffApiToken.objects.exists() and not AuditEvent.objects.filter(
        action=AuditAction.STAFF_API_TOKEN_CREATED).exists()


def test_a_token_that_never_expires(make_staff, client):
    client.force_login(make_staff(Role.REVIEWER))
    client.post(reverse("people:api-token-create"), {"name": "forever", "expires_in_days": ""})
    assert StaffApiToken.objects.get().expires_at is None


def test_who_may_hold_a_token(make_staff):
    officer, other = make_staff(Role.COMPLIANCE_OFFICER), make_staff(Role.REVIEWER)
    with pytest.raises(ApiTokenError, match="their own"):
        issue_api_token(actor=officer, user=other, name="as someone else")
    with pytest.raises(ApiTokenError, match="their own"):
        issue_api_token(actor=SYSTEM, user=other, name="from nowhere")
    no_role = User.objects.create_user(username="not-staff", password="correct horse battery")
    with pytest.raises(ApiTokenError, match="role"):
        issue_api_token(actor=no_role, user=no_role, name="no role")
    with pytest.raises(ApiTokenError, match="future"):
        issue_api_token(actor=officer, user=officer, name="stale", expires_at=timezone.now())
    assert not StaffApiToken.objects.exists()


# ── the API: the role's permissions, no more ───────────────────────────────────────────────────────────────────

def test_a_token_acts_with_its_persons_role(make_staff, client):
    officer, reviewer = make_staff(Role.COMPLIANCE_OFFICER), make_staff(Role.REVIEWER)
    _, officer_secret = issue_api_token(actor=officer, user=officer, name="exports")
    _, reviewer_secret = issue_api_token(actor=reviewer, user=reviewer, name="scripts")

    assert token_client(officer_secret).get(EVIDENCE_API).status_code == 200
    assert token_client(officer_secret).get("/api/v1/compliance/transparency/").status_code == 200
    # The reviewer's token reads what a reviewer reads, and not the compliance console: exactly as its session.
    assert token_client(reviewer_secret).get("/api/v1/cases").status_code == 200
    assert token_client(reviewer_secret).get(EVIDENCE_API).status_code == 403
    client.force_login(reviewer)
    assert client.get(EVIDENCE_API).status_code == 403


def test_a_token_follows_its_persons_role_as_it_changes(make_staff):
    admin, person = make_staff(Role.ADMIN), make_staff(Role.REVIEWER)
    _, secret = issue_api_token(actor=person, user=person, name="scripts")
    assert token_client(secret).get(EVIDENCE_API).status_code == 403
    staff_set_role(actor=admin, user=person, role=Role.COMPLIANCE_OFFICER)
    assert token_client(secret).get(EVIDENCE_API).status_code == 200
    staff_set_role(actor=admin, user=person, role=Role.SHARING_OFFICER)
    assert token_client(secret).get(EVIDENCE_API).status_code == 403


def test_a_token_opens_no_page_only_the_api(make_staff):
    officer = make_staff(Role.COMPLIANCE_OFFICER)
    _, secret = issue_api_token(actor=officer, user=officer, name="exports")
    response = token_client(secret).get("/compliance/")
    assert response.status_code == 302 and response.url.startswith(reverse("people:login"))


def test_a_token_needs_no_csrf_token_but_a_session_does(make_staff, detector):
    reviewer = make_staff(Role.REVIEWER)
    _, secret = issue_api_token(actor=reviewer, user=reviewer, name="claims")
    first, second = FlaggedCaseFactory(detector=detector), FlaggedCaseFactory(detector=detector)

    claimed = token_client(secret).post(f"/api/v1/cases/{first.pk}/claim")
    assert claimed.status_code == 200, claimed.content
    first.refresh_from_db()
    assert first.assignee == reviewer
    assert AuditEvent.objects.filter(action=AuditAction.CASE_CLAIMED, target_id=str(first.pk),
                                     actor_id=str(reviewer.pk)).exists()

    session = Client(enforce_csrf_checks=True)
    session.force_login(reviewer)
    refused = session.post(f"/api/v1/cases/{second.pk}/claim")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    second.refresh_from_db()
    assert second.assignee is None
    # A session is what authenticates when both are sent, so a token header does not lift its CSRF check.
    both = session.post(f"/api/v1/cases/{second.pk}/claim", HTTP_AUTHORIZATION=f"Token {secret}")
    assert both.status_code == 403 and "CSRF" in both.json()["detail"]


# ── refused: revoked, expired, deactivated, one-time password, unknown ─────────────────────────────────────────

def _refused(secret: str, reason: str) -> None:
    response = token_client(secret).get(EVIDENCE_API)
    assert response.status_code == 401, (response.status_code, response.content)
    assert response["WWW-Authenticate"].startswith("Token")
    assert reason in response.json()["detail"]


def test_revoked_expired_and_deactivated_tokens_are_refused(make_staff):
    admin = make_staff(Role.ADMIN)
    officer = make_staff(Role.COMPLIANCE_OFFICER)
    revoked, revoked_secret = issue_api_token(actor=officer, user=officer, name="revoked")
    expiring, expiring_secret = issue_api_token(actor=officer, user=officer, name="expiring",
                                                expires_at=timezone.now() + timedelta(days=1))
    assert token_client(revoked_secret).get(EVIDENCE_API).status_code == 200
    assert token_client(expiring_secret).get(EVIDENCE_API).status_code == 200

    revoke_api_token(actor=officer, token=revoked)
    _refused(revoked_secret, "revoked")
    StaffApiToken.objects.filter(pk=expiring.pk).update(expires_at=timezone.now() - timedelta(seconds=1))  # a day on
    _refused(expiring_secret, "expired")

    other = make_staff(Role.COMPLIANCE_OFFICER)
    _, other_secret = issue_api_token(actor=other, user=other, name="leaves")
    staff_set_active(actor=admin, user=other, active=False)
    _refused(other_secret, "deactivated")
    staff_set_active(actor=admin, user=other, active=True)
    assert token_client(other_secret).get(EVIDENCE_API).status_code == 200
    staff_password_issue(actor=admin, user=other)  # an admin's reset: the person must choose a password again
    _refused(other_secret, "one-time password")

    _refused("rvs_" + "A" * 43, "Unknown")
    bad = Client().get(EVIDENCE_API, HTTP_AUTHORIZATION=f"Token {revoked_secret} extra")
    assert bad.status_code == 401


def test_without_any_credentials_the_api_still_refuses(client):
    assert client.get(EVIDENCE_API).status_code == 403


def test_failed_tokens_are_rate_limited_per_address(make_staff, settings):
    settings.API_TOKEN_FAILURE_RATE_LIMIT = "3/h"  # an hour: the window all but never rolls over mid-test
    officer = make_staff(Role.COMPLIANCE_OFFICER)
    _, secret = issue_api_token(actor=officer, user=officer, name="exports")
    for _ in range(3):
        assert token_client("rvs_guess").get(EVIDENCE_API).status_code == 401
    assert token_client("rvs_guess").get(EVIDENCE_API).status_code == 429
    # Past the limit even the right token is answered 429 from that address: guesses there earn nothing.
    assert token_client(secret).get(EVIDENCE_API).status_code == 429
    assert token_client(secret, REMOTE_ADDR="192.0.2.7").get(EVIDENCE_API).status_code == 200


# ── revoking ───────────────────────────────────────────────────────────────────────────────────────────────────

def test_revoking_asks_first_then_revokes_and_audits_once(make_staff, client):
    officer = make_staff(Role.COMPLIANCE_OFFICER)
    token, secret = issue_api_token(actor=officer, user=officer, name="exports")
    client.force_login(officer)
    url = reverse("people:api-token-revoke", args=[token.pk])
    asked = client.post(url)
    assert asked.status_code == 200 and b"Revoke exports" in asked.content
    token.refresh_from_db()
    assert token.revoked_at is None and token_client(secret).get(EVIDENCE_API).status_code == 200

    done = client.post(url, {"confirm": "1"})
    assert done.status_code == 302 and done.url == reverse("people:api-tokens")
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token_client(secret).get(EVIDENCE_API).status_code == 401
    client.post(url, {"confirm": "1"})  # again: nothing more happens
    [event] = events(AuditAction.STAFF_API_TOKEN_REVOKED, token)
    assert event.actor_id == str(officer.pk) and event.data["prefix"] == token.prefix
    assert "revoked" in client.get(reverse("people:api-tokens")).content.decode()


def test_someone_elses_token_is_not_found(make_staff, client):
    officer, other = make_staff(Role.COMPLIANCE_OFFICER), make_staff(Role.COMPLIANCE_OFFICER, username="olga")
    theirs, secret = issue_api_token(actor=other, user=other, name="olga's export")
    client.force_login(officer)
    url = reverse("people:api-token-revoke", args=[theirs.pk])
    assert client.post(url).status_code == 404
    assert client.post(url, {"confirm": "1"}).status_code == 404
    assert "olga's export" not in client.get(reverse("people:api-tokens")).content.decode()
    with pytest.raises(ApiTokenError):
        revoke_api_token(actor=officer, token=theirs)
    theirs.refresh_from_db()
    assert theirs.revoked_at is None and token_client(secret).get(EVIDENCE_API).status_code == 200
    assert not events(AuditAction.STAFF_API_TOKEN_REVOKED, theirs)


# ── use: recorded once a day, only when the token served a request ─────────────────────────────────────────────

def test_the_first_successful_use_of_each_day_is_recorded(make_staff):
    officer = make_staff(Role.COMPLIANCE_OFFICER)
    token, secret = issue_api_token(actor=officer, user=officer, name="exports")
    # A refused request (a write the officer may not make) is no use of the token.
    assert token_client(secret).post(f"/api/v1/cases/{10**9}/claim").status_code in (403, 404)
    token.refresh_from_db()
    assert token.last_used_at is None and not events(AuditAction.STAFF_API_TOKEN_USED, token)

    assert token_client(secret).get(EVIDENCE_API).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    with CaptureQueriesContext(connection) as queries:
        assert token_client(secret).get(EVIDENCE_API).status_code == 200
    assert not [q for q in queries if q["sql"].startswith('UPDATE "people_staffapitoken"')]
    [used] = events(AuditAction.STAFF_API_TOKEN_USED, token)
    assert used.actor_id == str(officer.pk) and used.data == {"name": "exports", "prefix": token.prefix}

    yesterday = timezone.now() - timedelta(days=1)
    StaffApiToken.objects.filter(pk=token.pk).update(last_used_at=yesterday)  # as if the last use was yesterday
    assert token_client(secret).get(EVIDENCE_API).status_code == 200
    assert len(events(AuditAction.STAFF_API_TOKEN_USED, token)) == 2
    token.refresh_from_db()
    assert token.last_used_at.date() == timezone.now().date()


# ── the OpenAPI schema ─────────────────────────────────────────────────────────────────────────────────────────

def test_the_schema_declares_the_token_scheme(client):
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/json").json()
    scheme = schema["components"]["securitySchemes"]["staffToken"]
    assert scheme["type"] == "apiKey" and scheme["in"] == "header" and scheme["name"] == "Authorization"
    assert "Token" in scheme["description"]
    operation = schema["paths"]["/api/v1/compliance/evidence-access/"]["get"]
    assert {"staffToken": []} in operation["security"]
    assert {"401", "403", "429"} <= set(operation["responses"])  # a refused token, the role, the failure limit
    flags = schema["paths"]["/api/v1/flags/"]["post"]
    assert {"staffToken": []} not in flags["security"]  # only detectors post flags


# ── navigation ─────────────────────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("role", list(Role))
def test_every_staff_member_finds_their_tokens(make_staff, client, role):
    client.force_login(make_staff(role))
    page = client.get(reverse("core:home")).content.decode()
    assert f'href="{reverse("people:api-tokens")}"' in page
    assert client.get(reverse("people:api-tokens")).status_code == 200
