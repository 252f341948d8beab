"""POST /api/v1/flags/: the flag contract, schema v1, rule by rule."""

import json

import pytest
from django.urls import reverse

from flags.models import Flag, FlagBatch
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.people.roles import Role
from tests.conftest import flag_payload

pytestmark = pytest.mark.django_db
URL = "/api/v1/flags/"


def post(client, token, body, content_type="application/json"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post(URL, data=data, content_type=content_type, **headers)


def test_url_is_the_documented_one():
    assert reverse("flags-ingest") == URL


def test_one_flag_is_created(client, detector_token):
    response = post(client, detector_token, flag_payload(1))
    assert response.status_code == 201
    body = response.json()
    assert (body["created"], body["duplicates"], body["rejected"], body["conflicts"]) == (1, 0, [], [])
    flag = Flag.objects.get()
    assert (flag.external_id, flag.account_external_id, flag.signal, flag.score) == ("f-1", "acct_1",
                                                                                     "templated_prompts", 0.8)
    assert FlagBatch.objects.get(pk=body["batch_id"]).created == 1


def test_a_batch_stores_the_good_and_names_each_bad_item(client, detector_token):
    batch = {"flags": [
        flag_payload(1),
        flag_payload(2, score=1.5),
        flag_payload(3),
        flag_payload(4, signal="mind_reading"),
        {k: v for k, v in flag_payload(5).items() if k != "account_id"},
    ]}
    response = post(client, detector_token, batch)
    assert response.status_code == 201
    body = response.json()
    assert body["created"] == 2
    assert [(r["index"], r["external_id"], sorted(r["errors"])) for r in body["rejected"]] == [
        (1, "f-2", ["score"]), (3, "f-4", ["signal"]), (4, "f-5", ["account_id"])]
    assert set(Flag.objects.values_list("external_id", flat=True)) == {"f-1", "f-3"}


@pytest.mark.parametrize(("override", "field", "reason"), [
    ({"score": -0.1}, "score", ">= 0"),
    ({"score": 1.01}, "score", "<= 1"),
    ({"score": "high"}, "score", "Expected 'float'"),
    ({"signal": "vibes"}, "signal", "Invalid enum value 'vibes'"),
    ({"observed_from": "2026-11-22T00:00:00Z"}, "observed_to", "must not be earlier than observed_from"),
    ({"observed_to": "next tuesday"}, "observed_to", "RFC3339"),
    ({"observed_from": "2026-11-20T00:00:00"}, "observed_from", "timezone"),
    ({"detector": "someone-else"}, "detector", "does not match this token's detector 'template-miner'"),
    ({"unexpected": 1}, "unexpected", "unknown field"),
    ({"external_id": ""}, "external_id", "length >= 1"),
    ({"request_count": -5}, "request_count", ">= 0"),
    ({"evidence": ["not", "an", "object"]}, "evidence", "Expected 'object"),
    ({"evidence": {"excerpts": ["x"] * 21}}, "evidence", "21 excerpts; the limit is 20"),
    ({"evidence": {"excerpts": ["ok", "y" * 2001]}}, "evidence", "excerpts [1] are longer than 2000 characters"),
    ({"evidence": {"excerpts": "one string"}}, "evidence", "excerpts must be a list of strings"),
    ({"evidence": {"blob": "z" * (64 * 1024)}}, "evidence", "the limit is 65536"),
])
def test_each_rejection_names_the_field_and_the_reason(client, detector_token, override, field, reason):
    response = post(client, detector_token, {"flags": [flag_payload(1, **override)]})
    assert response.status_code == 200
    (rejection,) = response.json()["rejected"]
    assert rejection["index"] == 0
    assert field in rejection["errors"], rejection
    assert reason in " ".join(rejection["errors"][field]), rejection
    assert not Flag.objects.exists()


# One problem per field, some the schema's types catch and some only the checks after decoding (bounds, the
# detector, the evidence rules): an item with any two of them is rejected naming both, so a detector fixes a
# bad item in one round instead of one field per round.
_ONE_PROBLEM_EACH = [
    ({"score": "high"}, "score", "Expected 'float', got 'str'"),
    ({"signal": "vibes"}, "signal", "Invalid enum value 'vibes'"),
    ({"request_count": 4611686018427387904}, "request_count", "<= 1000000000000"),
    ({"observed_to": "9999-12-31T23:59:59-23:59"}, "observed_to", "up to (not including) 2100-01-01T00:00:00Z"),
    ({"observed_from": "2026-11-20T00:00:00"}, "observed_from", "timezone"),
    ({"detector": "someone-else"}, "detector", "does not match this token's detector"),
    ({"unexpected": 1}, "unexpected", "unknown field"),
    ({"external_id": ""}, "external_id", "length >= 1"),
    ({"evidence": {"excerpts": ["x"] * 21}}, "evidence", "21 excerpts; the limit is 20"),
    ({"evidence": ["not", "an", "object"]}, "evidence", "Expected 'object | null', got 'array'"),
]


def test_an_item_with_several_problems_is_rejected_naming_every_one(client, detector_token):
    pairs = [(a, b) for i, a in enumerate(_ONE_PROBLEM_EACH) for b in _ONE_PROBLEM_EACH[i + 1:] if a[1] != b[1]]
    items = [flag_payload(n, **a[0], **b[0]) for n, (a, b) in enumerate(pairs)]
    items.append(flag_payload("good"))
    body = post(client, detector_token, {"flags": items}).json()
    assert body["created"] == 1
    assert len(body["rejected"]) == len(pairs) > 40
    for rejection, (a, b) in zip(body["rejected"], pairs, strict=True):
        assert set(rejection["errors"]) == {a[1], b[1]}, rejection
        for _, field, reason in (a, b):
            assert reason in " ".join(rejection["errors"][field]), rejection
    assert list(Flag.objects.values_list("external_id", flat=True)) == ["f-good"]


def test_missing_fields_are_named_together_with_the_other_problems(client, detector_token):
    body = {k: v for k, v in flag_payload(1, score=7, unexpected=True).items() if k not in {"account_id", "signal"}}
    (rejection,) = post(client, detector_token, {"flags": [body]}).json()["rejected"]
    assert rejection["errors"] == {
        "account_id": ["this field is required"], "signal": ["this field is required"],
        "score": ["Expected 'float' <= 1.0"],
        "unexpected": ["unknown field (schema v1 allows only the documented fields)"]}


def test_missing_fields_are_named(client, detector_token):
    for missing in ["external_id", "detector", "detector_version", "account_id", "signal", "score",
                    "observed_from", "observed_to"]:
        body = {k: v for k, v in flag_payload(1).items() if k != missing}
        (rejection,) = post(client, detector_token, {"flags": [body]}).json()["rejected"]
        assert rejection["errors"] == {missing: ["this field is required"]}


def test_optional_fields_may_be_absent_or_null(client, detector_token):
    body = {k: v for k, v in flag_payload(1).items() if k != "request_count"}
    body.update({"organization_id": None, "cluster_id": None, "evidence": None})
    assert post(client, detector_token, body).json()["created"] == 1


def test_a_replay_creates_nothing_and_says_so(client, detector_token):
    batch = {"flags": [flag_payload(n) for n in range(10)]}
    assert post(client, detector_token, batch).json()["created"] == 10
    again = post(client, detector_token, batch)
    assert again.status_code == 200
    assert (again.json()["created"], again.json()["duplicates"], again.json()["conflicts"]) == (0, 10, [])
    assert Flag.objects.count() == 10


def test_same_id_different_content_is_a_conflict_never_an_overwrite(client, detector_token):
    post(client, detector_token, flag_payload(1, score=0.8))
    response = post(client, detector_token, {"flags": [flag_payload(1, score=0.1), flag_payload(2)]})
    body = response.json()
    assert (body["created"], body["duplicates"]) == (1, 1)
    assert body["conflicts"] == [{"index": 0, "external_id": "f-1",
                                  "note": "same external_id as a flag stored earlier but different content; "
                                          "the earlier flag is kept unchanged"}]
    assert Flag.objects.get(external_id="f-1").score == 0.8


def test_the_same_id_twice_in_one_batch_counts_once(client, detector_token):
    batch = {"flags": [flag_payload(1), flag_payload(1), flag_payload(1, score=0.2)]}
    body = post(client, detector_token, batch).json()
    assert (body["created"], body["duplicates"]) == (1, 2)
    assert [c["index"] for c in body["conflicts"]] == [2]
    assert "item 0" in body["conflicts"][0]["note"]


def test_key_order_and_whitespace_do_not_make_a_conflict(client, detector_token):
    post(client, detector_token, flag_payload(1, evidence={"a": 1, "b": [1, 2]}))
    reordered = json.dumps(dict(reversed(list(flag_payload(1, evidence={"b": [1, 2], "a": 1}).items()))), indent=2)
    body = post(client, detector_token, reordered).json()
    assert (body["duplicates"], body["conflicts"]) == (1, [])


@pytest.mark.parametrize(("raw", "message"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'"a string"', "must be a JSON object"),
    (b'{"flags": {"a": 1}}', "\"flags\" must be a list"),
    (b'{"flags": []}', "\"flags\" is empty"),
    (b'{"flags": [], "extra": 1}', "unexpected keys: ['extra']"),
    (b"{}", "no flags"),
    (b" { } ", "no flags"),
])
def test_a_malformed_body_is_400_naming_the_problem(client, detector_token, raw, message):
    response = post(client, detector_token, raw)
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_more_than_5000_flags_is_413_with_the_limit(client, detector_token):
    response = post(client, detector_token, {"flags": [flag_payload(n) for n in range(5001)]})
    assert response.status_code == 413
    assert "the limit is 5000" in response.json()["detail"]
    assert not Flag.objects.exists()


def test_a_body_over_the_byte_limit_is_413(client, detector_token, settings):
    settings.FLAGS_MAX_BODY_BYTES = 2000
    response = post(client, detector_token, {"flags": [flag_payload(n) for n in range(20)]})
    assert response.status_code == 413 and "larger than 2000 bytes" in response.json()["detail"]


def test_only_json_is_accepted(client, detector_token):
    response = post(client, detector_token, "external_id=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer rvd_not-a-real-token", "Token abc", "Bearer a b"])
def test_no_or_bad_token_is_401(client, detector_token, header):
    kwargs = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.post(URL, data=json.dumps(flag_payload(1)), content_type="application/json", **kwargs)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not Flag.objects.exists()


def test_a_revoked_token_is_401(client, detector, detector_token):
    from flags.models import DetectorToken
    from flags.services import detector_token_revoke
    from reviewapp.audit.services import SYSTEM

    detector_token_revoke(actor=SYSTEM, token=DetectorToken.objects.get(detector=detector))
    response = post(client, detector_token, flag_payload(1))
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_an_inactive_detector_cannot_post(client, detector, detector_token):
    from flags.services import detector_set_active
    from reviewapp.audit.services import SYSTEM

    detector_set_active(actor=SYSTEM, detector=detector, active=False)
    assert post(client, detector_token, flag_payload(1)).status_code == 401


def test_a_staff_session_cannot_post_flags(client, make_staff):
    client.force_login(make_staff(Role.ADMIN))
    response = client.post(URL, data=json.dumps(flag_payload(1)), content_type="application/json")
    assert response.status_code == 401
    assert not Flag.objects.exists()


def test_tokens_are_stored_hashed(detector_token):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM flags_detectortoken")
        assert detector_token not in repr(cursor.fetchall())


def test_ingestion_is_audited_per_batch(client, detector_token):
    body = post(client, detector_token, {"flags": [flag_payload(1), flag_payload(2, score=9)]}).json()
    event = AuditEvent.objects.get(action=AuditAction.FLAGS_INGESTED)
    assert (event.target_type, event.target_id) == ("flags.flagbatch", str(body["batch_id"]))
    assert event.data == {"detector": "template-miner", "source": "api", "created": 1, "duplicates": 0,
                          "conflicts": 0, "rejected": 1}
    assert event.actor_type == "detector" and event.actor_id == "template-miner"


def test_stored_flags_cannot_be_rewritten(detector_token, client):
    from django.db import transaction
    from django.db.utils import DatabaseError

    post(client, detector_token, flag_payload(1))
    with pytest.raises(DatabaseError, match="pgtrigger"), transaction.atomic():
        Flag.objects.update(score=0.01)
    assert Flag.objects.get().score == 0.8


def test_openapi_documents_the_contract(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/flags/"]["post"]
    assert {"201", "200", "400", "401", "413", "415"} <= set(operation["responses"])
    flag = schema["components"]["schemas"]["FlagV1"]
    assert flag["additionalProperties"] is False
    assert set(flag["required"]) == {"external_id", "detector", "detector_version", "account_id", "signal",
                                     "score", "observed_from", "observed_to"}
    assert "reasoning_extraction" in operation["description"]
    assert operation["requestBody"]["content"]["application/json"]["examples"]
    assert schema["components"]["securitySchemes"]["detectorToken"]["scheme"] == "bearer"


@pytest.mark.parametrize(("raw", "field"), [
    (json.dumps(flag_payload(1, account_id="acct\u0000x")).encode(), "account_id"),
    (json.dumps(flag_payload(1, evidence={"excerpts": ["a\u0000b"]})).encode(), "evidence"),
    (json.dumps(flag_payload(1)).encode().replace(b'"acct_1"', b'"acct_\xff"'), "non_field_errors"),
])
def test_nul_characters_and_broken_utf8_are_rejected_not_a_500(client, detector_token, raw, field):
    response = post(client, detector_token, raw)
    assert response.status_code == 200, response.content
    (rejection,) = response.json()["rejected"]
    assert field in rejection["errors"]
    assert not Flag.objects.exists()


@pytest.mark.parametrize("table", ["flags_detector", "flags_flagbatch"])
def test_what_flags_point_at_cannot_be_deleted_in_the_database(client, detector_token, table):
    """Flags reference detectors and batches without per-row foreign-key checks (for speed); the
    references cannot dangle because the database refuses to delete either."""
    from django.db import connection, transaction
    from django.db.utils import DatabaseError

    post(client, detector_token, flag_payload(1))
    with pytest.raises(DatabaseError, match="pgtrigger"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}")
    assert Flag.objects.get().detector.slug == "template-miner"
