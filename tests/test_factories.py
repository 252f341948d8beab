"""tests/factories.py: seeded data comes through the real services, and seeding has one home."""

import re

import pytest

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.cases.models import Case
from tests.conftest import flag_payload
from tests.factories import DetectorFactory, FlaggedCaseFactory, ingest_and_group
from tests.support import ROOT

pytestmark = pytest.mark.django_db


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("pk").values_list("action", flat=True))


def test_a_flagged_case_is_ingested_grouped_and_audited_like_any_other():
    case = FlaggedCaseFactory(detector=DetectorFactory(slug="cluster-watch"), account_id="acct_f", flags=2,
                              contact_email="lab@example.org", flag={"signal": "account_cluster"})
    assert case.state == Case.State.NEW and case.account.external_id == "acct_f"
    assert case.flag_count == 2 and case.signals == ["account_cluster"]  # the grouping's own aggregates
    assert case.account.contact_email == "lab@example.org"
    assert {f.external_id for f in case.flags.all()} == {"f-acct_f-1", "f-acct_f-2"}
    assert all(f.batch_id is not None and f.detector.slug == "cluster-watch" for f in case.flags.all())
    for action in (AuditAction.DETECTOR_CREATED, AuditAction.FLAGS_INGESTED, AuditAction.CASE_OPENED,
                   AuditAction.ACCOUNT_PROFILE_UPDATED):
        assert action in actions()
    again = FlaggedCaseFactory(detector=DetectorFactory(slug="cluster-watch"), account_id="acct_f")
    assert again == case and again.flag_count == 3  # the open case takes the next flag, with a fresh external id


def test_ingest_and_group_returns_the_cases_of_its_flags_accounts(detector):
    FlaggedCaseFactory(detector=detector, account_id="acct_elsewhere")
    cases = ingest_and_group(detector, [flag_payload(1), flag_payload(2), flag_payload(3, account_id="acct_1")])
    assert [(c.account.external_id, c.flag_count) for c in cases] == [("acct_1", 2), ("acct_2", 1)]


def test_a_seed_flag_the_ingestion_rejects_fails_the_test_saying_why(detector):
    with pytest.raises(AssertionError, match="score"):
        ingest_and_group(detector, [flag_payload(1, score=7)])
    assert not Case.objects.exists()


def test_no_test_module_copies_the_ingest_then_group_seeding():
    """Seeding cases is tests/factories.py's; a module that ingests and then groups itself copies it. (The
    grouping tests under tests/flags call the grouping itself, batch by batch: that is what they test.)"""
    copies = [str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("*.py")
              if path.name != "factories.py"
              and re.search(r"\bflags_ingest\(", text := path.read_text()) and re.search(r"\bgroup_all_flags\(", text)]
    assert copies == []
