"""Authorization, completely (issue 12): every route × every principal, with the expected answer in one table.

The routes are the URL conf's, walked recursively (``get_resolver()``, the API included), and the OpenAPI
schema's operations (drf-spectacular's generator): tests/support_routes.py walks both, as the compliance
read-only sweep does. ``test_every_route_has_a_row`` fails, naming it, for a route of the URL conf without a row
in ``TABLE``, or an operation of the schema whose method its route's row does not list: a route added without
saying who may use it fails here before anyone reviews it.

The principals: nobody (anonymous); each staff role, signed in (reviewapp/people/roles.py); an account holder
and another holder, each signed in to the portal through a real sign-in link (appeals/session.py); a detector's
bearer token (the flags API's only credential); a staff API token (``Authorization: Token …``, no session),
issued to the reviewer: on the API it acts as that reviewer and no more, on the pages it is nobody.

How to read the table: a row per route (and per object tried, where which object matters), with, per method,
what each principal is answered. Whoever a row does not name gets its area's rule:
  staff pages   — signed-in staff: 403 (the Forum's pages: 404, "no such page"); everyone else: 302 to the
                  staff sign-in (a portal session, a detector or a staff token is no staff sign-in);
  staff API     — staff: 403; the staff token: whatever its reviewer is answered; everyone else: 403 (DRF's
                  session authentication comes first and has no challenge to offer; the exports API answers 401
                  with its WWW-Authenticate: Token);
  portal        — the holders as named; everyone else: 302 to "get a sign-in link" (staff are not the holder);
  holder API    — the holders as named; everyone else: 403;
  public        — as named.
A GET on a route that serves only writes answers 405 to whoever its write lets through, the area's rule to the
rest (login, then permission, then method: the decorators' order), unless the row says otherwise.

What is checked: a GET's exact answer (a redirect by where it sends). A write (POST) cannot be tried for real by
everyone without changing the world under the next test, so: every refusal is checked exactly and must leave
the audit trail's tail where it was (every change writes its event, invariant 1); an allowed principal's answer
must be no refusal (401/403/404/405, a sign-in redirect) and no 5xx. Each test runs in a savepoint of the
module's seeded world, rolled back after it.

Objects: a holder's routes are tried with holder A's statement, decision, appeal and attachment: A is answered,
B gets 404 (B may not know they exist). Staff routes are tried with objects the principal may know but not
touch (403: a case claimed by another reviewer, an appeal claimed by another senior) and objects they may not
know exist (404: someone else's share proposal for a reviewer, someone else's staff API token), as each row says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import urlencode

import pytest
from django.core import signing
from django.core.cache import cache as django_cache
from django.db import transaction
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client, override_settings
from django.urls import resolve
from django.urls.exceptions import Resolver404

from appeals.services import Upload, appeal_claim, appeal_file
from reviewapp.audit.models import AuditEvent
from reviewapp.people.roles import Role
from tests.appeals.conftest import PDF, enforced_decision, sign_in_path
from tests.factories import FlaggedCaseFactory
from tests.support_routes import STRING_PARAMETERS, Route, id_kind, params, path_for, schema_operations, walk

# Each test in a savepoint of the module's world; the mark is also what has pytest-django set up the test database.
pytestmark = pytest.mark.django_db

# ── the principals ──────────────────────────────────────────────────────────────────────────────────────────────

ANONYMOUS, REVIEWER, SENIOR, SHARING, COMPLIANCE, ADMIN = (
    "anonymous", "reviewer", "senior_reviewer", "sharing_officer", "compliance_officer", "admin")
HOLDER, OTHER_HOLDER, DETECTOR, STAFF_TOKEN = "holder", "other_holder", "detector_token", "staff_token"
PRINCIPALS = (ANONYMOUS, REVIEWER, SENIOR, SHARING, COMPLIANCE, ADMIN, HOLDER, OTHER_HOLDER, DETECTOR, STAFF_TOKEN)
STAFF = (REVIEWER, SENIOR, SHARING, COMPLIANCE, ADMIN)
HOLDERS = (HOLDER, OTHER_HOLDER)
EVERYONE = PRINCIPALS
# Groups by the role permissions they hold (reviewapp/people/roles.py).
CASE_READERS = (REVIEWER, SENIOR, SHARING, COMPLIANCE)  # cases.view_case
CLAIMERS = (REVIEWER, SENIOR)  # cases.claim_case
RECORD_READERS = (REVIEWER, SENIOR, COMPLIANCE)  # decisions and statements of reasons
APPEAL_READERS = (SENIOR, COMPLIANCE)  # appeals.view_appeal
SHARE_READERS = (REVIEWER, SENIOR, SHARING, COMPLIANCE)  # propose, approve or read Forum shares
PEOPLE_READERS = (COMPLIANCE, ADMIN)  # people.view_user; also detectors and the outbox
INBOUND_READERS = (SHARING, COMPLIANCE)  # what other labs shared with us, and its matches

# ── the answers ─────────────────────────────────────────────────────────────────────────────────────────────────

OK, BAD_REQUEST, UNPROCESSABLE, CONFLICT = "200", "400", "422", "409"
UNAUTHORIZED, FORBIDDEN, NOT_FOUND, NOT_ALLOWED = "401", "403", "404", "405"
LOGIN, PORTAL = "302:people:login", "302:appeals:start"  # the staff sign-in; the portal's "get a link"
HOME = "302:core:home"
HEALTH = "200 or 503"  # the stack's health, the same whoever asks (the module's open transaction holds audit events)
DO = "allowed"  # a write let through: no refusal, no 5xx (what it then does is the feature tests' business)
REFUSALS = {UNAUTHORIZED, FORBIDDEN, NOT_FOUND, NOT_ALLOWED, LOGIN, PORTAL}
MISSING = 999_999_999  # an id nothing has


# ── rows and areas ──────────────────────────────────────────────────────────────────────────────────────────────

PAGE, FORUM_PAGE, API, EXPORT_API, PORTAL_AREA, HOLDER_API, PUBLIC = (
    "staff page", "Forum page", "staff API", "exports API", "portal", "holder API", "public")


@dataclass(frozen=True)
class Row:
    name: str  # the URL name, namespace:name
    area: str
    answers: dict[str, dict[str, str]]  # method → principal → answer
    objects: dict[str, str] = field(default_factory=dict)  # parameter → seeded object (World.ids key)
    variant: str = ""  # which object, when a route has more than one row
    body: Callable | None = None  # world → the write's body (a form, or JSON on the API); empty otherwise

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.answers)

    @property
    def id(self) -> str:
        return self.name + (f"[{self.variant}]" if self.variant else "")


def _expand(spec: dict) -> dict[str, str]:
    """{principal or group of principals: answer}, later keys winning, to {principal: answer}."""
    answers: dict[str, str] = {}
    for who, what in spec.items():
        for principal in (who,) if isinstance(who, str) else who:
            answers[principal] = what
    return answers


def _row(area: str, name: str, *, get=None, post=None, objects=None, variant="", body=None) -> Row:
    answers = {}
    if get is not None:
        answers["GET"] = _expand(get)
    if post is not None:
        answers["POST"] = _expand(post)
    return Row(name, area, answers, objects or {}, variant, body)


def page(name, **kw) -> Row:
    return _row(PAGE, name, **kw)


def forum_page(name, **kw) -> Row:
    return _row(FORUM_PAGE, name, **kw)


def api(name, **kw) -> Row:
    return _row(API, name, **kw)


def export_api(name, **kw) -> Row:
    return _row(EXPORT_API, name, **kw)


def portal(name, **kw) -> Row:
    return _row(PORTAL_AREA, name, **kw)


def holder_api(name, **kw) -> Row:
    return _row(HOLDER_API, name, **kw)


def public(name, **kw) -> Row:
    return _row(PUBLIC, name, **kw)


def _area_rule(row: Row, principal: str) -> str:
    if row.area in (PAGE, FORUM_PAGE):
        if principal in STAFF:
            return NOT_FOUND if row.area == FORUM_PAGE else FORBIDDEN
        return LOGIN
    if row.area in (API, EXPORT_API):
        if principal in STAFF:
            return FORBIDDEN
        return UNAUTHORIZED if row.area == EXPORT_API else FORBIDDEN
    if row.area == PORTAL_AREA:
        return PORTAL
    if row.area == HOLDER_API:
        return FORBIDDEN
    raise AssertionError(f"{row.id}: a public route names every principal's answer ({principal} missing)")


def expected(row: Row, method: str, principal: str) -> str:
    """What ``principal`` is answered for ``method`` on the row's route, by the row or else its area's rule."""
    named = row.answers.get(method, {})
    if principal in named:
        return named[principal]
    if principal == STAFF_TOKEN and row.area in (API, EXPORT_API):
        return expected(row, method, REVIEWER)  # the token acts as its person, no more
    if method == "GET" and "GET" not in row.answers:
        # A write-only route: whoever the row names for its write got past sign-in and permission (even to an
        # object refusal), so a GET is the wrong method for them.
        writes = [answers for answers in row.answers.values() if principal in answers]
        if writes and writes[0][principal] not in (LOGIN, PORTAL):
            return NOT_ALLOWED
    return _area_rule(row, principal)


def _all_of(names: list[str], make: Callable[[str], Row]) -> list[Row]:
    return [make(name) for name in names]


# ── the table ───────────────────────────────────────────────────────────────────────────────────────────────────

SIGNED_OUT = LOGIN + " (signed out: the audit trail records it)"
REFUSED_TO_CASE = "302:review:case (refused: the service's refusal is said in a message on the case page)"
EXPORT_FILES = [f"{dataset}-{fmt}" for dataset in ("decisions", "statements", "appeals", "shares", "audit")
                for fmt in ("csv", "jsonl")]
TRANSPARENCY_FILES = ["decisions", "appeals", "durations", "forum", "researchers"]
COMPLIANCE_PAGES = ["home", "decisions", "decision", "audit-events", "evidence-access", "evidence-access-outside",
                    "evidence-access-weekly", "quality", "quality-disagreements", "calibration", "exports",
                    "transparency", "retention"]
COMPLIANCE_API = ["evidence-access-api", "evidence-access-outside-api", "evidence-access-weekly-api",
                  "quality-api-agreement", "calibration-api", "quality-api-disagreement-list", "transparency-api",
                  "retention-api"]


def _decision_form(world) -> dict:
    return {"clauses": [world.ids["clause"]], "action": "warn", "rationale": "Matrix.", "facts_for_holder": "Facts."}


def _decision_json(world) -> dict:
    return {"clauses": [world.strings["clause_ref"]], "action": "warn", "rationale": "Matrix.",
            "facts_for_holder": "Facts."}


def _note(world) -> dict:
    return {"text": "Seen the same template on another account."}


def _outcome(world) -> dict:
    return {"outcome": "upheld", "reason": "The decision stands."}


def _message(world) -> dict:
    return {"text": "Please send the harness's published description."}


TABLE: list[Row] = [
    # people: sign-in, one's own password and API tokens, staff management (admin)
    page("core:home", get={STAFF: OK}),
    public("people:login", get={EVERYONE: OK, STAFF: HOME}, post={EVERYONE: OK, STAFF: HOME}),
    public("people:logout", get={EVERYONE: NOT_ALLOWED}, post={EVERYONE: LOGIN, STAFF: SIGNED_OUT}),
    page("people:password-change", get={STAFF: OK}, post={STAFF: DO}),
    page("people:staff", get={PEOPLE_READERS: OK}),
    *_all_of(["people:staff-create", "people:staff-role", "people:staff-active", "people:staff-password",
              "people:staff-unlock"], lambda name: page(name, post={ADMIN: DO})),
    page("people:api-tokens", get={STAFF: OK}),
    page("people:api-token-create", post={STAFF: DO}),
    # The reviewer's own token; nobody else may know it exists.
    page("people:api-token-revoke", objects={"pk": "api_token"}, post={STAFF: NOT_FOUND, REVIEWER: DO}),
    page("audit:events", get={COMPLIANCE: OK}),
    page("audit:event", get={COMPLIANCE: OK}),
    # review: queues, claims, the case workspace, decisions and second approval
    page("review:queues", get={CASE_READERS: OK}),
    page("review:queue", get={CASE_READERS: OK}),
    page("review:claim-next", post={CLAIMERS: DO}),
    page("review:case-claim", objects={"pk": "case_open"}, post={CLAIMERS: DO}),
    page("review:case-claim", variant="claimed by another", objects={"pk": "case_other"},
         post={CLAIMERS: REFUSED_TO_CASE}),
    page("review:case-release", post={CLAIMERS: DO}),
    page("review:case-release", variant="claimed by another", objects={"pk": "case_other"},
         post={CLAIMERS: REFUSED_TO_CASE}),
    page("review:approvals", get={SENIOR: OK}),
    page("review:campaign", get={CASE_READERS: OK}),
    page("review:campaign-decide", post={CLAIMERS: DO}),
    page("review:statement", get={RECORD_READERS: OK}),
    page("review:statement-dsa", get={RECORD_READERS: OK}),
    # Case summaries are every case reader's; the evidence is the assignee's (a guardian object permission),
    # a senior's while approving, and compliance's (global).
    page("review:case", get={CASE_READERS: OK}),
    page("review:case", variant="claimed by another", objects={"pk": "case_other"}, get={CASE_READERS: OK}),
    page("review:case-evidence", post={CASE_READERS: NOT_FOUND, REVIEWER: DO, COMPLIANCE: DO}),
    page("review:case-evidence", variant="claimed by another", objects={"pk": "case_other"},
         post={CASE_READERS: NOT_FOUND, COMPLIANCE: DO}),
    page("review:case-evidence", variant="awaiting approval", objects={"pk": "case_awaiting"},
         post={CASE_READERS: NOT_FOUND, SENIOR: DO, COMPLIANCE: DO}),
    page("review:case-note", post={CLAIMERS: DO}),
    page("review:case-note", variant="claimed by another", objects={"pk": "case_other"}, body=_note,
         post={CLAIMERS: DO}),
    page("review:case-decide", post={CLAIMERS: DO}),
    page("review:case-decide", variant="claimed by another", objects={"pk": "case_other"}, body=_decision_form,
         post={CLAIMERS: FORBIDDEN}),
    page("review:decision-approve", objects={"pk": "decision_awaiting"}, post={SENIOR: DO}),
    page("review:decision-send-back", objects={"pk": "decision_awaiting"}, post={SENIOR: DO}),
    *_all_of(["policy:current", "policy:history", "policy:diff", "policy:version"],
             lambda name: page(name, get={STAFF: OK})),
    page("outbox:messages", get={PEOPLE_READERS: OK}),
    # the holder's portal: holder A's statement, decision, appeal and attachment; B may not know they exist
    public("appeals:start", get={EVERYONE: OK}, post={EVERYONE: OK}),
    public("appeals:sign-in", get={EVERYONE: OK}, post={EVERYONE: PORTAL}),  # a link that is nobody's
    public("appeals:sign-out", get={EVERYONE: NOT_ALLOWED}, post={EVERYONE: PORTAL}),
    portal("appeals:home", get={HOLDERS: OK}),
    portal("appeals:statement", get={HOLDER: OK, OTHER_HOLDER: NOT_FOUND}),
    portal("appeals:appeal-file", get={HOLDER: OK, OTHER_HOLDER: NOT_FOUND},
           post={HOLDER: DO, OTHER_HOLDER: NOT_FOUND}),
    portal("appeals:appeal", get={HOLDER: OK, OTHER_HOLDER: NOT_FOUND}),
    portal("appeals:appeal-filed", get={HOLDER: OK, OTHER_HOLDER: NOT_FOUND}),
    portal("appeals:appeal-message", get={EVERYONE: NOT_ALLOWED}, post={HOLDER: DO, OTHER_HOLDER: NOT_FOUND}),
    portal("appeals:attachment", get={HOLDER: OK, OTHER_HOLDER: NOT_FOUND}),
    portal("appeals:statement", variant="B's own", objects={"pk": "statement_b"},
           get={HOLDER: NOT_FOUND, OTHER_HOLDER: OK}),
    portal("appeals:appeal-file", variant="B's own", objects={"pk": "decision_b"},
           get={HOLDER: NOT_FOUND, OTHER_HOLDER: OK}),
    portal("appeals:appeal", variant="B's own", objects={"pk": "appeal_b"}, get={HOLDER: NOT_FOUND, OTHER_HOLDER: OK}),
    portal("appeals:attachment", variant="B's own", objects={"pk": "attachment_b"},
           get={HOLDER: NOT_FOUND, OTHER_HOLDER: OK}),
    # appeal review: senior reviewers act (appeal A is the senior's own claim); compliance reads
    page("appeal-review:queue", get={APPEAL_READERS: OK}),
    page("appeal-review:appeal", get={APPEAL_READERS: OK}),
    page("appeal-review:appeal", variant="claimed by another", objects={"pk": "appeal_b"}, get={APPEAL_READERS: OK}),
    page("appeal-review:rates", get={APPEAL_READERS: OK}),
    page("appeal-review:claim", get={APPEAL_READERS: NOT_ALLOWED}, post={SENIOR: DO}),
    page("appeal-review:message", get={APPEAL_READERS: NOT_ALLOWED}, body=_message, post={SENIOR: DO}),
    page("appeal-review:message", variant="claimed by another", objects={"pk": "appeal_b"}, body=_message,
         get={APPEAL_READERS: NOT_ALLOWED}, post={SENIOR: FORBIDDEN}),
    page("appeal-review:outcome", get={APPEAL_READERS: NOT_ALLOWED}, body=_outcome, post={SENIOR: DO}),
    page("appeal-review:outcome", variant="claimed by another", objects={"pk": "appeal_b"}, body=_outcome,
         get={APPEAL_READERS: NOT_ALLOWED}, post={SENIOR: FORBIDDEN}),
    page("appeal-review:attachment", objects={"pk": "appeal_a", "attachment_pk": "attachment_a"},
         get={APPEAL_READERS: NOT_ALLOWED}, post={SENIOR: DO, COMPLIANCE: DO}),
    page("appeal-review:attachment", variant="another appeal's", objects={"pk": "appeal_a",
                                                                           "attachment_pk": "attachment_b"},
         get={APPEAL_READERS: NOT_ALLOWED}, post={SENIOR: NOT_FOUND, COMPLIANCE: NOT_FOUND}),
    page("appeal-review:evidence", get={APPEAL_READERS: NOT_ALLOWED}, post={SENIOR: DO}),
    public("healthz", get={EVERYONE: HEALTH}),
    public("metrics", get={EVERYONE: OK}),  # loopback (the test client's address) or METRICS_TOKEN
    # the flags API: a detector's bearer token and nothing else
    _row(API, "flags-ingest", get={EVERYONE: UNAUTHORIZED, DETECTOR: NOT_ALLOWED},
         post={EVERYONE: UNAUTHORIZED, DETECTOR: DO}),
    # the cases API (DRF: the method is checked before the role)
    api("case-list", get={CASE_READERS: OK}),
    api("case-detail", get={CASE_READERS: OK}),
    api("case-claim", objects={"pk": "case_open"}, get={STAFF: NOT_ALLOWED}, post={CLAIMERS: DO}),
    api("case-release", get={STAFF: NOT_ALLOWED}, post={CLAIMERS: DO}),
    api("case-release", variant="claimed by another", objects={"pk": "case_other"}, get={STAFF: NOT_ALLOWED},
        post={CLAIMERS: CONFLICT}),
    api("case-decisions", get={STAFF: NOT_ALLOWED}, post={CLAIMERS: DO}),
    api("case-decisions", variant="claimed by another", objects={"pk": "case_other"}, body=_decision_json,
        get={STAFF: NOT_ALLOWED}, post={CLAIMERS: FORBIDDEN}),
    api("case-approve", objects={"pk": "case_awaiting"}, get={STAFF: NOT_ALLOWED}, post={SENIOR: DO}),
    api("case-send-back", objects={"pk": "case_awaiting"}, get={STAFF: NOT_ALLOWED}, post={SENIOR: DO}),
    api("queue-claim-next", get={STAFF: NOT_ALLOWED}, post={CLAIMERS: DO}),
    api("staff-appeal-list", get={APPEAL_READERS: OK}),
    api("staff-appeal-detail", get={APPEAL_READERS: OK}),
    api("staff-appeal-claim", get={APPEAL_READERS: NOT_ALLOWED}, post={SENIOR: DO}),
    api("staff-appeal-messages", get={APPEAL_READERS: NOT_ALLOWED}, post={SENIOR: DO}),
    api("staff-appeal-outcome", get={APPEAL_READERS: NOT_ALLOWED}, post={SENIOR: DO}),
    api("staff-appeal-outcome", variant="claimed by another", objects={"pk": "appeal_b"}, body=_outcome,
        get={APPEAL_READERS: NOT_ALLOWED}, post={SENIOR: FORBIDDEN}),
    # the holder API: the portal's session
    holder_api("holder_api:decisions", get={HOLDERS: OK}),
    holder_api("holder_api:appeals", get={HOLDERS: OK}, post={HOLDERS: DO}),
    holder_api("holder_api:appeal", get={HOLDER: OK, OTHER_HOLDER: NOT_FOUND}),
    holder_api("holder_api:appeal", variant="B's own", objects={"pk": "appeal_b"},
               get={HOLDER: NOT_FOUND, OTHER_HOLDER: OK}),
    holder_api("holder_api:appeal-messages", post={HOLDER: DO, OTHER_HOLDER: NOT_FOUND}),
    # detectors and their tokens (admin; compliance reads)
    page("detectors:list", get={PEOPLE_READERS: OK}),
    *_all_of(["detectors:create", "detectors:active", "detectors:token-create", "detectors:token-revoke",
              "detectors:token-rotate"], lambda name: page(name, post={ADMIN: DO})),
    # the Forum's pages answer 404 ("no such page") to a role that has no part in sharing; a share is known to
    # its proposer, the sharing officers and compliance, and to no other reviewer
    forum_page("forum:shares", get={SHARE_READERS: OK}),
    forum_page("forum:share", get={REVIEWER: OK, SHARING: OK, COMPLIANCE: OK}),
    *_all_of(["forum:approve", "forum:reject", "forum:narrow", "forum:include", "forum:withdraw"],
             lambda name: forum_page(name, get={STAFF: NOT_ALLOWED},
                                     post={REVIEWER: FORBIDDEN, COMPLIANCE: FORBIDDEN, SHARING: DO})),
    forum_page("forum:propose", objects={"kind": "case", "pk": "case_a"}, get={CLAIMERS: OK}, post={CLAIMERS: DO}),
    forum_page("forum:register", get={SHARING: OK, COMPLIANCE: OK}),
    forum_page("forum:inbound", get={INBOUND_READERS: OK}),  # feedback: sharing officers only
    forum_page("forum:feedback", objects={"pk": "missing"}, get={STAFF: NOT_ALLOWED}, post={SHARING: NOT_FOUND}),
    forum_page("forum:pushes", get={SHARING: OK, COMPLIANCE: OK}),
    forum_page("forum:withdrawals", get={SHARING: OK, COMPLIANCE: OK}),
    forum_page("forum:matches", get={INBOUND_READERS: OK}),
    page("forum:rereviews", get={SENIOR: OK, COMPLIANCE: OK}),  # marking one done: seniors only
    page("forum:rereview-done", objects={"pk": "missing"}, get={STAFF: NOT_ALLOWED}, post={SENIOR: NOT_FOUND}),
    public("forum:extensions", get={EVERYONE: OK}),  # the STIX extension definitions peers resolve
    # An admin has no part in sharing: refused the whole viewset, whatever the method (it was answered an
    # empty list, and 404 for each proposal).
    api("forum-proposal-list", get={SHARE_READERS: OK}, post={CLAIMERS: DO}),
    api("forum-proposal-detail", get={REVIEWER: OK, SHARING: OK, COMPLIANCE: OK, SENIOR: NOT_FOUND}),
    api("forum-proposal-preview", get={REVIEWER: OK, SHARING: OK, COMPLIANCE: OK, SENIOR: NOT_FOUND}),
    *_all_of(["forum-proposal-approve", "forum-proposal-include-researcher", "forum-proposal-narrow",
              "forum-proposal-reject", "forum-proposal-withdraw"],
             lambda name: api(name, get={STAFF: NOT_ALLOWED, ADMIN: FORBIDDEN}, post={SHARING: DO})),
    api("forum-register-list", get={SHARING: OK, COMPLIANCE: OK}),
    api("forum-inbound-list", get={INBOUND_READERS: OK}),
    api("forum-inbound-detail", objects={"pk": "missing"}, get={INBOUND_READERS: NOT_FOUND}),
    api("forum-inbound-feedback", objects={"pk": "missing"}, get={SHARING: NOT_ALLOWED}, post={SHARING: NOT_FOUND}),
    api("forum-match-list", get={INBOUND_READERS: OK}),
    api("forum-match-detail", objects={"pk": "missing"}, get={INBOUND_READERS: NOT_FOUND}),
    api("forum-rereview-list", get={SENIOR: OK, COMPLIANCE: OK}),
    api("forum-rereview-done", objects={"pk": "missing"}, get={SENIOR: NOT_ALLOWED}, post={SENIOR: NOT_FOUND}),
    # the compliance console: compliance officers; seniors give the blind second looks
    *_all_of([f"compliance:{name}" for name in COMPLIANCE_PAGES], lambda name: page(name, get={COMPLIANCE: OK})),
    page("compliance:audit-event", objects={"pk": "audit"}, get={COMPLIANCE: OK}),
    page("compliance:verify", get={COMPLIANCE: OK}, post={COMPLIANCE: DO}),
    page("compliance:verification", objects={"pk": "verification"}, get={COMPLIANCE: OK}),
    page("compliance:quality-draw", get={COMPLIANCE: OK}, post={COMPLIANCE: DO}),
    page("compliance:quality-sample", objects={"pk": "sample"}, get={COMPLIANCE: OK}),
    page("compliance:quality-reviews", get={SENIOR: OK}),
    page("compliance:quality-review", objects={"pk": "second_look"}, get={SENIOR: OK}, post={SENIOR: DO}),
    page("compliance:quality-review-evidence", objects={"pk": "second_look"}, post={SENIOR: DO}),
    # Another senior gives the second look of a decision this one took part in.
    page("compliance:quality-review", variant="took part", objects={"pk": "second_look_taken_part"},
         get={SENIOR: FORBIDDEN}, post={SENIOR: FORBIDDEN}),
    page("compliance:quality-review-evidence", variant="took part", objects={"pk": "second_look_taken_part"},
         post={SENIOR: FORBIDDEN}),
    page("compliance:export-download", get={COMPLIANCE: BAD_REQUEST}),  # no dataset chosen: the form again
    *_all_of([f"compliance:export-{name}" for name in EXPORT_FILES], lambda name: page(name, get={COMPLIANCE: OK})),
    *_all_of([f"compliance:transparency-csv-{name}" for name in TRANSPARENCY_FILES],
             lambda name: page(name, get={COMPLIANCE: OK})),
    *_all_of(COMPLIANCE_API, lambda name: api(name, get={COMPLIANCE: OK})),
    api("quality-api-sample-list", get={COMPLIANCE: OK}, post={COMPLIANCE: DO}),
    api("quality-api-sample-detail", objects={"pk": "sample"}, get={COMPLIANCE: OK}),
    api("quality-api-second-look-list", get={SENIOR: OK}),
    api("quality-api-second-look-detail", objects={"pk": "second_look"}, get={SENIOR: OK}),
    api("quality-api-second-look-detail", variant="took part", objects={"pk": "second_look_taken_part"},
        get={SENIOR: FORBIDDEN}),
    api("quality-api-second-look-verdict", objects={"pk": "second_look"}, get={SENIOR: NOT_ALLOWED},
        post={SENIOR: DO}),
    export_api("exports-api", get={COMPLIANCE: OK}),
    *_all_of([f"export-api-{name}" for name in EXPORT_FILES], lambda name: export_api(name, get={COMPLIANCE: OK})),
    public("api-schema", get={EVERYONE: OK}),
    public("api-docs", get={EVERYONE: OK}),
]


# ── the seeded world ───────────────────────────────────────────────────────────────────────────────────────────

@dataclass
class World:
    ids: dict[str, int]  # object name → pk
    strings: dict[str, str]
    credentials: dict[str, dict] = field(default_factory=dict)  # principal → cookies and headers


def _seed() -> World:
    """Everything the rows name, made with the real services (tests/appeals/conftest.py's holders)."""
    from django.conf import settings

    from flags.models import Flag
    from flags.services import detector_ensure, detector_token_create
    from reviewapp.audit.services import SYSTEM
    from reviewapp.cases.models import Campaign, Case
    from reviewapp.cases.services.claims import case_claim
    from reviewapp.cases.services.decisions import decision_record
    from reviewapp.compliance.quality.models import SecondLook
    from reviewapp.compliance.quality.services import sample_draw
    from reviewapp.compliance.verification.services import verification_start
    from reviewapp.forum import services as forum
    from reviewapp.forum.content import ShareChoice
    from reviewapp.people.services import issue_api_token, staff_create
    from reviewapp.policy.selectors import clauses_in_force
    from reviewapp.policy.services import policies_load

    django_cache.clear()  # rate limits start afresh
    policies_load(directory=settings.POLICIES_DIR, actor=SYSTEM)
    clauses = list(clauses_in_force())
    plain = next(c for c in clauses if not c.requires_second_approval and "suspend" in c.permitted_actions)
    severe = next(c for c in clauses if c.requires_second_approval and "suspend" in c.permitted_actions)
    detector = detector_ensure(actor=SYSTEM, slug="template-miner", name="Template miner", owner_team="T&S")
    _token_row, detector_secret = detector_token_create(actor=SYSTEM, detector=detector)

    def staff(role: Role, username: str):
        return staff_create(actor=SYSTEM, username=username, role=role, password="correct horse battery")[0]

    counter = iter(range(100))

    def make_staff(role: Role = Role.REVIEWER, username: str | None = None, password: str = ""):
        return staff(role, username or f"mx-decider-{next(counter)}")

    people = {REVIEWER: staff(Role.REVIEWER, "mx-rita"), SENIOR: staff(Role.SENIOR_REVIEWER, "mx-sam"),
              SHARING: staff(Role.SHARING_OFFICER, "mx-shay"), COMPLIANCE: staff(Role.COMPLIANCE_OFFICER, "mx-cora"),
              ADMIN: staff(Role.ADMIN, "mx-ada")}
    rex, sol = staff(Role.REVIEWER, "mx-rex"), staff(Role.SENIOR_REVIEWER, "mx-sol")

    a = enforced_decision(detector, make_staff, plain, account_id="acct_mx_a", email="a@example.org")
    b = enforced_decision(detector, make_staff, plain, account_id="acct_mx_b", email="b@example.org",
                          action="warn", duration_days=None)
    appeal_a = appeal_file(account=a.account, decision=a.decision, grounds="A's grounds.",
                           uploads=[Upload(name="a.pdf", content_type="application/pdf", data=PDF)])
    appeal_b = appeal_file(account=b.account, decision=b.decision, grounds="B's grounds.",
                           uploads=[Upload(name="b.pdf", content_type="application/pdf", data=PDF)])
    appeal_claim(reviewer=people[SENIOR], appeal=appeal_a)
    appeal_claim(reviewer=sol, appeal=appeal_b)

    mine = FlaggedCaseFactory(detector=detector, account_id="acct_mx_mine", flag={
        "evidence": {"excerpts": ["Solve: {x}"]}, "cluster_id": "c-mx"})
    case_claim(reviewer=people[REVIEWER], case=mine)
    other = FlaggedCaseFactory(detector=detector, account_id="acct_mx_other", flag={"cluster_id": "c-mx"})
    case_claim(reviewer=rex, case=other)
    unclaimed = FlaggedCaseFactory(detector=detector, account_id="acct_mx_open")
    awaiting_case = FlaggedCaseFactory(detector=detector, account_id="acct_mx_awaiting")
    case_claim(reviewer=rex, case=awaiting_case)
    awaiting = decision_record(reviewer=rex, case=Case.objects.get(pk=awaiting_case.pk), clauses=[severe],
                               action="suspend", duration_days=30, rationale="A rival model.",
                               facts_for_holder="Templated prompts.")
    share = forum.share_propose(proposer=people[REVIEWER], source=a.decision.case,
                                collection_id=next(iter(settings.FORUM_COLLECTIONS)), choice=ShareChoice())
    run = verification_start(officer=people[COMPLIANCE])
    sample = sample_draw(actor=people[COMPLIANCE], per_stratum=5, strata="clause", seed=1)
    # The senior took part in A's decision (they review its appeal), in none of B's.
    looks = {look.decision_id: look.pk for look in SecondLook.objects.filter(sample=sample)}
    assert {a.decision.pk, b.decision.pk} <= set(looks), looks
    _row, staff_secret = issue_api_token(actor=people[REVIEWER], user=people[REVIEWER], name="matrix")
    version = plain.version
    ids = {
        "case_mine": mine.pk, "case_other": other.pk, "case_open": unclaimed.pk, "case_awaiting": awaiting_case.pk,
        "case_a": a.decision.case_id,
        "decision_a": a.decision.pk, "decision_awaiting": awaiting.pk,
        "statement_a": a.statement.pk, "statement_b": b.statement.pk, "decision_b": b.decision.pk,
        "appeal_a": appeal_a.pk, "appeal_b": appeal_b.pk,
        "attachment_a": appeal_a.attachments.get().pk, "attachment_b": appeal_b.attachments.get().pk,
        "share": share.pk, "campaign": Campaign.objects.values_list("pk", flat=True).first(),
        "flag": Flag.objects.values_list("pk", flat=True).first(), "detector": detector.pk,
        "token": _token_row.pk, "user": rex.pk, "audit": AuditEvent.objects.values_list("pk", flat=True).first(),
        "version": version.number, "verification": run.pk, "sample": sample.pk,
        "second_look": looks[b.decision.pk], "second_look_taken_part": looks[a.decision.pk], "api_token": _row.pk,
        "missing": MISSING,
    }
    ids["clause"] = plain.pk
    strings = {"queue": unclaimed.queue, "slug": version.policy.slug, "clause_ref": plain.ref,
               # A sign-in link that is nobody's (a real one is the holder's own credential, used up on sign-in).
               "token": signing.dumps("not-a-real-link-secret", salt="not-the-link-salt")}
    world = World(ids=ids, strings=strings)
    for principal, user in people.items():
        client = Client()
        client.force_login(user)
        world.credentials[principal] = {"cookies": {"sessionid": client.cookies["sessionid"].value}}
    for principal, holder in ((HOLDER, a), (OTHER_HOLDER, b)):
        client = Client()
        assert client.post(sign_in_path(holder.account)).status_code == 302
        world.credentials[principal] = {"cookies": {"sessionid": client.cookies["sessionid"].value}}
    world.credentials[ANONYMOUS] = {"cookies": {}}
    world.credentials[DETECTOR] = {"cookies": {}, "headers": {"HTTP_AUTHORIZATION": f"Bearer {detector_secret}"}}
    world.credentials[STAFF_TOKEN] = {"cookies": {}, "headers": {"HTTP_AUTHORIZATION": f"Token {staff_secret}"}}
    return world



@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    """One seeded world for the module, in a transaction rolled back at its end; each test runs in a savepoint
    of it (pytest-django's ``django_db`` mark), so a write one test lets through is gone before the next."""
    attachments = tmp_path_factory.mktemp("matrix-attachments")
    with (django_db_blocker.unblock(), override_settings(APPEAL_ATTACHMENTS_DIR=attachments),
          transaction.atomic()):
        yield _seed()
        transaction.set_rollback(True)


def client_for(world: World, principal: str) -> tuple[Client, dict]:
    """A client carrying only the principal's credential, with a valid CSRF token (CSRF is not what refuses)."""
    client = Client(enforce_csrf_checks=True)
    credentials = world.credentials[principal]
    for name, value in credentials["cookies"].items():
        client.cookies[name] = value
    csrf = _get_new_csrf_string()
    client.cookies["csrftoken"] = csrf
    return client, {"HTTP_X_CSRFTOKEN": csrf, **credentials.get("headers", {})}


# The seeded object a parameter names when the row does not say, by the kind tests/support_routes.py reads
# from the route.
DEFAULT_OBJECT = {"case": "case_mine", "decision": "decision_a", "statement": "statement_a", "appeal": "appeal_a",
                  "attachment": "attachment_a", "share": "share", "campaign": "campaign", "flag": "flag",
                  "detector": "detector", "token": "token", "user": "user", "audit": "audit",
                  "version": "version"}


@cache
def routes() -> dict[str, Route]:
    return {route.name: route for route in walk()}


def path_of(row: Row, world: World) -> str:
    route = routes().get(row.name)
    assert route is not None, f"{row.id}: no such route in the URL conf (a row for a route that is gone)"
    values = {}
    for name, kind in params(route.text):
        chosen = row.objects.get(name)
        if chosen is None and kind == "str":
            assert name in world.strings, f"{row.id}: nothing seeded for the text parameter {name!r}"
            values[name] = world.strings[name]
            continue
        chosen = chosen or DEFAULT_OBJECT.get(id_kind(route.text, name) or "")
        assert chosen, f"{row.id}: the row must name the object its parameter {name!r} is tried with"
        values[name] = world.ids.get(chosen, chosen)
    path = path_for(route, values)
    assert path, f"{row.id}: {values} does not resolve back to {route.text}"
    return path


def answer(response) -> str:
    """The status, and for a redirect where it sends (its URL name)."""
    if response.status_code in (301, 302, 303):
        location = response.get("Location", "")
        try:
            return f"{response.status_code}:{resolve(location.split('?', 1)[0]).view_name}"
        except Resolver404:
            return f"{response.status_code}:{location}"
    return str(response.status_code)


def _bare(expectation: str) -> str:
    return expectation.split(" (", 1)[0]  # an answer's note, after the code, says why


def _refusal(expectation: str) -> bool:
    return expectation in REFUSALS or "(refused" in expectation


def audit_tail():
    return AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first()


# ── the tests ───────────────────────────────────────────────────────────────────────────────────────────────────

def _cells() -> list:
    cells = []
    for row in TABLE:
        for method in ("GET", *(m for m in row.methods if m != "GET")):
            for principal in PRINCIPALS:
                cells.append(pytest.param(row, method, principal, id=f"{row.id}-{method}-{principal}"))
    return cells


def test_every_route_has_a_row():
    """A route of the URL conf, or an operation of the OpenAPI schema, that the table does not answer for."""
    rows: dict[str, set[str]] = {}
    for row in TABLE:
        rows.setdefault(row.name, set()).update(row.methods)
    walked = list(walk())
    missing = [f"{route.name or '(unnamed)'}: {route.text}" for route in walked if route.name not in rows]
    gone = sorted(set(rows) - {route.name for route in walked})
    operations, _components = schema_operations()
    assert len(operations) > 40, "the schema lists few operations: the generator is not reading the API"
    unlisted = []
    for template, method, _operation in operations:
        path = re.sub(r"{(\w+)}", lambda m: "x" if m[1] in STRING_PARAMETERS else "1", template)
        name = resolve(path).view_name
        if method.upper() not in rows.get(name, set()):
            unlisted.append(f"{method.upper()} {template} ({name})")
    duplicates = sorted({row.id for row in TABLE if [r.id for r in TABLE].count(row.id) > 1})
    assert not missing, "routes without a row in TABLE (say who may use them):\n" + "\n".join(missing)
    assert not unlisted, "schema operations whose route's row does not list the method:\n" + "\n".join(unlisted)
    assert not gone, f"rows for routes that no longer exist: {gone}"
    assert not duplicates, f"rows given twice (name a variant): {duplicates}"


@pytest.mark.parametrize(("row", "method", "principal"), _cells())
def test_answer(world, row: Row, method: str, principal: str):
    want = expected(row, method, principal)
    client, headers = client_for(world, principal)
    path = path_of(row, world)
    if method == "GET":
        got = answer(client.get(path, **headers))
        if want == HEALTH:
            assert got in ("200", "503"), f"GET {path} as {principal}: {got}, the table says {want}"
            return
        assert got == _bare(want), f"GET {path} as {principal}: {got}, the table says {want}"
        return
    body = row.body(world) if row.body else {}
    tail = audit_tail()
    if row.area in (API, EXPORT_API, HOLDER_API):
        response = client.generic(method, path, json.dumps(body), content_type="application/json", **headers)
    else:
        response = client.generic(method, path, urlencode({**body, "csrfmiddlewaretoken": headers["HTTP_X_CSRFTOKEN"]},
                                                          doseq=True),
                                  content_type="application/x-www-form-urlencoded", **headers)
    got = answer(response)
    where = f"{method} {path} as {principal}"
    if want == DO:
        assert got not in REFUSALS and response.status_code < 500, f"{where}: refused ({got}), the table allows it"
        return
    assert got == _bare(want), f"{where}: {got}, the table says {want}"
    if _refusal(want):
        assert audit_tail() == tail, f"{where}: refused ({got}) but the audit trail moved: something changed"


# Methods the table gives no route: no route may serve them to anyone. Django's views and DRF's viewsets answer
# an unlisted method 405 once login and permission let a request that far, so a principal must be refused
# (401/403/404/405 or a sign-in redirect), never served or answered 5xx, and nothing may change. Tried as
# anonymous and as each principal the row lets through on some method (the others are refused before the method
# is looked at, which test_answer already shows): a form view that took PUT for POST, or served a PUT the page,
# fails here (the sign-in and password forms, the portal's pages and six staff pages did until they were fixed).
UNLISTED_METHODS = ("PUT", "PATCH", "DELETE")


def _unlisted_cells() -> list:
    return [pytest.param(row, id=row.id) for row in TABLE
            if any(method not in row.methods for method in UNLISTED_METHODS)]


@pytest.mark.parametrize("row", _unlisted_cells())
def test_methods_the_table_does_not_list_are_refused_to_everyone(world, row: Row):
    path = path_of(row, world)
    let_through = [p for p in PRINCIPALS if any(not _refusal(expected(row, m, p)) for m in row.methods)]
    for principal in dict.fromkeys([ANONYMOUS, *let_through]):
        client, headers = client_for(world, principal)
        for method in (m for m in UNLISTED_METHODS if m not in row.methods):
            tail = audit_tail()
            response = client.generic(method, path, "{}", content_type="application/json", **headers)
            got = answer(response)
            where = f"{method} {path} as {principal}"
            # A page that sends a principal away before looking at the method (the sign-in form, signed in) may
            # send them where its GET does: nothing served, nothing done.
            sent_away_as_by_get = got.startswith("302:") and got == _bare(expected(row, "GET", principal))
            assert got in REFUSALS or sent_away_as_by_get, (
                f"{where}: {got}; the table lists no {method} for {row.id}: add it or refuse it")
            assert audit_tail() == tail, f"{where}: refused ({got}) but the audit trail moved: something changed"


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_no_credential_of_the_app_opens_the_metrics_from_outside(world, principal, settings):
    """/metrics answers loopback, or a scrape carrying METRICS_TOKEN (tests/core/test_metrics.py): from another
    address no session, portal sign-in, detector token or staff API token opens it, with or without a token set."""
    client, headers = client_for(world, principal)
    for token in ("", "a-scrape-token-nobody-here-holds"):
        settings.METRICS_TOKEN = token
        response = client.get("/metrics", REMOTE_ADDR="203.0.113.9", **headers)
        assert response.status_code == 403, f"/metrics from 203.0.113.9 as {principal} (token set: {bool(token)})"
