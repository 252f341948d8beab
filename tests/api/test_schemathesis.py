"""The live OpenAPI schema tells the truth: schemathesis drives every operation of /api/schema/ through the WSGI
app, as a detector (its token), a senior reviewer (session and CSRF token) and an account holder (portal
session and CSRF token), with all its checks: no 5xx, every status, header and body as documented, invalid
input refused, valid input not refused for its shape.

Bounded and deterministic: hypothesis derandomized (the examples are the same every run), a few examples per
operation, no deadline.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection

from reviewapp.people.roles import Role
from tests.appeals.conftest import enforced_decision, sign_in_path

MAX_EXAMPLES = 5


@pytest.fixture
def api_schema(db, detector, detector_token, make_staff, policy, settings, tmp_path):
    settings.APPEAL_ATTACHMENTS_DIR = tmp_path / "attachments"
    cache.clear()  # holder write limits start afresh
    holder = enforced_decision(detector, make_staff, policy["extraction"], account_id="acct_st",
                               email="holder@example.org")
    staff = Client()
    staff.force_login(make_staff(Role.SENIOR_REVIEWER, username="sam"))
    portal = Client()
    portal.post(sign_in_path(holder.account))
    csrf = _get_new_csrf_string()
    sessions = {
        "cookieAuth": f"sessionid={staff.cookies['sessionid'].value}; csrftoken={csrf}",
        "holderSession": f"sessionid={portal.cookies['sessionid'].value}; csrftoken={csrf}",
    }
    # As Django's test client does: requests must not close the connection that holds the test's transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    schema.credentials = {"detectorToken": {"Authorization": f"Bearer {detector_token}"},
                          **{name: {"Cookie": cookie, "X-CSRFToken": csrf} for name, cookie in sessions.items()}}
    yield schema
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def bad_flags_are_named(ctx, response, case) -> bool | None:
    """The flag contract's own form of refusing invalid data: one bad item never blocks the others (DESIGN.md,
    invariant 3), so a batch answers 200/201 and names each bad item under ``rejected`` — never silence."""
    if response.status_code in (200, 201):
        answer = response.json()
        if not answer["rejected"]:
            raise AssertionError(f"schema-violating flags accepted without a rejection: {answer}")
    elif response.status_code not in (400, 401, 413, 415):
        raise AssertionError(f"unexpected {response.status_code} for schema-violating flags")
    return None


def check_operation(operation, mode: GenerationMode, headers: dict[str, str]) -> None:
    per_item = operation.path == "/api/v1/flags/" and mode == GenerationMode.NEGATIVE
    options = {"excluded_checks": [negative_data_rejection], "additional_checks": [bad_flags_are_named]
               } if per_item else {}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def answers_as_documented(case):
        case.call_and_validate(headers=headers, **options)

    try:
        answers_as_documented()
    except Unsatisfiable:
        # Staff operations take a session or a staff API token, so neither credential is required on its own: an
        # operation with no other input (no parameters, or only free strings) has nothing schemathesis can make
        # invalid. Its refusal without credentials is tried by tests/compliance/test_read_only.py and
        # tests/people/test_api_tokens.py.
        if mode != GenerationMode.NEGATIVE:
            raise


@pytest.mark.django_db
def test_every_operation_answers_as_documented(api_schema):
    # schemathesis' own pytest loader (from_fixture) does not run under pytest 9: each operation is a
    # hypothesis test here, positive and negative data, and every failure is reported, not just the first.
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        # The first scheme the operation lists: staff operations list their session, then the staff API token
        # (tests/people/test_api_tokens.py and tests/compliance/test_read_only.py drive the token).
        scheme = next(name for requirement in operation.definition.raw.get("security", []) for name in requirement)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                check_operation(operation, mode, api_schema.credentials[scheme])
            except (Exception, BaseExceptionGroup) as exc:  # each operation's failures are reported
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {exc}")
    assert not failures, "\n\n".join(failures)
