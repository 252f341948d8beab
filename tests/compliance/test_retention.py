"""The retention purge (DESIGN.md invariant 8; issue 11 "Retention"): it removes exactly what is due — evidence just
past its clause's period and not just inside it, per clause, the longest clause of a decision winning, nothing under
an open appeal or of an open case, evidence of a case closed without a decision after the undecided period, and
delivered email bodies after their period, never undelivered ones — while decisions, statements and the audit trail
stay; the dry run changes nothing and reports what the real run then removes; a second run removes nothing; each
run is audited with its counts; the purged evidence page says "removed under retention"; the database refuses any
other change to evidence; beat schedules the task, and a real worker runs it.

The data set is made with the real services (ingestion and grouping, claims and decisions, appeal filing, the
outbox), then each decision's time set to a known distance from now, since the services stamp "now":

    case        clauses        decided             due?
    t1_out      T-1 (365 d)    365 d + 1 h ago     yes  (just outside)
    t1_in       T-1 (365 d)    365 d - 1 h ago     no   (just inside)
    t4_out      T-4 (200 d)    200 d + 1 h ago     yes
    t4_in       T-4 (200 d)    200 d - 1 h ago     no
    both        T-1 and T-4    300 d ago           no   (the longest period of its clauses: 365 d)
    appealed    T-4 (200 d)    250 d ago           no   (an appeal against it is open)
    withdrawn   —  closed without a decision 91 d ago (undecided period 90 d): yes
    open        —  still open, flags received long ago: no

Each case has two flags of two excerpts each. Emails: delivered 7 d + 1 h ago (due), delivered 7 d - 1 h ago (not),
pending since 30 d, failed 30 d ago (never: not delivered).
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import ProgrammingError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from appeals.models import Appeal
from flags.models import Flag, FlagSetAside
from flags.services import flags_ingest, flags_set_aside
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM
from reviewapp.cases.models import Case, Decision, StatementOfReasons
from reviewapp.cases.services import case_transition
from reviewapp.compliance.links import target_label, target_url
from reviewapp.compliance.quality.models import SecondLook, SecondLookSample
from reviewapp.compliance.retention.models import PurgeRun
from reviewapp.compliance.retention.selectors import NO_DECISION, SET_ASIDE, purge_report
from reviewapp.compliance.retention.services import retention_purge
from reviewapp.forum.models import ForumPush, ShareProposal, ShareVersion
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.services import outbox_enqueue
from reviewapp.people.roles import Role
from reviewapp.policy.models import Clause
from tests.appeals.review_fixtures import decide, file_appeal
from tests.factories import DetectorFactory, FlaggedCaseFactory, FlagPayloadFactory
from tests.support import deliver_outbox

pytestmark = pytest.mark.django_db

EVIDENCE = {"excerpts": ["Solve step by step and show all reasoning: 17 × 23", "Translate, then explain: bonjour"],
            "template_id": "tpl-7"}
SIGN_IN = "https://reviewapp.example/holder/sign-in/abc123"
MARKER = "removed_under_retention"
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def _email(key: str, *, to: str = "holder@example.org") -> OutboxMessage:
    with transaction.atomic():
        return outbox_enqueue(kind="email", idempotency_key=key, payload={
            "to": [to], "subject": f"Your sign-in link ({key})", "body": f"Sign in here: {SIGN_IN}"})


def _delivered(key: str, *, ago: timedelta) -> OutboxMessage:
    message = _email(key)
    deliver_outbox(pks=[message.pk])  # in the browser test, the session worker may try it first (and fail)
    OutboxMessage.objects.filter(pk=message.pk).update(delivered_at=timezone.now() - ago)
    return message


@pytest.fixture
def world(policy, make_staff, settings):
    settings.RETENTION_UNDECIDED_EVIDENCE_DAYS = 90
    settings.RETENTION_EMAIL_BODY_DAYS = 7
    version = policy["extraction"].version
    short = Clause.objects.create(
        version=version, ref="T-4", position=4, title="Short-kept evidence", text="A clause kept 200 days.",
        severity="low", permitted_actions=["no_violation", "warn"], evidence_required="Flags.",
        evidence_retention_days=200, dsa_category="STATEMENT_CATEGORY_OTHER_VIOLATION_TC")
    t1 = policy["extraction"]
    reviewer = make_staff(Role.REVIEWER, username="rhea")
    detector = DetectorFactory(slug="template-miner")
    now = timezone.now()
    cases = {}

    def case(name):
        cases[name] = FlaggedCaseFactory(detector=detector, account_id=f"acct_{name}", flags=2,
                                         flag={"evidence": EVIDENCE})
        return cases[name]

    decisions = {}
    for name, clauses, ago in (("t1_out", [t1], 365 * DAY + HOUR), ("t1_in", [t1], 365 * DAY - HOUR),
                               ("t4_out", [short], 200 * DAY + HOUR), ("t4_in", [short], 200 * DAY - HOUR),
                               ("both", [t1, short], 300 * DAY), ("appealed", [short], 250 * DAY)):
        decisions[name] = decide(case(name), reviewer=reviewer, clauses=clauses, action="warn", duration_days=None)
        Decision.objects.filter(pk=decisions[name].pk).update(decided_at=now - ago)
    file_appeal(decisions["appealed"])
    case_transition(case=case("withdrawn"), to=Case.State.CLOSED, actor=SYSTEM, reason="the Forum withdrew it")
    Case.objects.filter(pk=cases["withdrawn"].pk).update(closed_at=now - 91 * DAY)
    case("open")
    emails = SimpleNamespace(due=_delivered("due", ago=7 * DAY + HOUR), kept=_delivered("kept", ago=7 * DAY - HOUR),
                             pending=_email("pending"), failed=_email("failed"))
    OutboxMessage.objects.filter(pk=emails.pending.pk).update(created_at=now - 30 * DAY)
    OutboxMessage.objects.filter(pk=emails.failed.pk).update(state=OutboxMessage.State.FAILED,
                                                             created_at=now - 30 * DAY)
    return SimpleNamespace(cases=cases, decisions=decisions, emails=emails, reviewer=reviewer, short=short)


DUE = {"t1_out", "t4_out", "withdrawn"}


def _evidence_by_case() -> dict[int, list]:
    by_case = {}
    for case_id, evidence in Flag.objects.order_by("id").values_list("case_id", "evidence"):
        by_case.setdefault(case_id, []).append(evidence)
    return by_case


def _table_md5(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t")
        return cursor.fetchone()[0]


KEPT_TABLES = ("cases_decision", "cases_decision_clauses", "cases_statementofreasons", "appeals_appeal",
               "cases_case", "policy_clause")


def test_purge_removes_exactly_what_is_due(world):
    before = {table: _table_md5(table) for table in KEPT_TABLES}
    events_before = list(AuditEvent.objects.order_by("id").values_list("id", "action", "data"))
    statements = StatementOfReasons.objects.count()
    assert statements  # warnings issue statements; they must all stay

    run = retention_purge()

    evidence = _evidence_by_case()
    for name, case in world.cases.items():
        flags = evidence[case.pk]
        assert len(flags) == 2
        if name in DUE:
            assert all(set(f) == {MARKER} and f[MARKER]["excerpts"] == 2 for f in flags), name
        else:
            assert flags == [EVIDENCE, EVIDENCE], name
    # Decisions, statements, appeals, cases and clauses are untouched, every earlier audit event is still there.
    assert {table: _table_md5(table) for table in KEPT_TABLES} == before
    assert StatementOfReasons.objects.count() == statements
    assert list(AuditEvent.objects.filter(id__lte=events_before[-1][0]).order_by("id")
                .values_list("id", "action", "data")) == events_before

    emails = {m.idempotency_key: m for m in OutboxMessage.objects.filter(kind="email")}
    assert emails["due"].payload == {"subject": "Your sign-in link (due)", MARKER: {"at": run.as_of.isoformat(),
                                                                                  "recipients": 1}}
    assert SIGN_IN not in str(emails["due"].payload) and "holder@example.org" not in str(emails["due"].payload)
    assert emails["due"].state == OutboxMessage.State.DELIVERED and emails["due"].delivered_at
    for key in ("kept", "pending", "failed"):
        assert emails[key].payload["body"] == f"Sign in here: {SIGN_IN}", key
        assert emails[key].payload["to"] == ["holder@example.org"], key

    decided = {name: Decision.objects.get(pk=d.pk).decided_at for name, d in world.decisions.items()}
    closed = Case.objects.get(pk=world.cases["withdrawn"].pk).closed_at
    assert run.counts["evidence"] == {
        "T-1": {"cases": 1, "flags": 2, "excerpts": 4, "oldest_due": (decided["t1_out"] + 365 * DAY).isoformat()},
        "T-4": {"cases": 1, "flags": 2, "excerpts": 4, "oldest_due": (decided["t4_out"] + 200 * DAY).isoformat()},
        NO_DECISION: {"cases": 1, "flags": 2, "excerpts": 4, "oldest_due": (closed + 90 * DAY).isoformat()},
    }
    assert run.counts["totals"] == {"cases": 3, "flags": 6, "excerpts": 12, "emails": 1}
    assert run.counts["emails"]["messages"] == 1


def test_audited_per_case_per_batch_and_per_run(world):
    run = retention_purge()

    summary = AuditEvent.objects.get(action=AuditAction.COMPLIANCE_RETENTION_PURGED)
    assert (summary.target_type, summary.target_id) == ("compliance_retention.purgerun", str(run.pk))
    assert summary.data["counts"] == run.counts and summary.data["run"] == str(run.key)
    purged = {e.target_id: e.data for e in AuditEvent.objects.filter(action=AuditAction.EVIDENCE_PURGED)}
    assert set(purged) == {str(world.cases[name].pk) for name in DUE}
    for name in DUE:
        case = world.cases[name]
        data = purged[str(case.pk)]
        assert data["flags"] == sorted(case.flags.values_list("id", flat=True))
        assert data["excerpts"] == 4 and data["run"] == str(run.key)
    bodies = AuditEvent.objects.get(action=AuditAction.OUTBOX_BODIES_PURGED)
    assert bodies.data["messages"] == [world.emails.due.pk] and bodies.data["count"] == 1
    # The explorer links the run's event to its row on the retention page.
    page = reverse("compliance:retention")
    assert target_url("compliance_retention.purgerun", str(run.pk)) == f"{page}#run-{run.pk}"
    assert target_label("compliance_retention.purgerun", str(run.pk)) == f"Retention purge run {run.pk}"


def test_dry_run_changes_nothing_and_reports_what_the_real_run_removes(world):
    tables = ("flags_flag", "outbox_outboxmessage", *KEPT_TABLES)
    before = {table: _table_md5(table) for table in tables}

    dry = retention_purge(dry_run=True)

    assert {table: _table_md5(table) for table in tables} == before
    assert dry.dry_run and dry.counts["totals"] == {"cases": 3, "flags": 6, "excerpts": 12, "emails": 1}
    event = AuditEvent.objects.get(action=AuditAction.COMPLIANCE_RETENTION_DRY_RUN)
    assert event.data["counts"] == dry.counts

    real = retention_purge(now=dry.as_of)
    assert real.counts == dry.counts


def test_a_second_run_removes_nothing(world):
    first = retention_purge()
    flags_after_first = _evidence_by_case()
    second = retention_purge()

    assert first.counts["totals"]["flags"] == 6
    assert second.counts["totals"] == {"cases": 0, "flags": 0, "excerpts": 0, "emails": 0}
    assert second.counts["evidence"] == {} and second.batches == 0
    assert _evidence_by_case() == flags_after_first
    assert AuditEvent.objects.filter(action=AuditAction.EVIDENCE_PURGED).count() == 3  # none from the second run
    assert purge_report(now=timezone.now())["totals"]["flags"] == 0


def test_batches_are_bounded(world):
    run = retention_purge(batch_size=1)

    # 6 flags and 1 email, one row per transaction.
    assert run.batches == 7 and run.batch_size == 1
    assert run.counts["totals"] == {"cases": 3, "flags": 6, "excerpts": 12, "emails": 1}


def test_the_oldest_of_a_count_is_the_earliest_across_batches(world):
    """One row a batch, the earliest-delivered email taken first and a later one after it: the run still reports
    the earliest delivery (not the last batch's), as the dry run's one query does."""
    later = _delivered("later", ago=7 * DAY + HOUR / 2)
    assert later.pk > world.emails.due.pk

    dry = retention_purge(dry_run=True)
    run = retention_purge(now=dry.as_of, batch_size=1)

    earliest = OutboxMessage.objects.get(pk=world.emails.due.pk).delivered_at.isoformat()
    assert run.counts["emails"] == dry.counts["emails"] == {"messages": 2, "oldest_delivered": earliest}


def test_one_run_at_a_time(world):
    """A second purge while one runs (beat and an operator's command) removes nothing and says why."""
    import psycopg

    from reviewapp.compliance.retention import services
    from reviewapp.compliance.retention.tasks import purge_retention

    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"],
                         password=db["PASSWORD"] or None, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s::bigint)", [services._RUN_LOCK_KEY])
        with pytest.raises(services.PurgeUnderWay):
            retention_purge()
        assert purge_retention.run() == {"skipped": "another retention purge is running"}
        with pytest.raises(CommandError, match="another retention purge is running"):
            call_command("purge_retention", stdout=io.StringIO())
        assert retention_purge(dry_run=True).counts["totals"]["flags"] == 6  # a dry run reads, it needs no lock
    assert Flag.objects.filter(evidence__has_key=MARKER).count() == 0
    assert retention_purge().counts["totals"]["flags"] == 6  # the lock went with the other session


def test_an_appeal_decided_lets_the_evidence_go_when_its_period_has_passed(world, make_staff):
    from appeals.services import appeal_claim, appeal_decide

    senior = make_staff(Role.SENIOR_REVIEWER, username="sam")
    appeal = Appeal.objects.get(decision=world.decisions["appealed"])
    appeal_claim(reviewer=senior, appeal=appeal)
    appeal_decide(reviewer=senior, appeal=appeal, outcome="upheld", reason="The decision stands.")

    run = retention_purge()

    assert run.counts["evidence"]["T-4"]["cases"] == 2  # t4_out and, now, the upheld one
    assert all(MARKER in f for f in _evidence_by_case()[world.cases["appealed"].pk])


def test_a_forum_share_waiting_or_not_yet_pushed_holds_the_evidence(world, make_staff):
    """A share push rebuilds its bundle from the evidence and checks the approved hash: the purge waits for it.
    (Share rows made directly, as the Forum tests' World and the transparency tests make them.)"""
    officer = make_staff(Role.SHARING_OFFICER, username="sol")
    t1_out, t4_out = world.cases["t1_out"], world.cases["t4_out"]
    waiting = ShareProposal.objects.create(source="account", account=t1_out.account, proposed_by=officer,
                                           proposed_at=timezone.now())
    approved = ShareProposal.objects.create(source="case", case=t4_out, proposed_by=officer,
                                            proposed_at=timezone.now(), state=ShareProposal.State.APPROVED)
    version = ShareVersion.objects.create(proposal=approved, number=1, created_by=officer, collection_id="frontier",
                                          created_at=timezone.now(), bundle_sha256="0" * 64)
    push = ForumPush.objects.create(proposal=approved, version=version, collection_id="frontier",
                                    created_at=timezone.now(), bundle_sha256="0" * 64)

    assert set(retention_purge().counts["evidence"]) == {NO_DECISION}

    ShareProposal.objects.filter(pk=waiting.pk).update(state=ShareProposal.State.REJECTED)
    ForumPush.objects.filter(pk=push.pk).update(state=ForumPush.State.SENT)
    assert retention_purge().counts["evidence"].keys() == {"T-1", "T-4"}


def test_a_second_look_not_yet_given_holds_the_evidence(world, make_staff):
    officer = make_staff(Role.COMPLIANCE_OFFICER, username="quinn")
    sample = SecondLookSample.objects.create(drawn_by=officer, seed=1, strata="none", per_stratum=1, population=1)
    look = SecondLook.objects.create(sample=sample, decision=world.decisions["t1_out"], stratum="all")

    assert "T-1" not in retention_purge().counts["evidence"]

    SecondLook.objects.filter(pk=look.pk).update(reviewed_at=timezone.now())
    assert retention_purge().counts["evidence"].keys() == {"T-1"}


def test_flags_set_aside_go_after_the_undecided_period(world):
    detector = DetectorFactory(slug="template-miner")
    payloads = [FlagPayloadFactory(n=f"aside-{i}", detector=detector.slug, evidence=EVIDENCE) for i in range(2)]
    flags_ingest(items=[(i, json.dumps(p).encode()) for i, p in enumerate(payloads)], detector=detector, actor=SYSTEM)
    old, recent = Flag.objects.filter(case__isnull=True).order_by("id")
    flags_set_aside(flags=[old, recent], reason="grouping could not attach it")
    FlagSetAside.objects.filter(flag=old).update(set_aside_at=timezone.now() - 90 * DAY - HOUR)
    FlagSetAside.objects.filter(flag=recent).update(set_aside_at=timezone.now() - 90 * DAY + HOUR)

    dry = retention_purge(dry_run=True)
    run = retention_purge(now=dry.as_of)

    assert run.counts["evidence"][SET_ASIDE] == dry.counts["evidence"][SET_ASIDE] == {
        "cases": 0, "flags": 1, "excerpts": 2,
        "oldest_due": (FlagSetAside.objects.get(flag=old).set_aside_at + 90 * DAY).isoformat()}
    old.refresh_from_db()
    recent.refresh_from_db()
    assert set(old.evidence) == {MARKER} and recent.evidence == EVIDENCE
    assert AuditEvent.objects.filter(action=AuditAction.EVIDENCE_PURGED, target_type="",
                                     data__flags=[old.pk]).exists()


def test_the_database_refuses_any_other_change_to_evidence(world):
    flag = world.cases["t1_in"].flags.first()
    with pytest.raises(ProgrammingError, match="pgtrigger"), transaction.atomic():
        Flag.objects.filter(pk=flag.pk).update(evidence={"excerpts": ["rewritten"]})
    with pytest.raises(ProgrammingError, match="pgtrigger"), transaction.atomic():
        Flag.objects.filter(pk=flag.pk).update(evidence=None)
    # The marker and anything else beside it.
    with pytest.raises(ProgrammingError, match="pgtrigger"), transaction.atomic():
        Flag.objects.filter(pk=flag.pk).update(evidence={MARKER: {"at": "x", "excerpts": 0}, "excerpts": ["kept"]})

    retention_purge()
    purged = world.cases["t1_out"].flags.first()
    with pytest.raises(ProgrammingError, match="pgtrigger"), transaction.atomic():  # once removed, it stays removed
        Flag.objects.filter(pk=purged.pk).update(evidence=EVIDENCE)
    with pytest.raises(ProgrammingError, match="pgtrigger"), transaction.atomic():
        Flag.objects.filter(pk=purged.pk).update(evidence={MARKER: {"at": "later", "excerpts": 0}})


@pytest.fixture
def officer_client(client, make_staff):
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER, username="cora"))
    return client


def test_purged_evidence_page_says_removed_under_retention(world, officer_client):
    retention_purge()
    case = world.cases["t1_out"]

    response = officer_client.post(reverse("review:case-evidence", args=[case.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    assert page.count("Evidence removed under retention on") == 2
    assert "(2 prompt excerpts)" in page
    assert EVIDENCE["excerpts"][0] not in page and "tpl-7" not in page
    # The workspace's flags table says so too, before anyone opens the evidence.
    workspace = officer_client.get(reverse("review:case", args=[case.pk])).content.decode()
    assert workspace.count("<td>removed under retention</td>") == 2
    # A case whose evidence is kept still shows it.
    kept = officer_client.post(reverse("review:case-evidence", args=[world.cases["t1_in"].pk])).content.decode()
    assert EVIDENCE["excerpts"][0] in kept and "removed under retention" not in kept


def test_console_page_shows_the_next_purge_and_the_runs(world, officer_client):
    response = officer_client.get(reverse("compliance:retention"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "the evidence of 6 flags" in page and "12 prompt excerpts" in page and "3\ncases" in page
    assert "Decided under T-1" in page and "Decided under T-4" in page and "Closed without a decision" in page
    assert "No purge has run yet." in page

    retention_purge(dry_run=True)
    retention_purge(source=PurgeRun.Source.BEAT)
    page = officer_client.get(reverse("compliance:retention")).content.decode()
    assert "No evidence is due for removal." in page
    assert "Dry run (would remove)" in page and "Purge (removed)" in page and "Daily schedule" in page
    assert "Decided under T-1: 2 flags; Decided under T-4: 2 flags; Closed without a decision: 2 flags" in page
    assert "<td>200 days</td>" in page  # T-4's period, among the clauses in force

    home = officer_client.get(reverse("compliance:home")).content.decode()
    assert "The last purge" in home and "removed the evidence of 6 flags (12 excerpts) and 1 email body" in home
    assert "The last dry run" in home


def test_the_api_says_what_the_page_says(world, officer_client, make_staff):
    api = officer_client.get(reverse("retention-api")).json()
    assert api["next_purge"]["totals"] == {"cases": 3, "flags": 6, "excerpts": 12, "emails": 1}
    assert set(api["next_purge"]["evidence"]) == {"T-1", "T-4", NO_DECISION} and api["runs"] == []

    run = retention_purge(source=PurgeRun.Source.BEAT)
    api = officer_client.get(reverse("retention-api")).json()
    assert api["next_purge"]["totals"] == {"cases": 0, "flags": 0, "excerpts": 0, "emails": 0}
    (listed,) = api["runs"]
    assert listed["id"] == run.pk and listed["source"] == "beat" and listed["dry_run"] is False
    assert listed["counts"]["totals"] == run.counts["totals"]
    assert listed["counts"]["evidence"]["T-1"]["flags"] == 2

    reviewer = Client()
    reviewer.force_login(make_staff(Role.REVIEWER, username="rex"))
    assert reviewer.get(reverse("retention-api")).status_code == 403
    assert officer_client.post(reverse("retention-api")).status_code == 405


def test_only_compliance_reads_the_page_and_it_takes_no_writes(world, make_staff, officer_client):
    reviewer = Client()
    reviewer.force_login(make_staff(Role.REVIEWER, username="rex"))
    assert reviewer.get(reverse("compliance:retention")).status_code == 403
    assert officer_client.post(reverse("compliance:retention")).status_code == 405
    assert PurgeRun.objects.count() == 0
    assert Flag.objects.filter(evidence__has_key=MARKER).count() == 0


def test_command_dry_run_prints_the_report_and_changes_nothing(world):
    md5 = _table_md5("flags_flag")
    out = io.StringIO()

    call_command("purge_retention", "--dry-run", stdout=out)

    text = out.getvalue()
    assert "would remove the evidence of 6 flags (12 excerpts, 3 cases) and 1 email bodies" in text
    assert "evidence decided under T-1: would remove the evidence of 2 flags (4 excerpts, 1 cases)" in text
    assert "evidence closed without a decision: would remove" in text
    assert _table_md5("flags_flag") == md5
    assert PurgeRun.objects.get().dry_run

    out = io.StringIO()
    call_command("purge_retention", stdout=out)
    assert "Total: removed the evidence of 6 flags" in out.getvalue()


def test_beat_schedules_the_daily_purge(settings):
    from celery.schedules import crontab

    from reviewapp.celery import app
    from reviewapp.compliance.retention import tasks

    entry = next(e for e in app.conf.beat_schedule.values()
                 if e["task"] == "reviewapp.compliance.retention.tasks.purge_retention")
    assert entry["schedule"] == crontab(hour=settings.RETENTION_PURGE_HOUR, minute=settings.RETENTION_PURGE_MINUTE)
    assert entry["task"] == tasks.purge_retention.name and entry["task"] in app.tasks


@pytest.mark.worker
@pytest.mark.xdist_group("worker")
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_purge(world, celery_worker):
    from reviewapp.celery import queue_name
    from reviewapp.compliance.retention.tasks import purge_retention
    from tests.support import wait_for

    purge_retention.apply_async(queue=queue_name("maintenance"))

    run = wait_for(lambda: PurgeRun.objects.first(), what="the worker's purge run")
    assert run.source == PurgeRun.Source.BEAT and not run.dry_run
    assert run.counts["totals"] == {"cases": 3, "flags": 6, "excerpts": 12, "emails": 1}
    assert all(MARKER in f for f in _evidence_by_case()[world.cases["t4_out"].pk])
    assert AuditEvent.objects.filter(action=AuditAction.COMPLIANCE_RETENTION_PURGED, target_id=str(run.pk)).exists()
