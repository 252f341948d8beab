"""Our transcription of the Transparency Database's validation rules refuses what the Commission's code refuses."""

import copy

import pytest

from reviewapp.policy import dsa_rules
from reviewapp.policy.dsa import DSA_CATEGORIES
from reviewapp.policy.dsa_rules import batch_errors, statement_errors

VALID = {
    "decision_account": "DECISION_ACCOUNT_SUSPENDED",
    "end_date_account_restriction": "2026-12-31",
    "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT",
    "incompatible_content_ground": "UP-2.1 Automated extraction at scale",
    "incompatible_content_explanation": "Do not extract outputs at scale.",
    "incompatible_content_illegal": "No",
    "category": "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
    "content_type": ["CONTENT_TYPE_TEXT"],
    "territorial_scope": ["DE", "FR"],
    "content_date": "2026-11-20",
    "application_date": "2026-12-01",
    "decision_facts": "1,200 prompts filled from one template.",
    "source_type": "SOURCE_VOLUNTARY",
    "automated_detection": "Yes",
    "automated_decision": "AUTOMATED_DECISION_NOT_AUTOMATED",
    "puid": "reviewapp-statement-1",
}


def changed(**fields):
    statement = copy.deepcopy(VALID)
    for field, value in fields.items():
        if value is ...:
            statement.pop(field, None)
        else:
            statement[field] = value
    return statement


def test_a_complete_statement_passes():
    assert statement_errors(VALID) == {}
    assert batch_errors({"statements": [VALID]}) == {}


@pytest.mark.parametrize("field", dsa_rules.REQUIRED)
@pytest.mark.parametrize("missing", [..., None, "", "  ", []])
def test_every_required_field(field, missing):
    assert "required" in statement_errors(changed(**{field: missing}))[field]


def test_at_least_one_restriction_is_required():
    errors = statement_errors(changed(decision_account=..., end_date_account_restriction=...))
    assert set(errors) == set(dsa_rules.RESTRICTIONS)


@pytest.mark.parametrize(("field", "value"), [
    ("decision_account", "Suspension of the account"),          # the label, not the name
    ("decision_account", "DECISION_ACCOUNT_RATE_LIMITED"),
    ("decision_provision", "PARTIAL_SUSPENSION"),
    ("decision_monetary", "DECISION_MONETARY_FINE"),
    ("decision_visibility", ["DECISION_VISIBILITY_CONTENT_REMOVED", "DECISION_VISIBILITY_HIDDEN"]),
    ("decision_visibility", "DECISION_VISIBILITY_CONTENT_REMOVED"),  # must be a list
    ("account_type", "ACCOUNT_TYPE_ORGANISATION"),
    ("category", "STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE"),   # renamed on 1 July 2025
    ("category_addition", ["STATEMENT_CATEGORY_COMPETITION"]),
    ("category_specification", ["KEYWORD_DISTILLATION"]),
    ("content_type", ["CONTENT_TYPE_PROMPT"]),
    ("content_type", "CONTENT_TYPE_TEXT"),
    ("source_type", "SOURCE_AUTOMATED"),
    ("automated_detection", "AUTOMATED_DETECTION_YES"),          # values here, not names
    ("automated_detection", True),
    ("automated_decision", "Not Automated"),
    ("decision_ground", "DECISION_GROUND_TOS"),
    ("incompatible_content_illegal", "no"),
    ("territorial_scope", ["DE", "GB"]),                         # not in the EEA
    ("territorial_scope", ["EU"]),
    ("content_language", "en"),                                  # upper case only
])
def test_every_enum(field, value):
    assert field in statement_errors(changed(**{field: value}))


@pytest.mark.parametrize("field", list(dsa_rules.DATES))
@pytest.mark.parametrize("value", ["2026-1-5", "2026-12-01T10:00:00+00:00", "01/12/2026", "2026-02-30", 20261201])
def test_every_date_format(field, value):
    assert "does not match the format YYYY-MM-DD" in statement_errors(changed(**{field: value}))[field][0]


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("content_date", "1999-12-31", "before 2000-01-01"),
    ("application_date", "2019-12-31", "before 2020-01-01"),
    ("application_date", "2038-01-02", "after 2038-01-01"),
    ("end_date_account_restriction", "2038-01-02", "after 2038-01-01"),
])
def test_date_bounds(field, value, reason):
    assert statement_errors(changed(**{field: value}))[field] == [reason]


@pytest.mark.parametrize(("field", "value"), [("content_date", "2000-01-01"), ("application_date", "2020-01-01"),
                                              ("application_date", "2038-01-01"),
                                              ("end_date_account_restriction", "2038-01-01")])
def test_date_bounds_are_inclusive(field, value):
    assert statement_errors(changed(**{field: value})) == {}


@pytest.mark.parametrize(("field", "limit"), [("decision_facts", 5000), ("incompatible_content_ground", 500),
                                              ("incompatible_content_explanation", 2000), ("puid", 500)])
def test_every_length(field, limit):
    char = "a" if field == "puid" else "é"  # characters, not bytes
    assert statement_errors(changed(**{field: char * limit})) == {}
    assert f"longer than {limit} characters" in statement_errors(changed(**{field: char * (limit + 1)}))[field][0]


@pytest.mark.parametrize("puid", ["reviewapp statement 1", "reviewapp/1", "ré-1", "1\n"])
def test_puid_characters(puid):
    assert statement_errors(changed(puid=puid))["puid"]


@pytest.mark.parametrize(("fields", "required"), [
    ({"decision_ground": "DECISION_GROUND_ILLEGAL_CONTENT"},
     {"illegal_content_legal_ground", "illegal_content_explanation"}),
    ({"incompatible_content_ground": ...}, {"incompatible_content_ground"}),
    ({"incompatible_content_explanation": ""}, {"incompatible_content_explanation"}),
    ({"decision_visibility": ["DECISION_VISIBILITY_OTHER"]}, {"decision_visibility_other"}),
    ({"decision_monetary": "DECISION_MONETARY_OTHER"}, {"decision_monetary_other"}),
    ({"content_type": ["CONTENT_TYPE_TEXT", "CONTENT_TYPE_OTHER"]}, {"content_type_other"}),
])
def test_conditional_required(fields, required):
    errors = statement_errors(changed(**fields))
    assert {field for field, reasons in errors.items() if "required" in reasons} == required


def test_excluded_fields_are_not_checked():
    """exclude_unless: a field its condition does not ask for is dropped, whatever it holds."""
    assert statement_errors(changed(illegal_content_explanation="x" * 9000, content_type_other="x" * 900,
                                    decision_visibility_other="x" * 900, source_identity="x" * 900)) == {}
    # a batch keeps source_identity for voluntary statements, so there its length counts
    assert batch_errors({"statements": [changed(source_identity="x" * 501)]})


def test_unknown_fields_are_refused_because_the_api_would_drop_them():
    assert "decision_id" in statement_errors(changed(decision_id=3))


def test_batch_bounds_and_unique_puids():
    assert batch_errors({"statements": []}) and batch_errors({}) and batch_errors({"statements": VALID})
    many = [changed(puid=f"p-{i}") for i in range(101)]
    assert "at most 100" in batch_errors({"statements": many})["statements"][0]
    assert batch_errors({"statements": many[:100]}) == {}
    errors = batch_errors({"statements": [VALID, changed(decision_ground="x"), VALID]})
    assert set(errors) == {"statement_1", "statement_2"}
    assert errors["statement_2"]["puid"] == ["repeats a puid of this batch"]


def test_the_policy_loader_and_the_rules_agree_on_the_categories():
    assert set(DSA_CATEGORIES) == dsa_rules.STATEMENT_CATEGORIES
