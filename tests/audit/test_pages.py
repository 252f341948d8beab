"""The audit pages cope with the moment between an event's commit and its place in the chain."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import SYSTEM, record
from reviewapp.people.roles import Role
from tests.support import sequence_audit

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer_client(make_staff, client):
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    sequence_audit()
    return client


def test_a_pending_event_is_listed_and_shown_as_pending_then_with_its_place(officer_client):
    event = record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"note": "just now"})
    listing = officer_client.get(reverse("audit:events")).content.decode()
    assert reverse("audit:event", args=[event.pk]) in listing and "pending sequencing" in listing
    detail = officer_client.get(reverse("audit:event", args=[event.pk])).content.decode()
    assert "pending sequencing" in detail and "just now" in detail

    sequence_audit()
    event.refresh_from_db()
    detail = officer_client.get(reverse("audit:event", args=[event.pk])).content.decode()
    assert f"Audit event #{event.seq}" in detail and event.hash in detail
    assert "pending sequencing" not in officer_client.get(reverse("audit:events")).content.decode()


def test_the_trail_warns_when_events_wait_too_long_for_the_sequencer(officer_client, monkeypatch):
    record(actor=SYSTEM, action=AuditAction.STAFF_CREATED)
    assert "waiting more than a minute" not in officer_client.get(reverse("audit:events")).content.decode()
    later = timezone.now() + timedelta(minutes=2)
    monkeypatch.setattr("reviewapp.audit.selectors.timezone.now", lambda: later)
    page = officer_client.get(reverse("audit:events")).content.decode()
    assert "Not yet in the hash chain: 1 event waiting more than a minute" in page
