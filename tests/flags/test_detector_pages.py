"""The Detectors pages: list, create, (de)activate, issue, revoke and rotate tokens; each change audited."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from flags.models import Detector, DetectorToken
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.people.roles import Role
from reviewapp.people.tokens import token_digest

from .test_detector_token_command import issue_token, post_flag

pytestmark = pytest.mark.django_db
SHOWN_TOKEN = re.compile(r'<code class="mono">(rvd_[A-Za-z0-9_-]+)</code>')


@pytest.fixture
def admin(client, make_staff):
    user = make_staff(Role.ADMIN)
    client.force_login(user)
    return user


def shown_token(response) -> str:
    tokens = SHOWN_TOKEN.findall(response.content.decode())
    assert len(tokens) == 1, "exactly one token is shown"
    return tokens[0]


def events(action: AuditAction, target) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, target_id=str(target.pk)).order_by("id"))


def test_an_admin_creates_a_detector_and_it_is_audited(client, admin):
    response = client.post(reverse("detectors:create"), {
        "slug": "prompt-templates", "name": "Prompt templates", "owner_team": "Abuse ML",
        "description": "Finds templates.",
    }, follow=True)

    assert response.status_code == 200
    detector = Detector.objects.get(slug="prompt-templates")
    assert (detector.name, detector.owner_team, detector.description) == ("Prompt templates", "Abuse ML",
                                                                          "Finds templates.")
    page = response.content.decode()
    assert "Created detector prompt-templates" in page and "No tokens: this detector cannot post flags yet" in page
    [event] = events(AuditAction.DETECTOR_CREATED, detector)
    assert (event.actor_type, event.actor_id) == ("user", str(admin.pk))


@pytest.mark.parametrize(("slug", "error"), [
    ("Not A Slug", "Use lowercase letters"),
    ("volume", "already exists"),
])
def test_a_bad_or_taken_slug_is_refused_with_the_form_kept(client, admin, slug, error):
    issue_token("volume")
    before = AuditEvent.objects.count()

    response = client.post(reverse("detectors:create"), {"slug": slug, "name": "Kept name"})

    assert response.status_code == 400
    page = response.content.decode()
    assert error in page and 'value="Kept name"' in page
    assert Detector.objects.count() == 1 and AuditEvent.objects.count() == before


def test_a_token_issued_on_the_page_works_and_is_shown_only_once(client, admin):
    issue_token("volume")
    detector = Detector.objects.get(slug="volume")

    response = client.post(reverse("detectors:token-create", args=[detector.pk]), follow=True)

    token = shown_token(response)
    row = DetectorToken.objects.get(detector=detector, created_by=admin.username)
    assert token.startswith(row.prefix)
    assert post_flag(client, token, detector="volume").status_code == 201
    [event] = events(AuditAction.DETECTOR_TOKEN_CREATED, row)
    assert (event.actor_id, event.data) == (str(admin.pk), {"detector": "volume", "prefix": row.prefix})
    again = client.get(reverse("detectors:list")).content.decode()
    assert token not in again and not SHOWN_TOKEN.search(again)
    assert f"{row.prefix}…" in again and admin.username in again


CONFIRM = {"confirm": "1"}  # the second POST, from the confirmation page


def test_revoke_rotate_and_deactivate_ask_first_and_change_nothing_until_confirmed(client, admin):
    token, _ = issue_token("volume")
    detector, row = Detector.objects.get(), DetectorToken.objects.get()
    before = AuditEvent.objects.count()
    page = client.get(reverse("detectors:list")).content.decode()
    for label in (f"Revoke token {row.prefix}", f"Rotate token {row.prefix}"):
        assert f'class="button-danger" aria-label="{label}"' in page
    assert re.search(r'<button type="submit" class="button-danger">Deactivate volume</button>', page)

    asks = client.post(reverse("detectors:token-revoke", args=[row.pk]))
    html = asks.content.decode()
    assert asks.status_code == 200
    assert f"Revoke token {row.prefix}… of detector volume?" in html and "will get 401" in html
    assert re.search(r'name="confirm" value="1">\s*<button type="submit" class="button-danger">Revoke token', html)
    rotate = client.post(reverse("detectors:token-rotate", args=[row.pk])).content.decode()
    assert f"Rotate token {row.prefix}… of detector volume?" in rotate and "will get 401" in rotate
    deactivate = client.post(reverse("detectors:active", args=[detector.pk]), {"active": "0"}).content.decode()
    assert "Deactivate detector volume?" in deactivate and 'name="active" value="0"' in deactivate

    row.refresh_from_db()
    detector.refresh_from_db()
    assert row.revoked_at is None and detector.active and DetectorToken.objects.count() == 1
    assert AuditEvent.objects.count() == before
    assert post_flag(client, token, detector="volume").status_code == 201


def test_revoking_on_the_page_refuses_that_token_and_keeps_the_other(client, admin):
    leaked, _ = issue_token("volume")
    kept, _ = issue_token("volume")
    row = DetectorToken.objects.get(token_hash=token_digest(leaked))

    response = client.post(reverse("detectors:token-revoke", args=[row.pk]), CONFIRM, follow=True)

    assert response.status_code == 200 and f"Revoked token {row.prefix}" in response.content.decode()
    assert post_flag(client, leaked, detector="volume", external_id="a").status_code == 401
    assert post_flag(client, kept, detector="volume", external_id="b").status_code == 201
    row.refresh_from_db()
    assert row.revoked_at is not None
    [event] = events(AuditAction.DETECTOR_TOKEN_REVOKED, row)
    assert event.actor_id == str(admin.pk)
    page = client.get(reverse("detectors:list")).content.decode()
    assert "revoked " in page and f'aria-label="Revoke token {row.prefix}"' not in page

    client.post(reverse("detectors:token-revoke", args=[row.pk]), CONFIRM)  # twice: nothing more happens
    assert len(events(AuditAction.DETECTOR_TOKEN_REVOKED, row)) == 1


def test_rotating_revokes_the_old_token_and_shows_the_new_one_once(client, admin):
    old, _ = issue_token("volume")
    old_row = DetectorToken.objects.get()

    response = client.post(reverse("detectors:token-rotate", args=[old_row.pk]), CONFIRM, follow=True)

    new = shown_token(response)
    assert new != old
    assert post_flag(client, old, detector="volume", external_id="a").status_code == 401
    assert post_flag(client, new, detector="volume", external_id="b").status_code == 201
    new_row = DetectorToken.objects.exclude(pk=old_row.pk).get()
    assert len(events(AuditAction.DETECTOR_TOKEN_REVOKED, old_row)) == 1
    assert len(events(AuditAction.DETECTOR_TOKEN_CREATED, new_row)) == 1
    assert new not in client.get(reverse("detectors:list")).content.decode()

    refused = client.post(reverse("detectors:token-rotate", args=[old_row.pk]), CONFIRM, follow=True)
    assert "already revoked" in refused.content.decode() and not SHOWN_TOKEN.search(refused.content.decode())
    assert DetectorToken.objects.count() == 2


def test_deactivating_refuses_its_tokens_until_reactivated(client, admin):
    token, _ = issue_token("volume")
    detector = Detector.objects.get()

    client.post(reverse("detectors:active", args=[detector.pk]), {"active": "0", **CONFIRM})
    assert post_flag(client, token, detector="volume", external_id="a").status_code == 401
    refused = client.post(reverse("detectors:token-create", args=[detector.pk]), follow=True)
    assert "is inactive" in refused.content.decode() and DetectorToken.objects.count() == 1

    client.post(reverse("detectors:active", args=[detector.pk]), {"active": "1"})
    assert post_flag(client, token, detector="volume", external_id="b").status_code == 201
    assert [e.data for e in events(AuditAction.DETECTOR_UPDATED, detector)] == [{"active": False}, {"active": True}]


def test_reviewers_may_not_open_or_change_detectors(client, make_staff):
    issue_token("volume")
    detector = Detector.objects.get()
    client.force_login(make_staff(Role.REVIEWER))
    assert client.get(reverse("detectors:list")).status_code == 403
    assert client.post(reverse("detectors:token-create", args=[detector.pk])).status_code == 403
    assert client.post(reverse("detectors:create"), {"slug": "mine"}).status_code == 403
    assert DetectorToken.objects.count() == 1 and not Detector.objects.filter(slug="mine").exists()


def test_compliance_reads_the_list_but_every_change_is_403(client, make_staff):
    token, _ = issue_token("volume")
    detector, row = Detector.objects.get(), DetectorToken.objects.get()
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    before = AuditEvent.objects.count()

    page = client.get(reverse("detectors:list"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "volume" in html and f"{row.prefix}…" in html and token not in html
    for control in (">Revoke</button>", ">Rotate</button>", ">Issue a token", ">Deactivate", "Add a detector"):
        assert control not in html
    for url, data in [
        (reverse("detectors:create"), {"slug": "mine"}),
        (reverse("detectors:active", args=[detector.pk]), {"active": "0"}),
        (reverse("detectors:token-create", args=[detector.pk]), {}),
        (reverse("detectors:token-revoke", args=[row.pk]), {}),
        (reverse("detectors:token-rotate", args=[row.pk]), {}),
    ]:
        assert client.post(url, data).status_code == 403, url
    assert AuditEvent.objects.count() == before
    assert post_flag(client, token, detector="volume").status_code == 201


def test_changes_are_post_only_csrf_protected_and_unknown_ids_404(make_staff):
    issue_token("volume")
    detector, row = Detector.objects.get(), DetectorToken.objects.get()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(make_staff(Role.ADMIN))

    assert browser.get(reverse("detectors:token-revoke", args=[row.pk])).status_code == 405
    assert browser.post(reverse("detectors:token-revoke", args=[row.pk])).status_code == 403  # no CSRF token
    assert browser.post(reverse("detectors:active", args=[detector.pk]), {"active": "0"}).status_code == 403
    row.refresh_from_db()
    detector.refresh_from_db()
    assert row.revoked_at is None and detector.active

    browser.get(reverse("detectors:list"))  # sets the CSRF cookie, as a browser would
    csrf = {"csrfmiddlewaretoken": browser.cookies["csrftoken"].value}
    for name in ("token-revoke", "token-rotate"):
        assert browser.post(reverse(f"detectors:{name}", args=[10**9]), csrf).status_code == 404
    for name in ("active", "token-create"):
        assert browser.post(reverse(f"detectors:{name}", args=[10**9]), csrf).status_code == 404
    assert browser.post(reverse("detectors:token-revoke", args=[row.pk]), {**csrf, **CONFIRM}).status_code == 302


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse("detectors:list"))
    assert response.status_code == 302 and response.url.startswith(reverse("people:login"))


def test_the_list_takes_the_same_number_of_queries_for_more_detectors_and_tokens(client, admin):
    issue_token("one")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("detectors:list")).status_code == 200
        return len(captured)

    few = queries()
    for slug in ("two", "three", "four"):
        issue_token(slug)
        issue_token(slug)
    assert queries() == few
