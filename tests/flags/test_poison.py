"""Issue 8: what the pipeline cannot hold is refused at intake, naming the field and the bound; a stored row that
still cannot be grouped is set aside (audited, shown to staff) while everything else keeps flowing; evidence of any
depth renders."""

import json

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse

from flags.demo import demo_campaign_ensure
from flags.grouping import flags_group, oldest_pending_age_seconds, pending_count
from flags.models import Flag, FlagBatch, FlagSetAside
from flags.schema import MAX_EVIDENCE_BYTES
from flags.services import flags_ingest
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM, Actor
from reviewapp.cases.models import Case
from reviewapp.people.roles import Role
from reviewapp.policy.services import policies_load
from tests.conftest import flag_payload

pytestmark = pytest.mark.django_db
URL = "/api/v1/flags/"
FAR_FUTURE = "9999-12-31T23:59:59-23:59"  # after year 9999 once the offset is applied
# The same instant as stored: PostgreSQL's text input refuses that offset, the binary COPY of ingestion did not.
FAR_FUTURE_STORED = ("9999-12-31T23:59:59Z", "23 hours 59 minutes")
HUGE = 4611686018427387904  # 2**62: two of them overflow a bigint sum


def post(client, token, body):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")


def nested(depth: int) -> str:
    """A JSON object nested ``depth`` levels deep (``{}`` is one level)."""
    return '{"a": ' * (depth - 1) + '{"leaf": 1}' + "}" * (depth - 1)


def with_evidence_text(n, text: str) -> bytes:
    body = json.dumps(flag_payload(n))
    return (body[:-1] + f', "evidence": {text}' + "}").encode()


def ingest(detector, *flags):
    return flags_ingest(items=[(i, json.dumps(f).encode()) for i, f in enumerate(flags)], detector=detector,
                        actor=SYSTEM)


def store_unchecked(detector, n, *, observed_to=("2026-11-21T00:00:00Z", "0"), request_count=10,
                    evidence_json=None, account_id=None):
    """A flag stored as intake let it through before its bounds existed (straight into the table)."""
    batch = FlagBatch.objects.create(detector=detector, source=FlagBatch.Source.FILE)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO flags_flag (detector_id, external_id, schema_version, detector_version, account_external_id,
                organization_id, signal, score, observed_from, observed_to, request_count, cluster_id, evidence,
                content_hash, batch_id, received_at)
            VALUES (%s, %s, 1, '1', %s, '', 'templated_prompts', 0.5, '2026-11-20T00:00:00Z',
                    %s::timestamptz + %s::interval, %s, '', %s::jsonb, '', %s, now())
            RETURNING id
            """,
            [detector.pk, f"old-{n}", account_id or f"acct_old_{n}", *observed_to, request_count, evidence_json,
             batch.pk],
        )
        return cursor.fetchone()[0]


def group_all():
    total = 0
    while (run := flags_group(limit=100)).taken:
        total += run.flags
    return total


# --- Intake: refused with the field and the bound ---------------------------------------------------

@pytest.mark.parametrize(("override", "field", "bound"), [
    ({"observed_to": FAR_FUTURE}, "observed_to", "2100-01-01T00:00:00Z"),
    ({"observed_from": "1999-12-31T23:59:59Z"}, "observed_from", "2000-01-01T00:00:00Z"),
    ({"observed_from": "2100-01-01T00:30:00+01:00", "observed_to": "2100-01-01T02:00:00+01:00"}, "observed_to",
     "2100-01-01T00:00:00Z"),
    ({"request_count": HUGE}, "request_count", "1000000000000"),
    ({"request_count": 10**12 + 1}, "request_count", "1000000000000"),
])
def test_intake_refuses_what_the_pipeline_cannot_hold(client, detector_token, override, field, bound):
    response = post(client, detector_token, {"flags": [flag_payload(1), flag_payload(2, **override)]})
    assert response.status_code == 201
    body = response.json()
    assert body["created"] == 1
    [rejected] = body["rejected"]
    assert rejected["index"] == 1 and field in rejected["errors"]
    assert bound in " ".join(rejected["errors"][field])


def test_intake_accepts_the_bounds_themselves(client, detector_token):
    response = post(client, detector_token, {"flags": [
        flag_payload(1, request_count=10**12),
        flag_payload(2, observed_from="2000-01-01T00:00:00Z", observed_to="2099-12-31T23:59:59Z"),
        # an offset that keeps it inside once applied
        flag_payload(3, observed_from="2000-01-01T05:00:00+05:00", observed_to="2000-01-02T00:00:00+05:00"),
    ]})
    assert response.json()["rejected"] == [] and response.json()["created"] == 3


def test_evidence_nested_deeper_than_the_bound_is_refused_by_name(client, detector_token):
    items = [with_evidence_text(1, nested(32)), with_evidence_text(2, nested(33)), with_evidence_text(3, nested(942)),
             with_evidence_text(4, nested(943))]
    body = b'{"flags": [' + b", ".join(items) + b"]}"
    response = post(client, detector_token, body)
    assert response.status_code == 201
    answer = response.json()
    assert answer["created"] == 1
    assert [r["index"] for r in answer["rejected"]] == [1, 2, 3]
    for rejected, depth in zip(answer["rejected"], (33, 942, 943), strict=True):
        assert rejected["errors"] == {"evidence": [f"is nested {depth} levels deep; the limit is 32 levels"]}


def test_evidence_with_many_brackets_but_within_the_bound_is_accepted(client, detector_token):
    # More brackets than the bound has levels (so the depth is scanned, not skipped), but wide, not deep; the
    # strings' brackets are text, and a string full of openers alone is no nesting either.
    wide = "{" + ", ".join(f'"k{i}": [[1], {{"x": [2]}}]' for i in range(40)) + ', "s": "' + "[{" * 50 + '"}'
    deep_in_text = '{"excerpts": ["' + "{[" * 100 + '"]}'
    body = b'{"flags": [' + with_evidence_text(1, wide) + b", " + with_evidence_text(2, deep_in_text) + b", " + \
        with_evidence_text(3, nested(33)) + b"]}"
    answer = post(client, detector_token, body).json()
    assert answer["created"] == 2
    assert [(r["index"], r["errors"]) for r in answer["rejected"]] == [
        (2, {"evidence": ["is nested 33 levels deep; the limit is 32 levels"]})]


def test_a_body_too_deep_for_the_decoder_is_still_answered_item_by_item(client, detector_token):
    body = b'{"flags": [' + with_evidence_text(1, nested(20_000)) + b", " + json.dumps(flag_payload(2)).encode() + b"]}"
    response = post(client, detector_token, body)
    assert response.status_code == 201
    assert response.json()["created"] == 1
    [rejected] = response.json()["rejected"]
    assert rejected["index"] == 0
    assert rejected["errors"] == {"evidence": ["is nested 20000 levels deep; the limit is 32 levels"]}
    single = post(client, detector_token, with_evidence_text(3, nested(20_000)))
    assert single.status_code == 200 and single.json()["rejected"][0]["errors"]["evidence"]


def test_evidence_larger_than_the_bound_is_refused_by_name(client, detector_token):
    response = post(client, detector_token, flag_payload(1, evidence={"blob": "x" * (MAX_EVIDENCE_BYTES + 1)}))
    [rejected] = response.json()["rejected"]
    assert str(MAX_EVIDENCE_BYTES) in rejected["errors"]["evidence"][0]


# --- Grouping: one row never stops it --------------------------------------------------------------

def test_a_poison_row_is_set_aside_with_an_audit_event_and_the_rest_are_grouped(detector):
    ingest(detector, *[flag_payload(n, account_id=f"acct_{n % 40}") for n in range(150)])
    poison = store_unchecked(detector, 1, observed_to=FAR_FUTURE_STORED)
    ingest(detector, *[flag_payload(n, account_id=f"acct_{n % 40}") for n in range(150, 300)])

    assert group_all() == 300
    assert pending_count() == 0 and oldest_pending_age_seconds() == 0.0
    assert list(Flag.objects.filter(case__isnull=True).values_list("pk", flat=True)) == [poison]
    aside = FlagSetAside.objects.get()
    assert aside.flag_id == poison and aside.detector == detector
    assert "year 10000" in aside.reason  # the instant after year 9999 that no datetime can hold
    event = AuditEvent.objects.get(action=AuditAction.FLAGS_SET_ASIDE)
    assert (event.target_type, event.target_id) == ("flags.flagsetaside", str(aside.pk))
    assert event.data["external_id"] == "old-1" and event.data["reason"] == aside.reason
    assert sum(Case.objects.values_list("flag_count", flat=True)) == 300
    assert group_all() == 0 and FlagSetAside.objects.count() == 1  # taken once, never again


def test_two_huge_request_counts_for_one_account_saturate_instead_of_stopping_grouping(detector):
    store_unchecked(detector, 1, request_count=HUGE, account_id="acct_big")
    store_unchecked(detector, 2, request_count=HUGE, account_id="acct_big")
    ingest(detector, flag_payload(3, account_id="acct_big"), flag_payload(4))
    assert group_all() == 4
    case = Case.objects.get(account__external_id="acct_big")
    assert case.flag_count == 3 and case.total_requests == 2**63 - 1
    assert not FlagSetAside.objects.exists()


def test_seed_demo_still_works_with_a_poison_row_present(detector):
    store_unchecked(detector, 1, observed_to=FAR_FUTURE_STORED)
    summary = demo_campaign_ensure(actor=Actor(type="system", id="seed_demo", display="seed_demo"))
    assert summary.flags > 0 and summary.cases > 0
    assert pending_count() == 0
    assert FlagSetAside.objects.values_list("flag__external_id", flat=True).get() == "old-1"


def test_staff_see_set_aside_flags_on_the_detectors_page(client, detector, make_staff):
    store_unchecked(detector, 7, observed_to=FAR_FUTURE_STORED)
    group_all()
    client.force_login(make_staff(Role.ADMIN))
    page = client.get(reverse("detectors:list")).content.decode()
    assert "1 flag of template-miner set aside" in page
    assert "old-7" in page and "year 10000" in page


# --- Evidence stored before the depth bound --------------------------------------------------------

def test_evidence_942_levels_deep_renders_on_the_page_and_in_the_api(client, detector, make_staff):
    policies_load(directory=settings.POLICIES_DIR, actor=SYSTEM)
    store_unchecked(detector, 1, evidence_json=nested(942), account_id="acct_deep")
    ingest(detector, flag_payload(2, account_id="acct_deep", evidence={"excerpts": ["Solve it step by step"],
                                                                      "template_share": {"value": 0.9}}))
    group_all()
    case = Case.objects.get(account__external_id="acct_deep")
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))

    api = client.get(f"/api/v1/cases/{case.pk}/")
    assert api.status_code == 200
    assert sorted(f["has_evidence"] for f in api.json()["flags"]) == [True, True]
    assert client.get(reverse("review:case", args=[case.pk])).status_code == 200
    page = client.post(reverse("review:case-evidence", args=[case.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "nested 942 levels deep" in text and "shown as JSON text" in text
    assert "Solve it step by step" in text and "template_share" in text
    event = AuditEvent.objects.get(action=AuditAction.EVIDENCE_OPENED)
    assert event.data["excerpts"] == 1 and len(event.data["flags"]) == 2
