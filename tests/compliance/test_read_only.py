"""Compliance officers read everything and change nothing (DESIGN.md invariant 5; issue 11, "Tests that must
exist", first item) — tried on every write route there is, not on a list of the ones we remembered.

How: every route of the URL conf is walked (``get_resolver()``, recursively, the API included), and every write
operation of the OpenAPI schema (drf-spectacular's generator, as tests/api/test_schemathesis.py reads it). Each
is tried with POST, PUT, PATCH and DELETE by a signed-in compliance officer, with a valid CSRF token (so CSRF is
not what refuses it), a plausible body, and the ids of real seeded objects: an open, a claimed, an awaiting and
a decided case, their decisions, an appeal with an attachment, a Forum share, a flag, a detector and its token,
another staff member, the officer themself. A route added later is walked too: a parameter this file cannot
fill fails the test, naming the route, instead of leaving the route untried.

What must hold: the answer is 401, 403, 404 or 405, a redirect to a sign-in page (the holder's portal: staff
are not the holder), or a 400 or 422 (a form refused before the service was asked) that changed nothing; and
nothing changed at all — the audit trail's tail (every change writes an event in its transaction, invariant 1)
is the same after each request, and the row count and an md5 of the content of every table are the same at
the end as at the start.

The console's own non-mutating actions are in ``ALLOWED`` with why each is allowed; they are tried too, and
must leave every case, decision, appeal, share and flag (every table of cases, appeals, forum, flags, policy
and outbox) exactly as it was.

The same sweep runs with a compliance officer's staff API token (``Authorization: Token …``) when the
token interface (``reviewapp.people.auth.StaffTokenAuthentication``, ``reviewapp.people.services.issue_api_token``)
is there; until then that variant is skipped, saying so.
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.core import signing
from django.db import connection
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from django.urls import resolve
from django.urls.exceptions import Resolver404

from appeals.services import Upload, appeal_file
from reviewapp.audit.models import AuditEvent
from reviewapp.cases.models import Case, Decision
from reviewapp.cases.services.claims import case_claim
from reviewapp.cases.services.decisions import decision_record
from reviewapp.people.roles import Role
from tests.appeals.conftest import PDF, enforced_decision
from tests.factories import FlaggedCaseFactory
from tests.support_routes import concrete_paths, every_id, parameter_values, schema_operations, walk

METHODS = ("post", "put", "patch", "delete")
REFUSED = {401, 403, 404, 405}  # 401: the detectors' intake asks for a detector token, not a session
# Where a refusal may send a signed-in staff member: the holder's portal asks for the holder's own link.
SIGN_IN_PAGES = {"appeals:start", "people:login"}

# The console's own actions a compliance officer may take: none changes a record (a case, decision, appeal,
# share, flag). URL name → why. Each is still tried, and checked against the record tables (RECORD_APPS).
ALLOWED: dict[str, str] = {
    "people:logout": "Signing out ends the officer's own session (audited as auth.logout).",
    "people:password-change": "Changing one's own password (audited); a wrong current password changes nothing.",
    "compliance:verify": "Starting a verification of the audit chain: a run row and its audit event, a read of "
                         "the chain by a Celery task.",
    "compliance:quality-draw": "Drawing a QA sample for a blind second look: sample rows of the quality area, "
                               "never the decisions sampled.",
    "compliance:exports": "Requesting an export: an export request row; the export is a read.",
    "compliance:export-create": "Requesting an export (the exports area's form): a read, stored as a request.",
    "people:api-tokens": "Creating or revoking one's own staff API token (hashed, audited), for the exports.",
    "people:api-token-create": "Creating one's own staff API token (hashed, shown once, audited).",
    "people:api-token-revoke": "Revoking one's own staff API token (audited).",
    "appeals:start": "The holder's public form asking for a sign-in link to one's own address (rate-limited): "
                     "it acts as no staff member and changes no record.",
    "people:login": "Posting the sign-in form while signed in sends the officer on to their home; nothing changes.",
    "review:case-evidence": "Opening a case's evidence is a read (a POST so that each opening is audited as "
                            "evidence.opened: who looked at whose data is what the console watches).",
    "appeal-review:attachment": "Opening an appeal's attachment is a read, audited as each opening is.",
}
# The same, by the API schema's operation id.
ALLOWED_OPERATIONS: dict[str, str] = {
    "compliance_quality_samples_create": "Drawing a QA sample through the API, as compliance:quality-draw.",
}
# The apps whose tables hold the records compliance must never change, even through an allowed action.
RECORD_APPS = ("cases", "appeals", "forum", "flags", "policy", "outbox")

# Tables whose content moves with any request and is not a record: the officer's own session row (re-saved
# by the session middleware) and the cache table (rate-limit counters). Every other table is compared.
NOT_RECORDS = {"django_session", "reviewapp_cache"}


# ── the seeded world ────────────────────────────────────────────────────────────────────────────────────────────

@dataclass
class World:
    officer: object
    ids: dict[str, list[int]]
    strings: dict[str, list[str]]

    def every_id(self) -> list[int]:
        return every_id(self)


@pytest.fixture
def world(detector, detector_token, policy, make_staff, settings, tmp_path) -> World:
    from django.core.cache import cache

    from flags.models import DetectorToken, Flag
    from reviewapp.cases.models import Campaign
    from reviewapp.forum import services as forum
    from reviewapp.forum.content import ShareChoice

    settings.APPEAL_ATTACHMENTS_DIR = tmp_path / "attachments"
    cache.clear()
    decided = enforced_decision(detector, make_staff, policy["extraction"], account_id="acct_ro_decided",
                                email="decided@example.org")
    appealed = enforced_decision(detector, make_staff, policy["extraction"], account_id="acct_ro_appealed",
                                 email="appealed@example.org", action="warn", duration_days=None)
    appeal = appeal_file(account=appealed.account, decision=appealed.decision, grounds="Research, not extraction.",
                         uploads=[Upload(name="letter.pdf", content_type="application/pdf", data=PDF)])
    reviewer, senior = make_staff(Role.REVIEWER, username="ro-rita"), make_staff(Role.SENIOR_REVIEWER)
    awaiting_case = FlaggedCaseFactory(detector=detector, account_id="acct_ro_awaiting", contact_email="a@example.org",
                                       flag={"evidence": {"excerpts": ["Solve: {x}"]}, "cluster_id": "c-ro"})
    case_claim(reviewer=reviewer, case=awaiting_case)
    awaiting = decision_record(reviewer=reviewer, case=Case.objects.get(pk=awaiting_case.pk),
                               clauses=[policy["competing"]], action="suspend", duration_days=30,
                               rationale="A rival model.", facts_for_holder="Templated prompts.")
    assert awaiting.state == Decision.State.AWAITING_APPROVAL
    claimed = FlaggedCaseFactory(detector=detector, account_id="acct_ro_claimed")
    case_claim(reviewer=reviewer, case=claimed)
    unclaimed = FlaggedCaseFactory(detector=detector, account_id="acct_ro_new", flag={"cluster_id": "c-ro"})
    share = forum.share_propose(proposer=reviewer, source=decided.decision.case,
                                collection_id=next(iter(settings.FORUM_COLLECTIONS)), choice=ShareChoice())
    officer = make_staff(Role.COMPLIANCE_OFFICER, username="ro-cora")
    version = policy["extraction"].version
    ids = {
        "case": [unclaimed.pk, claimed.pk, awaiting_case.pk, decided.decision.case_id],
        "decision": [awaiting.pk, decided.decision.pk, appealed.decision.pk],
        "statement": [decided.statement.pk, appealed.statement.pk],
        "appeal": [appeal.pk],
        "attachment": [appeal.attachments.get().pk],
        "share": [share.pk],
        "campaign": list(Campaign.objects.values_list("pk", flat=True)[:1]),
        "flag": list(Flag.objects.values_list("pk", flat=True)[:1]),
        "detector": [detector.pk],
        "token": list(DetectorToken.objects.values_list("pk", flat=True)[:1]),
        "user": [reviewer.pk, senior.pk, officer.pk],
        "audit": list(AuditEvent.objects.values_list("pk", flat=True)[:1]),
        "version": [version.number],
    }
    # A sign-in link is the holder's own bearer credential (whoever holds it acts as the holder, not as staff):
    # the officer is given a well-formed link that is nobody's.
    strings = {"queue": [unclaimed.queue], "slug": [version.policy.slug], "kind": ["case", "campaign"],
               "token": [signing.dumps("not-a-real-link-secret", salt="not-the-link-salt")],
               "format": ["json"]}
    return World(officer=officer, ids=ids, strings=strings)


def _values(world: World, route: str, name: str, kind: str) -> list:
    """Seeded values for a parameter (the URL conf's walk and the rules are tests/support_routes.py's)."""
    return parameter_values(world, route, name, kind)


# ── what "nothing changed" is ───────────────────────────────────────────────────────────────────────────────────

def table_sums(tables: list[str] | None = None) -> dict[str, tuple[int, str]]:
    """Row count and an md5 of every row's text, in a stable order, per table."""
    with connection.cursor() as cursor:
        names = tables if tables is not None else [t for t in connection.introspection.table_names()
                                                   if t not in NOT_RECORDS]
        sums = {}
        for table in names:
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT count(*), md5(coalesce(string_agg(md5(t::text), '' ORDER BY md5(t::text)), '')) "
                           f"FROM {quoted} t")
            sums[table] = cursor.fetchone()
    return sums


def record_tables() -> list[str]:
    from django.apps import apps

    return sorted({model._meta.db_table for app in RECORD_APPS for model in apps.get_app_config(app).get_models()}
                  | {through._meta.db_table for app in RECORD_APPS for model in apps.get_app_config(app).get_models()
                     for through in (f.remote_field.through for f in model._meta.many_to_many)})


def audit_tail() -> tuple[int, int | None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), max(id) FROM audit_auditevent")
        return cursor.fetchone()


def changed(before: dict, after: dict) -> list[str]:
    return sorted(table for table in before if before[table] != after.get(table))


# ── bodies ──────────────────────────────────────────────────────────────────────────────────────────────────────

def form_body(world: World) -> dict:
    """A form that many writes would accept were they not refused: the fields the review, appeal, share and
    staff forms ask for, with real values."""
    return {"action": "suspend", "clauses": "T-1", "rationale": "Plausible.", "facts_for_holder": "Plausible.",
            "duration_days": "30", "reason": "Plausible.", "text": "Plausible.", "note": "Plausible.",
            "outcome": "upheld", "role": Role.ADMIN.value, "active": "false", "version": "1",
            "username": "ro-rita", "name": "token", "slug": "template-miner", "confirm": "yes",
            "queue": world.strings["queue"][0], "bundle_sha256": "0" * 64, "size": "5", "seed": "1"}


def schema_body(schema: dict, components: dict, world: World, depth: int = 0):
    """A value for a JSON schema: every property filled, enums by their first value, ids by seeded ones."""
    if depth > 6:
        return None
    if "$ref" in schema:
        return schema_body(components[schema["$ref"].rsplit("/", 1)[-1]], components, world, depth + 1)
    for key in ("allOf", "oneOf", "anyOf"):
        if schema.get(key):
            return schema_body(schema[key][0], components, world, depth + 1)
    if "enum" in schema:
        return next((value for value in schema["enum"] if value is not None), None)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {name: schema_body(sub, components, world, depth + 1)
                for name, sub in schema.get("properties", {}).items() if not sub.get("readOnly")}
    if kind == "array":
        item = schema_body(schema.get("items", {}), components, world, depth + 1)
        return [] if item is None else [item]
    if kind == "integer":
        return world.every_id()[0]
    if kind == "number":
        return 1
    if kind == "boolean":
        return True
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return (datetime.now(UTC) + timedelta(days=1)).isoformat()
        if fmt == "date":
            return datetime.now(UTC).date().isoformat()
        return "T-1" if "ref" in schema.get("description", "").lower() else "Plausible."
    return "Plausible."


# ── the sweep ───────────────────────────────────────────────────────────────────────────────────────────────────

@dataclass
class Attempt:
    method: str
    path: str
    name: str
    status: int
    wrote: bool  # the audit tail moved
    location: str = ""  # where a redirect sent it

    def refused(self, allowed: set[int]) -> bool:
        if self.status in (302, 303):
            return self.location in SIGN_IN_PAGES
        return self.status in allowed


def signed_in_client(user) -> tuple[Client, dict]:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    csrf = _get_new_csrf_string()
    client.cookies["csrftoken"] = csrf
    return client, {"HTTP_X_CSRFTOKEN": csrf, "csrfmiddlewaretoken": csrf}


def attempt(client: Client, method: str, path: str, *, name: str, body, json_body: bool, headers: dict) -> Attempt:
    tail = audit_tail()
    if json_body:
        response = getattr(client, method)(path, json.dumps(body), content_type="application/json", **headers)
    elif method == "post":
        response = client.post(path, {**body, "csrfmiddlewaretoken": headers.get("csrfmiddlewaretoken", "")},
                               **{k: v for k, v in headers.items() if k.startswith("HTTP_")})
    else:
        from urllib.parse import urlencode

        response = getattr(client, method)(path, urlencode(body), content_type="application/x-www-form-urlencoded",
                                           **{k: v for k, v in headers.items() if k.startswith("HTTP_")})
    location = response.get("Location", "")
    if location:
        try:
            match = resolve(location.split("?", 1)[0])
            location = f"{match.namespace}:{match.url_name}" if match.namespace else match.url_name
        except Resolver404:
            pass
    return Attempt(method, path, name, response.status_code, audit_tail() != tail, location)


def refusal_problems(attempts: list[Attempt]) -> list[str]:
    return [f"{a.method.upper()} {a.path} ({a.name}): {a.status}{' and wrote to the audit trail' if a.wrote else ''}"
            for a in attempts if a.wrote or not a.refused(REFUSED | {400, 422})]


def url_conf_sweep(client: Client, headers: dict, world: World, *, skip: set[str]) -> tuple[list[Attempt], list]:
    attempts, unfilled = [], []
    for route in walk():
        if route.name in skip:
            continue
        try:
            paths = concrete_paths(route, world)
        except LookupError as missing:
            unfilled.append(f"{route.text} ({route.name}): no seeded value for parameter {missing}")
            continue
        if not paths:
            unfilled.append(f"{route.text} ({route.name}): no filled path resolves back to it")
            continue
        api = route.text.startswith("api/")
        for path in paths:
            for method in METHODS:
                attempts.append(attempt(client, method, path, name=route.name, body={} if api else form_body(world),
                                        json_body=api, headers=headers))
    return attempts, unfilled


def schema_sweep(client: Client, headers: dict, world: World, *, skip_paths: set[str] = frozenset()) -> list[Attempt]:
    operations, components = schema_operations(METHODS)
    assert operations, "the schema lists no write operation: the generator is not reading the API"
    attempts = []
    for template, method, operation in operations:
        if template in skip_paths or operation.get("operationId") in ALLOWED_OPERATIONS:
            continue
        names = re.findall(r"{(\w+)}", template)
        combos = [{}]
        for name in names:
            kind = "str" if name in world.strings else "int"
            combos = [{**c, name: v} for c in combos for v in _values(world, template, name, kind)]
        content = operation.get("requestBody", {}).get("content", {})
        media = content.get("application/json", {}).get("schema")
        body = schema_body(media, components, world) if media else {}
        for combo in combos:
            path = re.sub(r"{(\w+)}", lambda m, c=combo: str(c[m[1]]), template)
            attempts.append(attempt(client, method, path, name=operation.get("operationId", template), body=body,
                                    json_body=True, headers=headers))
    return attempts


def test_a_compliance_officer_changes_nothing_through_any_write_route(world):
    client, headers = signed_in_client(world.officer)
    before, tail = table_sums(), audit_tail()
    attempts, unfilled = url_conf_sweep(client, headers, world, skip=set(ALLOWED))
    attempts += schema_sweep(client, headers, world)
    assert not unfilled, "routes the sweep could not try (teach support_routes.ID_RULES or world.strings):\n" + \
        "\n".join(unfilled)
    assert len({a.name for a in attempts}) > 50 and any(a.path.startswith("/api/v1/") for a in attempts)
    assert not refusal_problems(attempts), "answered as if allowed, or wrote:\n" + "\n".join(refusal_problems(attempts))
    assert audit_tail() == tail
    after = table_sums()
    assert not changed(before, after), f"tables changed by a compliance officer's writes: {changed(before, after)}"


def test_the_console_own_actions_change_no_record(world):
    """Each allowed action, tried as the others are: whatever it writes of its own, no record moves."""
    client, headers = signed_in_client(world.officer)
    records = record_tables()
    assert {"cases_case", "cases_decision", "appeals_appeal", "forum_shareproposal", "flags_flag"} <= set(records)
    before = table_sums(records)
    tried = []
    # Sign-out last: it ends the session the others use.
    for route in sorted((r for r in walk() if r.name in ALLOWED), key=lambda r: r.name == "people:logout"):
        for path in concrete_paths(route, world):
            for method in METHODS:
                tried.append(attempt(client, method, path, name=route.name, body=form_body(world),
                                     json_body=route.text.startswith("api/"), headers=headers))
    assert {"people:logout", "people:password-change"} <= {a.name for a in tried}
    assert not [a for a in tried if a.status >= 500], [a for a in tried if a.status >= 500]
    assert not changed(before, table_sums(records)), changed(before, table_sums(records))


def _token_interface():
    try:
        auth = importlib.import_module("reviewapp.people.auth")
        services = importlib.import_module("reviewapp.people.services")
        return auth.StaffTokenAuthentication, services.issue_api_token
    except (ImportError, AttributeError):
        return None


def test_a_compliance_officers_api_token_changes_nothing(world):
    interface = _token_interface()
    if interface is None:
        pytest.skip("no staff API tokens yet: reviewapp.people.auth.StaffTokenAuthentication and "
                    "reviewapp.people.services.issue_api_token (the exports area) are not in the tree")
    _authentication, issue_api_token = interface
    _row, secret = issue_api_token(actor=world.officer, user=world.officer, name="read-only sweep")
    client = Client(enforce_csrf_checks=True)  # no session: the token is all it has
    headers = {"HTTP_AUTHORIZATION": f"Token {secret}"}
    before, tail = table_sums(), audit_tail()
    attempts = schema_sweep(client, headers, world)
    api_routes = [r for r in walk() if r.text.startswith("api/")]
    for route in api_routes:
        if route.name in ALLOWED:
            continue
        for path in concrete_paths(route, world):
            for method in METHODS:
                attempts.append(attempt(client, method, path, name=route.name, body={}, json_body=True,
                                        headers=headers))
    problems = [f"{a.method.upper()} {a.path} ({a.name}): {a.status}" for a in attempts
                if a.wrote or not a.refused(REFUSED | {400, 401, 422})]
    assert not problems, "answered a token as if allowed, or wrote:\n" + "\n".join(problems)
    assert audit_tail() == tail
    after = table_sums()
    assert not changed(before, after), changed(before, after)
