"""Loading policies/*.md: versions, no-ops, and load errors that name file, clause and problem."""

from __future__ import annotations

import datetime
import io

import pytest
from django.core.management import CommandError, call_command

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.policy.dsa import DSA_CATEGORIES
from reviewapp.policy.enforcement import Action
from reviewapp.policy.loader import PolicyLoadError
from reviewapp.policy.models import Clause, Policy, PolicyVersion
from reviewapp.policy.selectors import (
    clauses_in_force,
    version_diff,
    version_in_force,
    versions_in_force,
    versions_upcoming,
)

from .conftest import POLICY_FILE, edit, heading, load

pytestmark = pytest.mark.django_db

EXPECTED_CLAUSES = {
    "UP-1.1": ("Using outputs to develop competing models", True),
    "UP-1.2": ("Extracting reasoning, weights or hidden instructions", True),
    "UP-2.1": ("Automated extraction at scale", False),
    "UP-2.2": ("Automated access outside the API", False),
    "UP-3.1": ("Multiple or fake accounts to evade limits", True),
    "UP-3.2": ("False registration details", False),
    "UP-4.1": ("Circumventing rate limits or usage quotas", False),
    "UP-4.2": ("Circumventing access controls", True),
    "UP-5.1": ("Reselling or sublicensing API access", False),
    "UP-5.2": ("Sharing API keys", False),
    "UP-6.1": ("Good-faith safety research under the Researcher Access Programme", False),
}


def snapshot(version: PolicyVersion) -> tuple[dict, list[dict]]:
    return (PolicyVersion.objects.filter(pk=version.pk).values().get(),
            list(Clause.objects.filter(version=version).order_by("position").values()))


def published_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditAction.POLICY_VERSION_PUBLISHED).order_by("id"))


def test_the_real_policy_loads_with_the_documented_attributes():
    [result] = load()
    version = result.version
    assert result.published and version.number == 1 and version.policy.slug == "usage-policy"
    assert version.source_path == f"policies/{POLICY_FILE}" and len(version.source_sha256) == 64
    assert version.effective_from == datetime.date(2026, 10, 1) and "Researcher Access Programme" in version.summary
    clauses = list(version.clauses.order_by("position"))
    assert {c.ref: (c.title, c.requires_second_approval) for c in clauses} == EXPECTED_CLAUSES
    assert [c.position for c in clauses] == list(range(1, len(clauses) + 1))
    for clause in clauses:
        assert clause.text and clause.evidence_required
        assert clause.permitted_actions and set(clause.permitted_actions) <= set(Action.values)
        assert clause.appeal_window_days >= 180 and clause.evidence_retention_days >= clause.appeal_window_days
        assert clause.dsa_category in DSA_CATEGORIES
    by_ref = {c.ref: c for c in clauses}
    # The researcher exception can only clear or warn; it is what a reviewer cites to clear a researcher.
    assert by_ref["UP-6.1"].permitted_actions == [Action.NO_VIOLATION, Action.WARN]
    assert by_ref["UP-1.1"].severity == Clause.Severity.CRITICAL
    assert by_ref["UP-1.1"].permitted_actions == ["no_violation", "warn", "suspend", "terminate"]
    assert by_ref["UP-3.1"].dsa_category == "STATEMENT_CATEGORY_SCAMS_AND_FRAUD"
    assert by_ref["UP-1.1"].text.startswith("You may not use outputs of our models")
    assert "\n\n" in by_ref["UP-1.1"].text and "\n" not in by_ref["UP-1.1"].text.split("\n\n")[0]

    assert version_in_force() == version and versions_in_force() == [version]
    assert list(clauses_in_force()) == clauses
    [event] = published_events()
    assert event.target_type == "policy.policyversion" and event.target_id == str(version.pk)
    assert event.data["number"] == 1 and event.data["clauses"] == list(EXPECTED_CLAUSES)
    assert event.data["added"] == list(EXPECTED_CLAUSES) and event.data["previous"] is None


def test_loading_the_same_text_again_changes_nothing():
    [first] = load()
    events = AuditEvent.objects.count()
    [second] = load()
    assert not second.published and second.version == first.version
    assert PolicyVersion.objects.count() == 1 and AuditEvent.objects.count() == events
    out = io.StringIO()
    call_command("load_policies", stdout=out)
    assert out.getvalue().strip() == "usage-policy: unchanged (v1)"
    assert AuditEvent.objects.count() == events


def test_a_changed_clause_publishes_a_new_version_and_the_old_one_stays_as_it_was(policy_dir):
    [first] = load(policy_dir)
    v1 = first.version
    before = snapshot(v1)
    edit(policy_dir / POLICY_FILE, "is allowed. So is running", "is allowed. It must serve real users. So is running",
         after=heading("UP-2.1"))

    [second] = load(policy_dir)
    v2 = second.version
    assert second.published and v2.number == 2 and v2.policy == v1.policy
    assert snapshot(v1) == before
    assert v2.source_sha256 != v1.source_sha256 and v2.clauses.count() == v1.clauses.count()
    assert "It must serve real users." in v2.clauses.get(ref="UP-2.1").text
    assert "It must serve real users." not in v1.clauses.get(ref="UP-2.1").text
    assert version_in_force() == v2 and set(clauses_in_force()) == set(v2.clauses.all())

    diff = version_diff(v1, v2)
    assert diff.changed == ["UP-2.1"] and not diff.added and not diff.removed
    [text_change] = next(c for c in diff.clauses if c.ref == "UP-2.1").fields
    assert text_change.name == "text"
    assert "".join(s.text for s in text_change.segments if s.kind == "insert").strip() == "It must serve real users."
    assert not [s for s in text_change.segments if s.kind == "delete"]
    event = published_events()[-1]
    assert event.data["number"] == 2 and event.data["previous"] == 1
    assert event.data["changed"] == ["UP-2.1"] and event.data["added"] == [] and event.data["removed"] == []

    out = io.StringIO()
    edit(policy_dir / POLICY_FILE, "## Changes to this policy", "## Changes to this policy\n\nReworded.")
    call_command("load_policies", directory=policy_dir, stdout=out)
    assert out.getvalue().strip() == "usage-policy: published v3"


def test_a_version_published_ahead_of_its_date_takes_effect_on_that_date(policy_dir):
    [first] = load(policy_dir)
    edit(policy_dir / POLICY_FILE, "effective_from: 2026-10-01", "effective_from: 2999-01-01")
    edit(policy_dir / POLICY_FILE, "permitted_actions: [no_violation, warn]",
         "permitted_actions: [warn, no_violation, rate_limit]", after=heading("UP-6.1"))
    [second] = load(policy_dir)
    assert second.published and second.version.number == 2
    assert version_in_force() == first.version and versions_upcoming() == [second.version]
    assert version_in_force(on=datetime.date(2999, 1, 1)) == second.version
    # Stored mildest first, whatever the order in the file.
    assert second.version.clauses.get(ref="UP-6.1").permitted_actions == ["no_violation", "warn", "rate_limit"]
    assert clauses_in_force().get(ref="UP-6.1").permitted_actions == ["no_violation", "warn"]


def test_clauses_can_be_added_and_removed_and_a_title_reworded_in_case_only(policy_dir):
    load(policy_dir)
    path = policy_dir / POLICY_FILE
    text = path.read_text()
    start = text.index(heading("UP-5.2"))
    path.write_text(text[:start] + text[text.index("## 6. Research"):])  # withdraw UP-5.2
    edit(path, "### UP-2.1 Automated extraction at scale", "### UP-2.1 Automated Extraction at  Scale")
    edit(path, "## 6. Research", "### UP-5.3 Publishing outputs as a dataset\n\n```yaml\nseverity: medium\n"
         "permitted_actions: [no_violation, warn]\nevidence_required: The published dataset.\n"
         "requires_second_approval: false\nevidence_retention_days: 365\n"
         "dsa_category: STATEMENT_CATEGORY_OTHER_VIOLATION_TC\n```\n\nYou may not publish outputs in bulk.\n\n"
         "## 6. Research")
    [result] = load(policy_dir)
    diff = version_diff(PolicyVersion.objects.get(number=1), result.version)
    assert diff.added == ["UP-5.3"] and diff.removed == ["UP-5.2"] and diff.changed == ["UP-2.1"]
    assert result.version.clauses.get(ref="UP-5.3").appeal_window_days == 180  # the default


# (what is wrong, clause heading to edit after, old, new, clause named, problem named)
BAD_FILES = [
    ("unknown action", "UP-2.2", "permitted_actions: [no_violation, warn, rate_limit, suspend]",
     "permitted_actions: [no_violation, warn, ban]", "UP-2.2", 'unknown action "ban" in permitted_actions'),
    ("missing attribute", "UP-3.2", "requires_second_approval: false\n", "", "UP-3.2",
     "missing attribute requires_second_approval"),
    ("duplicate reference", "", "### UP-3.2 False registration details", "### UP-3.1 False registration details",
     "UP-3.1", "duplicate reference: UP-3.1 is already the clause at line"),
    ("bad severity", "UP-4.1", "severity: medium", "severity: severe", "UP-4.1", "bad severity 'severe'"),
    ("empty action list", "UP-5.1", "permitted_actions: [no_violation, warn, suspend, terminate]",
     "permitted_actions: []", "UP-5.1", "permitted_actions is empty"),
    ("action listed twice", "UP-5.1", "permitted_actions: [no_violation, warn, suspend, terminate]",
     "permitted_actions: [warn, warn]", "UP-5.1", 'action "warn" is listed twice'),
    ("unknown DSA category", "UP-1.1", "STATEMENT_CATEGORY_OTHER_VIOLATION_TC", "STATEMENT_CATEGORY_COMPETITION",
     "UP-1.1", "unknown dsa_category 'STATEMENT_CATEGORY_COMPETITION'"),
    ("DSA category of the old schema", "UP-1.1", "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
     "STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE", "UP-1.1", "renamed STATEMENT_CATEGORY_OTHER_VIOLATION_TC"),
    ("appeal window under six months", "UP-5.2", "appeal_window_days: 180", "appeal_window_days: 30", "UP-5.2",
     "appeal_window_days 30 is shorter than 180 days"),
    ("evidence purged before an appeal", "UP-6.1", "evidence_retention_days: 180", "evidence_retention_days: 90",
     "UP-6.1", "evidence_retention_days 90 is shorter than appeal_window_days 180"),
    ("unknown attribute", "UP-2.1", "severity: high", "severity: high\nseverty: high", "UP-2.1",
     'unknown attribute "severty"'),
    ("second approval not a boolean", "UP-2.1", "requires_second_approval: false",
     "requires_second_approval: sometimes", "UP-2.1", "requires_second_approval must be true or false"),
    ("attribute block not YAML", "UP-3.1", "severity: high", "severity: [high", "UP-3.1",
     "the attribute block is not valid YAML"),
    ("no attribute block", "UP-2.2", "```yaml", "```text", "UP-2.2", "missing attribute block"),
    ("no clause text", "UP-5.2", "API keys are issued to you for your own use.", "## Part heading\n\nProse.",
     "UP-5.2", "missing clause text"),
    ("malformed reference", "", "### UP-4.2 Circumventing", "### UP4.2 Circumventing", "",
     'heading "UP4.2 Circumventing access controls" does not start with a clause reference'),
    ("missing front matter key", "", "effective_from: 2026-10-01\n", "", "", "missing front matter key effective_from"),
    ("bad date", "", "effective_from: 2026-10-01", "effective_from: next week", "",
     "effective_from 'next week' is not a date"),
    ("no front matter", "", "---\nslug:", "slug:", "", "no front matter"),
]


@pytest.mark.parametrize(("old", "new", "ref", "problem", "after"), [
    pytest.param(old, new, ref, problem, after, id=what) for what, after, old, new, ref, problem in BAD_FILES
])
def test_a_bad_file_is_refused_naming_file_clause_and_problem_and_nothing_is_written(
        policy_dir, old, new, ref, problem, after):
    edit(policy_dir / POLICY_FILE, old, new, after=heading(after) if after else "")
    events = AuditEvent.objects.count()
    with pytest.raises(PolicyLoadError) as raised:
        load(policy_dir)
    message = str(raised.value)
    assert f"{POLICY_FILE}, line " in message and problem in message
    if ref:
        assert f"clause {ref}:" in message
    assert not Policy.objects.exists() and not PolicyVersion.objects.exists() and not Clause.objects.exists()
    assert AuditEvent.objects.count() == events


def test_an_error_names_the_line_of_the_attribute(policy_dir):
    path = policy_dir / POLICY_FILE
    edit(path, "severity: medium", "severity: extreme", after=heading("UP-4.1"))
    lines = path.read_text().splitlines()
    clause_line = lines.index("### UP-4.1 Circumventing rate limits or usage quotas")
    severity_line = lines.index("severity: extreme", clause_line) + 1
    with pytest.raises(PolicyLoadError) as raised:
        load(policy_dir)
    assert str(raised.value) == (f"{path}, line {severity_line}, clause UP-4.1: bad severity 'extreme' "
                                 "(one of: low, medium, high, critical)")


RESEARCH_TERMS = (
    "---\nslug: research-programme\ntitle: Researcher Access Programme terms\neffective_from: 2026-10-01\n"
    "summary: Terms for enrolled researchers.\n---\n\n# Terms\n\n## RP-1.1 Disclosure of findings\n\n"
    "```yaml\nseverity: low\npermitted_actions: [no_violation, warn]\nevidence_required: Enrolment.\n"
    "requires_second_approval: false\nevidence_retention_days: 180\n"
    "dsa_category: STATEMENT_CATEGORY_OTHER_VIOLATION_TC\n```\n\nTell us what you found.\n"
)


def test_every_problem_is_reported_and_a_good_file_beside_a_bad_one_is_not_loaded(policy_dir):
    (policy_dir / "research-programme.md").write_text(
        RESEARCH_TERMS.replace("severity: low", "severity: none").replace("retention_days: 180", "retention_days: 7"))
    with pytest.raises(PolicyLoadError) as raised:
        load(policy_dir)
    assert [(p.file.rsplit("/", 1)[-1], p.ref, p.line) for p in raised.value.problems] == [
        ("research-programme.md", "RP-1.1", 13), ("research-programme.md", "RP-1.1", 17)]
    assert "bad severity 'none'" in str(raised.value) and "evidence_retention_days 7 is shorter" in str(raised.value)
    assert not PolicyVersion.objects.exists() and not Policy.objects.exists()


def test_a_reference_used_in_two_files_is_refused(policy_dir):
    (policy_dir / "research-programme.md").write_text(RESEARCH_TERMS.replace("RP-1.1", "UP-1.1"))
    with pytest.raises(PolicyLoadError, match=(
            r"usage-policy\.md, line \d+, clause UP-1\.1: duplicate reference: UP-1\.1 is already a clause of "
            r"\S*research-programme\.md")):
        load(policy_dir)
    assert not PolicyVersion.objects.exists()


def test_two_good_files_are_two_policies_and_both_are_in_force(policy_dir):
    (policy_dir / "research-programme.md").write_text(RESEARCH_TERMS)
    results = load(policy_dir)
    assert [(r.slug, r.published) for r in results] == [("research-programme", True), ("usage-policy", True)]
    assert clauses_in_force().filter(ref="RP-1.1").exists() and clauses_in_force().count() == 12
    assert version_in_force("research-programme").clauses.get().text == "Tell us what you found."


def test_a_reference_keeps_its_meaning_across_versions(policy_dir):
    load(policy_dir)
    edit(policy_dir / POLICY_FILE, "### UP-2.1 Automated extraction at scale", "### UP-2.1 Prompt injection")
    events = AuditEvent.objects.count()
    with pytest.raises(PolicyLoadError) as raised:
        load(policy_dir)
    assert 'clause UP-2.1: the reference changed its meaning: UP-2.1 was published as "Automated extraction at ' \
           'scale" (v1), now "Prompt injection"' in str(raised.value)
    assert PolicyVersion.objects.count() == 1 and AuditEvent.objects.count() == events


def test_a_reference_belongs_to_one_policy(policy_dir, tmp_path):
    load(policy_dir)
    other = tmp_path / "other"
    other.mkdir()
    (other / "api-terms.md").write_text(
        (policy_dir / POLICY_FILE).read_text().replace("slug: usage-policy", "slug: api-terms"))
    with pytest.raises(PolicyLoadError) as raised:
        load(other)
    lines = (other / "api-terms.md").read_text().splitlines()
    line = lines.index("### UP-1.1 Using outputs to develop competing models")
    assert f"api-terms.md, line {line + 1}, clause UP-1.1: UP-1.1 is already a clause of policy usage-policy (v1)" \
        in str(raised.value)
    assert PolicyVersion.objects.count() == 1


def test_a_new_version_cannot_take_effect_before_the_one_it_replaces(policy_dir):
    load(policy_dir)
    edit(policy_dir / POLICY_FILE, "effective_from: 2026-10-01", "effective_from: 2026-01-01")
    with pytest.raises(PolicyLoadError, match="effective_from 2026-01-01 is earlier than 2026-10-01, the date of v1"):
        load(policy_dir)
    assert PolicyVersion.objects.count() == 1


def test_the_command_fails_with_the_loader_message(policy_dir):
    edit(policy_dir / POLICY_FILE, "severity: medium", "severity: severe", after=heading("UP-4.1"))
    with pytest.raises(CommandError, match=r"(?s)nothing was written.*usage-policy\.md, line \d+, clause UP-4\.1"):
        call_command("load_policies", directory=policy_dir)
    with pytest.raises(CommandError, match="no policy files"):
        call_command("load_policies", directory=policy_dir / "..")
    assert not PolicyVersion.objects.exists()
