"""The statement of reasons as issued, the notice email, and the DSA Transparency Database export."""

import pytest

from reviewapp.cases.models import StatementOfReasons
from reviewapp.cases.services.claims import case_claim
from reviewapp.cases.services.decisions import decision_record
from reviewapp.cases.statements import NotReportable, dsa_export
from reviewapp.outbox.models import OutboxMessage
from reviewapp.people.roles import Role

pytestmark = pytest.mark.django_db
FACTS = "On 20 November the account sent 1,200 prompts filled from one template."


def enforce(case, policy, make_staff, action, duration=None):
    reviewer = make_staff(Role.REVIEWER)
    case_claim(reviewer=reviewer, case=case)
    decision_record(reviewer=reviewer, case=case, clauses=[policy["extraction"]], action=action,
                    duration_days=duration, rationale="Extraction at scale.", facts_for_holder=FACTS)
    return StatementOfReasons.objects.get()


def test_statement_carries_what_article_17_asks(case, policy, make_staff):
    content = enforce(case, policy, make_staff, "suspend", 10).content
    assert content["restriction"]["action"] == "suspend" and content["restriction"]["duration_days"] == 10
    assert content["restriction"]["ends_at"] and content["restriction"]["scope"]
    assert content["facts"] == FACTS
    assert content["automated_detection"] is True and content["automated_decision"] is False
    (clause,) = content["ground"]["clauses"]
    assert (clause["ref"], clause["text"]) == ("T-1", "Do not extract outputs at scale.")
    assert content["ground"]["version"] == 1
    assert content["redress"]["appeal_deadline"] > content["issued_at"]
    assert "out-of-court" in content["redress"]["other"]


def test_statement_is_immutable_once_issued(case, policy, make_staff):
    from django.db import transaction
    from django.db.utils import DatabaseError

    statement = enforce(case, policy, make_staff, "warn")
    with pytest.raises(DatabaseError, match="pgtrigger"), transaction.atomic():
        StatementOfReasons.objects.filter(pk=statement.pk).update(content={})


def test_the_holder_is_emailed_the_statement_through_the_outbox(case, policy, make_staff):
    statement = enforce(case, policy, make_staff, "rate_limit", 14)
    email = OutboxMessage.objects.get(kind="email")
    assert email.payload["to"] == ["holder@example.com"]
    assert "Rate limit" in email.payload["subject"]
    body = email.payload["body"]
    assert FACTS in body and "T-1 Automated extraction" in body and "/appeals/" in body
    assert f"no. {statement.pk}" in body


def test_dsa_export_uses_the_transparency_database_vocabulary(case, policy, make_staff):
    export = dsa_export(enforce(case, policy, make_staff, "suspend", 30))
    assert export["decision_account"] == "DECISION_ACCOUNT_SUSPENDED"
    assert export["decision_ground"] == "DECISION_GROUND_INCOMPATIBLE_CONTENT"
    assert export["incompatible_content_ground"] == "T-1 Automated extraction"
    assert export["category"] == "STATEMENT_CATEGORY_OTHER_VIOLATION_TC"
    assert export["automated_detection"] == "Yes"
    assert export["automated_decision"] == "AUTOMATED_DECISION_NOT_AUTOMATED"
    assert export["end_date_account_restriction"] and export["application_date"]
    assert export["puid"].startswith("reviewapp-statement-")
    assert export["content_type"] == ["CONTENT_TYPE_TEXT"] and export["source_type"] == "SOURCE_VOLUNTARY"
    assert "decision_visibility" not in export and "decision_monetary" not in export


@pytest.mark.parametrize(("action", "duration", "restriction", "end_field"), [
    ("rate_limit", 14, {"decision_provision": "DECISION_PROVISION_PARTIAL_SUSPENSION"},
     "end_date_service_restriction"),
    ("suspend", 30, {"decision_account": "DECISION_ACCOUNT_SUSPENDED"}, "end_date_account_restriction"),
    ("terminate", None, {"decision_account": "DECISION_ACCOUNT_TERMINATED"}, None),
])
def test_an_enforced_decision_exports_a_statement_the_api_accepts(case, policy, make_staff, action, duration,
                                                                  restriction, end_field):
    from reviewapp.policy.dsa_rules import statement_errors

    clause = policy["competing"] if action == "terminate" else policy["extraction"]
    reviewer, senior = make_staff(Role.REVIEWER), make_staff(Role.SENIOR_REVIEWER)
    case_claim(reviewer=reviewer, case=case)
    decision = decision_record(reviewer=reviewer, case=case, clauses=[clause], action=action,
                               duration_days=duration, rationale="Extraction at scale.", facts_for_holder=FACTS)
    if not StatementOfReasons.objects.exists():   # a severe action waits for its second approval
        from reviewapp.cases.services.decisions import decision_approve

        decision_approve(approver=senior, decision=decision)
    statement = StatementOfReasons.objects.get()
    export = dsa_export(statement)
    assert statement_errors(export) == {}
    assert restriction.items() <= export.items()
    if end_field:
        assert export[end_field] == statement.content["restriction"]["ends_at"][:10]
    assert [f for f in export if f.startswith("end_date_")] == ([end_field] if end_field else [])
    assert export["content_date"] == statement.content["content_date"] <= export["application_date"]


def test_a_statement_issued_before_content_date_was_recorded_still_exports(case, policy, make_staff):
    from types import SimpleNamespace

    from reviewapp.policy.dsa_rules import statement_errors

    statement = enforce(case, policy, make_staff, "suspend", 10)
    legacy = {key: value for key, value in statement.content.items() if key not in ("content_date", "account_type")}
    export = dsa_export(SimpleNamespace(pk=statement.pk, content=legacy, decision=statement.decision))
    assert statement_errors(export) == {} and export["content_date"] == statement.content["content_date"]


def test_every_clause_cited_still_fits_the_api_lengths():
    """Before: the twelve clauses' refs and titles made incompatible_content_ground 504 characters."""
    from reviewapp.policy.dsa_rules import statement_errors

    first, *others = _policy_clauses()
    export = dsa_export(_issued(first, "suspend", ends=True, automated_detection=True, automated_decision=False,
                                facts="x" * 6000, extra_clauses=others, organization_id="org-1"))
    assert statement_errors(export) == {}
    assert export["incompatible_content_ground"].endswith("…") and len(export["decision_facts"]) == 5000
    assert export["category_addition"] == ["STATEMENT_CATEGORY_SCAMS_AND_FRAUD"]
    assert export["account_type"] == "ACCOUNT_TYPE_BUSINESS"


def test_a_warning_is_not_reported(case, policy, make_staff):
    with pytest.raises(NotReportable, match="restricts nothing"):
        dsa_export(enforce(case, policy, make_staff, "warn"))


# ── The export passes the Transparency Database's rules (reviewapp/policy/dsa_rules.py) ──────────────

def _policy_clauses():
    from django.conf import settings

    from reviewapp.policy.loader import read_policy_directory

    return [clause for document in read_policy_directory(settings.POLICIES_DIR) for clause in document.clauses]


def _issued(clause, action, *, ends: bool, automated_detection: bool, automated_decision: bool,
            facts: str = FACTS, organization_id: str = "", extra_clauses=()):
    """A statement as statement_content issues it, for a decision under ``clause`` (no database needed)."""
    import datetime
    from types import SimpleNamespace

    from reviewapp.cases.statements import statement_content

    now = datetime.datetime(2026, 12, 1, 9, 30, tzinfo=datetime.UTC)
    clauses = [clause, *extra_clauses]
    decision = SimpleNamespace(
        pk=7, action=action, clauses=SimpleNamespace(all=lambda: clauses),
        account=SimpleNamespace(external_id="acct-1", organization_id=organization_id),
        case=SimpleNamespace(last_observed_at=now - datetime.timedelta(days=3),
                             opened_at=now - datetime.timedelta(days=2)),
        policy_version=SimpleNamespace(policy=SimpleNamespace(title="Usage policy"), number=1,
                                       effective_from=datetime.date(2026, 1, 1)),
        effective_at=now, ends_at=now + datetime.timedelta(days=30) if ends else None,
        duration_days=30 if ends else None, facts_for_holder=facts)
    content = statement_content(decision, issued_at=now, appeal_deadline=now + datetime.timedelta(days=183))
    content["automated_detection"], content["automated_decision"] = automated_detection, automated_decision
    return SimpleNamespace(pk=7, content=content, decision=decision)


def _cases():
    from reviewapp.policy.enforcement import TIMED_ACTIONS, Action

    for clause in _policy_clauses():
        for action in clause.permitted_actions:
            if action in (Action.NO_VIOLATION, Action.WARN):
                continue
            for ends in ([True, False] if action in TIMED_ACTIONS else [False]):
                for detection in (True, False):
                    for automated in (True, False):
                        yield pytest.param(clause, action, ends, detection, automated,
                                           id=f"{clause.ref}-{action}-{'ends' if ends else 'open'}-"
                                              f"{'det' if detection else 'nodet'}-{'auto' if automated else 'human'}")


@pytest.mark.parametrize(("clause", "action", "ends", "detection", "automated"), list(_cases()))
def test_every_exported_statement_passes_the_transparency_database_rules(clause, action, ends, detection,
                                                                         automated):
    from reviewapp.policy.dsa_rules import statement_errors

    statement = _issued(clause, action, ends=ends, automated_detection=detection, automated_decision=automated)
    assert statement_errors(dsa_export(statement)) == {}


@pytest.mark.filterwarnings("ignore")
def test_long_and_unusual_text_still_passes():
    """Facts, clause titles and texts of any length and script: the export bounds them, never the API."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from reviewapp.policy.dsa_rules import statement_errors

    clauses = _policy_clauses()
    text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=7000)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(facts=text.filter(str.strip), title=text, body=text, extra=st.integers(0, len(clauses) - 1))
    def check(facts, title, body, extra):
        from dataclasses import replace

        first = replace(clauses[0], title=title, text=body)
        statement = _issued(first, "suspend", ends=True, automated_detection=True, automated_decision=False,
                            facts=facts, extra_clauses=clauses[1:extra + 1])
        assert statement_errors(dsa_export(statement)) == {}

    check()


# ── The batch form: POST /api/v1/statements bodies ───────────────────────────────────────────────────

def test_batches_hold_at_most_100_statements_and_pass_the_batch_rules():
    from types import SimpleNamespace

    from reviewapp.cases.statements import DsaExportReport, dsa_batches
    from reviewapp.policy.dsa_rules import batch_errors

    clause = _policy_clauses()[0]
    statements = []
    for pk in range(1, 251):
        issued = _issued(clause, "warn" if pk % 50 == 0 else "suspend", ends=True, automated_detection=True,
                         automated_decision=False)
        statements.append(SimpleNamespace(pk=pk, content=issued.content, decision=issued.decision))
    report = DsaExportReport()
    bodies = list(dsa_batches(statements, report=report))
    assert [len(body["statements"]) for body in bodies] == [100, 100, 45]
    assert all(batch_errors(body) == {} for body in bodies)
    assert report.exported == 245 and report.not_reported == [50, 100, 150, 200, 250] and not report.refused
    puids = [item["puid"] for body in bodies for item in body["statements"]]
    assert len(set(puids)) == 245
    with pytest.raises(ValueError, match="1 to 100"):
        list(dsa_batches(statements, report=report, size=101))


def _three_enforced_statements(detector, policy, make_staff):
    from tests.conftest import flag_payload
    from tests.factories import ingest_and_group

    cases = ingest_and_group(detector, [flag_payload(n, account_id=f"acct_{n}") for n in (1, 2, 3)])
    reviewer = make_staff(Role.REVIEWER)
    for case, action, duration in zip(cases, ["suspend", "warn", "rate_limit"], [10, None, 14], strict=True):
        case_claim(reviewer=reviewer, case=case)
        decision_record(reviewer=reviewer, case=case, clauses=[policy["extraction"]], action=action,
                        duration_days=duration, rationale="Extraction at scale.", facts_for_holder=FACTS)
    return list(StatementOfReasons.objects.order_by("pk"))


def test_export_dsa_statements_writes_one_file_per_batch(detector, policy, make_staff, tmp_path):
    import io
    import json

    from django.core.management import call_command

    from reviewapp.policy.dsa_rules import batch_errors

    suspended, warned, rate_limited = _three_enforced_statements(detector, policy, make_staff)
    out, said = tmp_path / "dsa", io.StringIO()
    call_command("export_dsa_statements", "--out", str(out), "--batch-size", "1",
                 "--since", suspended.issued_at.date().isoformat(), stdout=said)
    assert said.getvalue().startswith("2 statements in 2 batch files") and "1 not reportable" in said.getvalue()
    assert warned.content["restriction"]["action"] == "warn"
    files = sorted(out.glob("dsa-statements-*.json"))
    bodies = [json.loads(path.read_text()) for path in files]
    assert [path.name for path in files] == ["dsa-statements-0001.json", "dsa-statements-0002.json"]
    assert [body["statements"][0]["puid"] for body in bodies] == [
        f"reviewapp-statement-{suspended.pk}", f"reviewapp-statement-{rate_limited.pk}"]
    assert all(batch_errors(body) == {} for body in bodies) and not (out / "refused.json").exists()

    empty = tmp_path / "none"
    call_command("export_dsa_statements", "--out", str(empty), "--until", "2020-01-01")
    assert not list(empty.iterdir())


def test_export_dsa_statements_names_what_the_rules_refuse(detector, policy, make_staff, tmp_path, monkeypatch):
    import json

    from django.core.management import call_command
    from django.core.management.base import CommandError

    from reviewapp.cases import statements as module

    suspended, _, rate_limited = _three_enforced_statements(detector, policy, make_staff)
    real = module.dsa_export

    def broken_for_one(statement):
        item = real(statement)
        return {**item, "decision_facts": ""} if statement.pk == rate_limited.pk else item

    monkeypatch.setattr(module, "dsa_export", broken_for_one)
    with pytest.raises(CommandError, match="1 statements break the Transparency Database's rules"):
        call_command("export_dsa_statements", "--out", str(tmp_path))
    (body,) = [json.loads(path.read_text()) for path in tmp_path.glob("dsa-statements-*.json")]
    assert [item["puid"] for item in body["statements"]] == [f"reviewapp-statement-{suspended.pk}"]
    assert json.loads((tmp_path / "refused.json").read_text()) == {str(rate_limited.pk): {
        "decision_facts": ["required"]}}
    with pytest.raises(CommandError, match="already holds batch files"):
        call_command("export_dsa_statements", "--out", str(tmp_path))
