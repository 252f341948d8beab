"""`manage.py detector_token SLUG`: creates the detector if needed and prints a working token, once."""

import hashlib
import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from flags.models import Detector, DetectorToken
from flags.services import detector_set_active
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM
from tests.conftest import flag_payload

pytestmark = pytest.mark.django_db


def issue_token(slug: str, *args: str) -> tuple[str, list[str]]:
    """Run the command; answer the token (its last line) and every line of its output."""
    out = io.StringIO()
    call_command("detector_token", *args, "--", slug, stdout=out)
    lines = out.getvalue().strip().splitlines()
    return lines[-1], lines


def post_flag(client, token: str, *, detector: str, external_id: str = "x1"):
    """Post one valid schema-v1 flag to the ingestion API as the detector holding ``token``."""
    return client.post("/api/v1/flags/", flag_payload(external_id, detector=detector),
                       content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_creates_the_detector_and_prints_a_working_token_as_the_last_line(client):
    token, lines = issue_token("prompt-templates", "--name", "Prompt templates", "--owner-team", "Abuse ML")

    assert lines[-1] == token and " " not in token and token.startswith("rvd_")
    detector = Detector.objects.get(slug="prompt-templates")
    assert (detector.name, detector.owner_team, detector.active) == ("Prompt templates", "Abuse ML", True)
    response = post_flag(client, token, detector="prompt-templates")
    assert response.status_code == 201, response.content
    assert response.json()["created"] == 1

    created = AuditEvent.objects.get(action=AuditAction.DETECTOR_CREATED, target_id=str(detector.pk))
    row = DetectorToken.objects.get(detector=detector)
    issued = AuditEvent.objects.get(action=AuditAction.DETECTOR_TOKEN_CREATED, target_id=str(row.pk))
    for event in (created, issued):
        assert (event.actor_type, event.actor_id) == (SYSTEM.type, "manage.py detector_token")
    assert row.created_by.startswith("detector_token (by ")


def test_a_second_call_issues_a_second_token_and_both_work(client):
    first, _ = issue_token("volume")
    second, lines = issue_token("volume")

    assert first != second
    assert Detector.objects.filter(slug="volume").count() == 1
    assert AuditEvent.objects.filter(action=AuditAction.DETECTOR_CREATED).count() == 1
    assert not any(line.startswith("Created detector") for line in lines)
    assert DetectorToken.objects.filter(detector__slug="volume", revoked_at=None).count() == 2
    assert post_flag(client, first, detector="volume", external_id="a").status_code == 201
    assert post_flag(client, second, detector="volume", external_id="b").status_code == 201


def test_options_for_an_existing_detector_are_ignored_and_the_output_says_so():
    issue_token("volume", "--name", "Volume")
    _, lines = issue_token("volume", "--name", "Something else")
    assert Detector.objects.get(slug="volume").name == "Volume"
    assert any("ignored" in line for line in lines)


def test_the_token_is_stored_only_as_its_hash():
    token, _ = issue_token("volume")

    row = DetectorToken.objects.get(detector__slug="volume")
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(row.prefix) and len(row.prefix) < len(token) // 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(t)::text FROM flags_detectortoken t")
        token_rows = [text for (text,) in cursor.fetchall()]
        cursor.execute("SELECT row_to_json(a)::text FROM audit_auditevent a")
        audit_rows = [text for (text,) in cursor.fetchall()]
    assert len(token_rows) == 1 and row.token_hash in token_rows[0]
    assert not any(token in text for text in token_rows + audit_rows)


@pytest.mark.parametrize("slug", ["Volume", "-volume", "_volume", "vol ume", "vol.ume", "volume\n", "v" * 65, ""])
def test_a_bad_slug_is_refused_and_nothing_is_created(slug):
    with pytest.raises(CommandError, match="Invalid detector slug"):
        issue_token(slug)
    assert not Detector.objects.exists() and not DetectorToken.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="detector.").exists()


def test_an_inactive_detector_gets_no_token(client):
    token, _ = issue_token("volume")
    detector_set_active(actor=SYSTEM, detector=Detector.objects.get(slug="volume"), active=False)

    with pytest.raises(CommandError, match="'volume' is inactive"):
        issue_token("volume")
    assert DetectorToken.objects.filter(detector__slug="volume").count() == 1
    assert post_flag(client, token, detector="volume").status_code == 401
