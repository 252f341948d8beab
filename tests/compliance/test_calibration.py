"""Detector calibration: the numbers of a seeded data set, worked out by hand here, and the overturn-rate alert.

The data set (every row through the real services: ingestion and grouping, claims, decisions, appeals):

    detector  version  case  flags (of this version)  decision (clause T-1)  appeal
    miner     1.0      m1    2                        warn                   overturned
    miner     1.0      m2    1                        suspend 30 days        modified (to a warning)
    miner     1.0+2.0  m3    1 of 1.0, 1 of 2.0       no violation           —
    miner     1.0      m4    1                        (still open)           —
    miner     2.0      m5    1                        rate limit 7 days      filed, not decided yet
    sweeper   1.0      s1    3                        warn                   overturned
    sweeper   1.0      s2    1                        warn                   overturned

m2's modified appeal puts a replacement decision (a warning) on m2's case: an appeal outcome, not counted.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from appeals.services import appeal_claim, appeal_decide
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.compliance.quality.calibration import calibration_by_version
from reviewapp.compliance.quality.models import CalibrationAlert
from reviewapp.compliance.quality.services import calibration_alerts_check
from reviewapp.people.roles import Role
from tests.appeals.review_fixtures import decide, file_appeal
from tests.factories import DetectorFactory, FlaggedCaseFactory

pytestmark = pytest.mark.django_db


def _case(detector, account: str, version: str, flags: int = 1):
    return FlaggedCaseFactory(detector=detector, account_id=account, flags=flags,
                              contact_email=f"{account}@example.org", flag={"detector_version": version})


def _appeal(decision, senior, outcome: str, **extra):
    appeal = file_appeal(decision)
    appeal_claim(reviewer=senior, appeal=appeal)
    return appeal_decide(reviewer=senior, appeal=appeal, outcome=outcome, reason="Reasons for the holder.", **extra)


@pytest.fixture
def seeded(policy, make_staff):
    t1 = policy["extraction"]
    reviewer, senior = make_staff(Role.REVIEWER), make_staff(Role.SENIOR_REVIEWER)
    miner, sweeper = DetectorFactory(slug="miner"), DetectorFactory(slug="sweeper")
    m1 = _case(miner, "m1", "1.0", flags=2)
    m2 = _case(miner, "m2", "1.0")
    m3 = _case(miner, "m3", "1.0")
    assert _case(miner, "m3", "2.0") == m3  # the second version's flag joins the open case
    _case(miner, "m4", "1.0")
    m5 = _case(miner, "m5", "2.0")
    s1, s2 = _case(sweeper, "s1", "1.0", flags=3), _case(sweeper, "s2", "1.0")

    _appeal(decide(m1, reviewer=reviewer, clauses=[t1], action="warn", duration_days=None), senior, "overturned")
    _appeal(decide(m2, reviewer=reviewer, clauses=[t1], action="suspend", duration_days=30), senior, "modified",
            clauses=[t1], action="warn")
    decide(m3, reviewer=reviewer, clauses=[t1], action="no_violation", duration_days=None)
    file_appeal(decide(m5, reviewer=reviewer, clauses=[t1], action="rate_limit", duration_days=7))
    for case in (s1, s2):
        _appeal(decide(case, reviewer=reviewer, clauses=[t1], action="warn", duration_days=None), senior, "overturned")
    return {"miner": miner, "sweeper": sweeper}


def _rows():
    return {(row.detector, row.version): row for row in calibration_by_version()}


def test_calibration_numbers_by_hand(seeded, django_assert_num_queries):
    with django_assert_num_queries(1):  # aggregated in SQL: one statement whatever the data
        rows = _rows()
    assert set(rows) == {("miner", "1.0"), ("miner", "2.0"), ("sweeper", "1.0")}

    miner1 = rows["miner", "1.0"]
    # flags: m1 2 + m2 1 + m3 1 + m4 1 = 5; cases m1 m2 m3 m4 = 4; decisions: m1 warn, m2 suspend, m3 no violation
    # (m2's replacement warning is not counted) = 3 on 3 cases; violation decisions m1, m2 = 2; appealed m1, m2 = 2,
    # both decided; overturned m1 = 1 (m2 was modified); overturn rate 1/2; share overturned 1/2; precision 2/3.
    assert (miner1.flags, miner1.cases, miner1.decisions, miner1.cases_decided) == (5, 4, 3, 3)
    assert miner1.by_action == {"no_violation": 1, "warn": 1, "rate_limit": 0, "suspend": 1, "terminate": 0}
    assert (miner1.violation_decisions, miner1.appealed, miner1.appeals_decided) == (2, 2, 2)
    assert (miner1.overturned, miner1.modified) == (1, 1)
    assert miner1.overturn_rate == 0.5
    assert miner1.share_overturned == 0.5
    assert miner1.precision == pytest.approx(2 / 3)

    miner2 = rows["miner", "2.0"]
    # flags: m3 1 + m5 1 = 2 on 2 cases; decisions m3 no violation, m5 rate limit = 2; violation 1 (m5); m5 appealed,
    # not decided: no overturn rate yet (0 decided appeals); share overturned 0/1 = 0; precision 1/2.
    assert (miner2.flags, miner2.cases, miner2.decisions, miner2.cases_decided) == (2, 2, 2, 2)
    assert miner2.by_action == {"no_violation": 1, "warn": 0, "rate_limit": 1, "suspend": 0, "terminate": 0}
    assert (miner2.violation_decisions, miner2.appealed, miner2.appeals_decided, miner2.overturned) == (1, 1, 0, 0)
    assert miner2.overturn_rate is None
    assert miner2.share_overturned == 0
    assert miner2.precision == 0.5

    sweeper = rows["sweeper", "1.0"]
    # flags 3 + 1 = 4 on 2 cases; 2 warnings, both appealed and overturned: rate 2/2 = 1, share 2/2 = 1, precision 2/2.
    assert (sweeper.flags, sweeper.cases, sweeper.decisions, sweeper.cases_decided) == (4, 2, 2, 2)
    assert (sweeper.violation_decisions, sweeper.appealed, sweeper.appeals_decided, sweeper.overturned) == (2, 2, 2, 2)
    assert (sweeper.overturn_rate, sweeper.share_overturned, sweeper.precision) == (1.0, 1.0, 1.0)


def _alert_events(action):
    return list(AuditEvent.objects.filter(action=action, target_type="compliance_quality.calibrationalert"))


def test_alert_raised_once_per_crossing_and_audited(seeded, settings):
    # sweeper 1.0: 2 of 2 decided appeals overturned (1.0); miner 1.0: 1 of 2 (0.5); miner 2.0: none decided.
    settings.COMPLIANCE_OVERTURN_ALERT, settings.COMPLIANCE_OVERTURN_ALERT_MIN_APPEALS = 0.6, 2
    assert calibration_alerts_check() == {"raised": 1, "cleared": 0}
    assert calibration_alerts_check() == {"raised": 0, "cleared": 0}  # still over the line: not raised again
    (alert,) = CalibrationAlert.objects.all()
    assert (alert.detector.slug, alert.detector_version, alert.overturn_rate, alert.appeals_decided) == (
        "sweeper", "1.0", 1.0, 2)
    (event,) = _alert_events(AuditAction.COMPLIANCE_CALIBRATION_ALERT_RAISED)
    assert event.data["detector"] == "sweeper" and event.data["threshold"] == 0.6 and event.target_id == str(alert.pk)

    # The line moves above every rate: the alert is cleared (audited), once.
    settings.COMPLIANCE_OVERTURN_ALERT = 1.01
    assert calibration_alerts_check() == {"raised": 0, "cleared": 1}
    assert calibration_alerts_check() == {"raised": 0, "cleared": 0}
    assert len(_alert_events(AuditAction.COMPLIANCE_CALIBRATION_ALERT_CLEARED)) == 1
    # Crossing again is a new crossing: a second alert, a second event.
    settings.COMPLIANCE_OVERTURN_ALERT = 0.5
    assert calibration_alerts_check() == {"raised": 2, "cleared": 0}  # sweeper again, and miner 1.0 at 0.5
    assert len(_alert_events(AuditAction.COMPLIANCE_CALIBRATION_ALERT_RAISED)) == 3


def test_no_alert_below_the_minimum_of_decided_appeals(seeded, settings):
    settings.COMPLIANCE_OVERTURN_ALERT, settings.COMPLIANCE_OVERTURN_ALERT_MIN_APPEALS = 0.1, 3  # nobody has 3
    assert calibration_alerts_check() == {"raised": 0, "cleared": 0}
    assert not CalibrationAlert.objects.exists()


def test_banner_on_the_calibration_page_and_the_console_home(client, seeded, settings, make_staff):
    settings.COMPLIANCE_OVERTURN_ALERT, settings.COMPLIANCE_OVERTURN_ALERT_MIN_APPEALS = 0.6, 2
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    page = client.get(reverse("compliance:calibration")).content.decode()
    assert "Overturn-rate alert" not in page  # nothing raised yet: the periodic check raises, a page view does not
    assert "(over the line)" in page  # but the row past the line says so
    calibration_alerts_check()
    for url in (reverse("compliance:calibration"), reverse("compliance:home")):
        text = client.get(url).content.decode()
        assert "Overturn-rate alert" in text and "sweeper 1.0: 2 of 2 decided appeals overturned" in text
    assert len(_alert_events(AuditAction.COMPLIANCE_CALIBRATION_ALERT_RAISED)) == 1  # page views raise nothing
    page = client.get(reverse("compliance:calibration")).content.decode()
    assert "Overturned ÷ decisions with a decided appeal" in page and "violation decisions ÷ cases decided" in page
    api = client.get("/api/v1/compliance/calibration/").json()
    sweeper = next(row for row in api["rows"] if row["detector"] == "sweeper")
    assert (sweeper["overturn_rate"], sweeper["alert_open"], sweeper["over_threshold"]) == (1.0, True, True)
    miner = next(row for row in api["rows"] if (row["detector"], row["version"]) == ("miner", "1.0"))
    assert miner["precision"] == pytest.approx(2 / 3) and miner["alert_open"] is False


def test_calibration_is_for_compliance_only(client, seeded, make_staff):
    client.force_login(make_staff(Role.SENIOR_REVIEWER))
    assert client.get(reverse("compliance:calibration")).status_code == 403
    assert client.get("/api/v1/compliance/calibration/").status_code == 403
