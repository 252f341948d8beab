"""Verification runs without a worker: who may start one, what each outcome reads as, the home page's panel.

The real worker (and the checks against real checkpoints and a real witness) is in test_verification_worker.py.
"""

from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.checkpoints import audit_checkpoint
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM, record
from reviewapp.compliance.verification import services
from reviewapp.compliance.verification.models import VerificationRun
from reviewapp.compliance.verification.services import verification_perform, verification_start
from reviewapp.people.roles import Role
from tests.support import sequence_audit

pytestmark = pytest.mark.django_db
KEY = "verification-unit-test-key"


@pytest.fixture
def officer(make_staff):
    return make_staff(Role.COMPLIANCE_OFFICER, username="olga")


@pytest.fixture
def officer_client(officer, client):
    client.force_login(officer)
    return client


@pytest.fixture
def queued(monkeypatch):
    """The runs started here that would be queued (nothing commits under ``db``, so nothing is sent anyway)."""
    sent: list[int] = []
    monkeypatch.setattr(services, "_queue", sent.append)
    return sent


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.SENIOR_REVIEWER, Role.SHARING_OFFICER, Role.ADMIN])
def test_only_compliance_officers_start_a_run_or_see_one(role, make_staff, client, officer):
    client.force_login(make_staff(role))
    assert client.post(reverse("compliance:verify")).status_code == 403
    assert client.get(reverse("compliance:verify")).status_code == 403
    run = VerificationRun.objects.create(started_by=officer)
    assert client.get(reverse("compliance:verification", args=[run.pk])).status_code == 403
    assert VerificationRun.objects.count() == 1
    assert not AuditEvent.objects.filter(action=AuditAction.COMPLIANCE_VERIFICATION_STARTED).exists()


def test_starting_a_run_needs_the_csrf_token(officer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(officer)
    assert client.post(reverse("compliance:verify")).status_code == 403
    assert not VerificationRun.objects.exists()
    page = client.get(reverse("compliance:verify")).content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[2].split('"')[0]  # the first is the sign-out form's
    assert client.post(reverse("compliance:verify"), {"csrfmiddlewaretoken": token}).status_code == 302
    assert VerificationRun.objects.count() == 1


def test_the_service_refuses_anyone_without_the_verify_permission(make_staff):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        verification_start(officer=make_staff(Role.ADMIN))
    assert not VerificationRun.objects.exists()


def test_a_start_is_audited_with_its_run_and_a_second_start_joins_the_run_under_way(officer, queued):
    run = verification_start(officer=officer)
    assert verification_start(officer=officer) == run
    started = AuditEvent.objects.get(action=AuditAction.COMPLIANCE_VERIFICATION_STARTED)
    assert (started.actor_id, started.target_type, started.target_id, started.data) == (
        str(officer.pk), "compliance_verification.verificationrun", str(run.pk), {"run": run.pk})
    # A run lost with its worker does not block the next one for ever.
    VerificationRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert verification_start(officer=officer) != run
    assert AuditEvent.objects.filter(action=AuditAction.COMPLIANCE_VERIFICATION_STARTED).count() == 2


def test_the_run_page_reloads_while_under_way_and_can_be_told_not_to(officer_client, officer):
    run = VerificationRun.objects.create(started_by=officer, status=VerificationRun.Status.RUNNING,
                                         events_total=20_000, events_checked=5_000)
    response = officer_client.get(reverse("compliance:verification", args=[run.pk]))
    assert response["Refresh"] == "2"
    page = response.content.decode()
    assert '<progress id="verification-bar" value="5000" max="20000">' in page and "Verifying the chain" in page
    assert "<meta" not in page.split("<body>")[1]  # the header reloads the page, not a refresh in the markup
    quiet = officer_client.get(reverse("compliance:verification", args=[run.pk]), {"refresh": "off"})
    assert not quiet.has_header("Refresh") and "to see the progress" in quiet.content.decode()
    assert officer_client.get(reverse("compliance:verification", args=[run.pk + 1])).status_code == 404


def _perform(officer, **settings) -> VerificationRun:
    sequence_audit()
    run = VerificationRun.objects.create(started_by=officer)
    with override_settings(**settings):
        return verification_perform(run_id=run.pk)


def test_without_a_witness_configured_an_intact_chain_is_incomplete(officer, tmp_path):
    path = tmp_path / "cp.jsonl"
    record(actor=SYSTEM, action=AuditAction.STAFF_CREATED)
    sequence_audit()
    audit_checkpoint(checkpoint_file=path, key=KEY)
    run = _perform(officer, AUDIT_CHECKPOINT_FILE=path, AUDIT_CHECKPOINT_KEY=KEY, AUDIT_WITNESS_URL="")
    assert run.status == VerificationRun.Status.INCOMPLETE
    assert run.checkpoints["status"] == "ok"
    assert run.witness == {"status": "not_configured",
                           "detail": "AUDIT_WITNESS_URL is not set: there is no witness to compare with"}
    assert run.unwitnessed == run.checkpoints["tail"] == 1  # the checkpoint's own event


def test_an_unreachable_witness_and_a_missing_key_are_said(officer, tmp_path):
    record(actor=SYSTEM, action=AuditAction.STAFF_CREATED)
    run = _perform(officer, AUDIT_CHECKPOINT_FILE=tmp_path / "none.jsonl", AUDIT_CHECKPOINT_KEY=KEY,
                   AUDIT_WITNESS_URL="http://127.0.0.1:9/witness/checkpoints")
    assert run.status == VerificationRun.Status.INCOMPLETE
    assert run.witness["status"] == "unavailable" and "127.0.0.1:9" in run.witness["detail"]
    assert run.checkpoints["status"] == "none"
    run = _perform(officer, AUDIT_CHECKPOINT_KEY="", AUDIT_WITNESS_URL="")
    assert run.checkpoints["status"] == "not_configured" and "AUDIT_CHECKPOINT_KEY" in run.checkpoints["detail"]


def test_a_run_that_raises_is_failed_and_audited(officer, officer_client, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "chain_verify", broken)
    run = _perform(officer)
    assert run.status == VerificationRun.Status.FAILED and run.reason == "RuntimeError: database went away"
    finished = AuditEvent.objects.get(action=AuditAction.COMPLIANCE_VERIFICATION_FINISHED)
    assert finished.data["status"] == "failed" and finished.actor_type == "system"
    assert "The run failed: RuntimeError: database went away" in officer_client.get(
        reverse("compliance:verification", args=[run.pk])).content.decode()
    assert verification_perform(run_id=run.pk) == run  # a redelivered task finds it finished and does nothing
    assert AuditEvent.objects.filter(action=AuditAction.COMPLIANCE_VERIFICATION_FINISHED).count() == 1


def test_a_second_delivery_leaves_a_run_under_way_alone_unless_it_was_lost(officer, tmp_path):
    sequence_audit()
    began = timezone.now() - timedelta(minutes=5)
    run = VerificationRun.objects.create(started_by=officer, status=VerificationRun.Status.RUNNING, began_at=began,
                                         events_total=10, events_checked=5)
    assert verification_perform(run_id=run.pk).status == VerificationRun.Status.RUNNING
    run.refresh_from_db()
    assert (run.began_at, run.events_checked) == (began, 5)
    VerificationRun.objects.filter(pk=run.pk).update(began_at=timezone.now() - timedelta(hours=1))
    with override_settings(AUDIT_CHECKPOINT_FILE=tmp_path / "none.jsonl", AUDIT_WITNESS_URL=""):
        taken_over = verification_perform(run_id=run.pk)
    assert taken_over.status == VerificationRun.Status.INCOMPLETE and taken_over.began_at > began


def test_the_home_panel_shows_the_last_result_and_the_unwitnessed_tail(officer_client, officer, tmp_path):
    home = officer_client.get(reverse("compliance:home")).content.decode()
    assert "No verification has been run from the console yet." in home
    assert f'href="{reverse("compliance:verify")}"' in home
    assert "(no checkpoint yet)" in home

    path = tmp_path / "cp.jsonl"
    for i in range(3):
        record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"i": i})
    sequence_audit()
    checkpoint = audit_checkpoint(checkpoint_file=path, key=KEY)
    for i in range(4):  # after the checkpoint
        record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"after": i})
    run = _perform(officer, AUDIT_CHECKPOINT_FILE=path, AUDIT_CHECKPOINT_KEY=KEY, AUDIT_WITNESS_URL="")
    after = AuditEvent.objects.filter(seq__gt=checkpoint.data["head_seq"]).count() + AuditEvent.objects.filter(
        seq__isnull=True).count()
    home = officer_client.get(reverse("compliance:home")).content.decode()
    assert f'href="{reverse("compliance:verification", args=[run.pk])}">#{run.pk}</a>' in home
    assert f"finished {run.finished_at:%Y-%m-%d %H:%M} UTC" in home
    assert "Incomplete" in home
    assert f"Unwitnessed tail: <strong>{after}</strong> events after the last signed checkpoint" in home
    assert after >= 5  # four events and the checkpoint's own record, at least (and this run's)
    assert f'href="{reverse("compliance:audit-event", args=[checkpoint.pk])}">checkpoint</a>' in home


def test_the_runs_are_listed_newest_first(officer_client, officer):
    older = VerificationRun.objects.create(started_by=officer, status=VerificationRun.Status.OK, events_checked=9)
    newer = VerificationRun.objects.create(started_by=officer, status=VerificationRun.Status.BROKEN, broken_seq=4)
    page = officer_client.get(reverse("compliance:verify")).content.decode()
    assert page.index(f">#{newer.pk}<") < page.index(f">#{older.pk}<")
    assert "Broken at event #4" in page and "Verify the chain now" in page
