"""Every text that staff or holders write has its limit on its model field (README "Limits on what people
type"), and the services that write staff and detector records refuse longer text, naming the field."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import models

from flags.services import detector_ensure
from reviewapp.audit.services import SYSTEM
from reviewapp.people.roles import Role
from reviewapp.people.services import StaffError, staff_create

pytestmark = pytest.mark.django_db
OUR_APPS = {"audit", "people", "policy", "outbox", "cases", "core", "flags", "appeals"}
# Unbounded text no person types in: policy documents (loaded from policies/, bounded by the loader), what
# a failed delivery or the database answered, and the flag's evidence (bounded by the flag schema).
WRITTEN_BY_THE_SYSTEM = {
    "policy.PolicyVersion.summary", "policy.PolicyVersion.text", "policy.Clause.text",
    "policy.Clause.evidence_required", "outbox.OutboxMessage.last_error", "flags.FlagSetAside.reason",
}


def test_every_text_field_of_ours_has_a_limit_unless_only_the_system_writes_it():
    unbounded = sorted(
        f"{model._meta.app_label}.{model.__name__}.{field.name}"
        for model in apps.get_models() if model._meta.app_label in OUR_APPS
        for field in model._meta.get_fields()
        if isinstance(field, models.TextField | models.CharField) and field.max_length is None)
    assert [name for name in unbounded if name not in WRITTEN_BY_THE_SYSTEM] == []


def test_staff_records_are_bounded_by_their_service(db):
    with pytest.raises(StaffError, match="Last name is 151 characters long; the limit is 150"):
        staff_create(actor=SYSTEM, username="lena", role=Role.REVIEWER, last_name="l" * 151)
    with pytest.raises(StaffError, match="Username is 151 characters long; the limit is 150"):
        staff_create(actor=SYSTEM, username="u" * 151, role=Role.REVIEWER)


def test_a_detector_description_is_bounded_by_its_service(db):
    with pytest.raises(ValueError, match="Description is 2,001 characters long; the limit is 2,000"):
        detector_ensure(actor=SYSTEM, slug="sweeper", description="d" * 2_001)
    assert detector_ensure(actor=SYSTEM, slug="sweeper", description="d" * 2_000).description == "d" * 2_000
