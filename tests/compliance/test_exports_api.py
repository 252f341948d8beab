"""The exports on the API (reviewapp/compliance/exports/api.py): a compliance officer's staff API token alone
downloads an export, the same stream as the console's and audited the same way; other roles get 403, no
credentials 401; Accept does not change the format; a bad date is a JSON 400 naming the field; the index lists
every dataset, its columns and URLs; the OpenAPI schema documents each download's media type and range."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.http import StreamingHttpResponse
from django.test import Client

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM, Actor, record
from reviewapp.compliance.exports.selectors import AUDIT, DATASETS, FORMATS
from reviewapp.people.roles import Role
from reviewapp.people.services import issue_api_token

pytestmark = pytest.mark.django_db
API = "/api/v1/compliance/exports/"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


@pytest.fixture
def officer(make_staff):
    return make_staff(Role.COMPLIANCE_OFFICER, username="cora")


def token_client(person, **extra) -> Client:
    """A client with no session at all: the token is all it has."""
    _, secret = issue_api_token(actor=person, user=person, name="exports")
    return Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {secret}", **extra)


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def exported_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditAction.COMPLIANCE_EXPORTED).order_by("pk"))


def body(response) -> str:
    assert isinstance(response, StreamingHttpResponse), response
    return b"".join(response.streaming_content).decode()


def test_a_compliance_token_alone_downloads_the_export_and_it_is_audited(officer):
    marker = record(actor=Actor(type="system", id="x", display="=HYPERLINK(1)"), action="compliance.exported",
                    data={"note": "a, \"quoted\"\nline"})
    client = token_client(officer)
    response = client.get(f"{API}audit.csv", {"from": today(), "to": today()})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="reviewapp-audit-{today()}-{today()}.csv"'
    rows = list(csv.DictReader(io.StringIO(body(response))))
    assert list(rows[0]) == AUDIT.column_names
    mine = next(row for row in rows if row["id"] == str(marker.pk))
    assert mine["actor"] == "'=HYPERLINK(1)" and json.loads(mine["data"]) == {"note": "a, \"quoted\"\nline"}

    event = exported_events()[-1]
    assert event.actor_id == str(officer.pk) and event.actor_display == "cora"
    assert event.data == {"dataset": "audit", "format": "csv", "from": today(), "to": today(),
                          "rows": int(response["X-Export-Rows"])}
    # Counted before its own event (and the token's first use of the day) were written; both stream after.
    assert [int(row["id"]) for row in rows[:event.data["rows"]]] == list(
        AuditEvent.objects.filter(pk__lt=event.pk).order_by("created_at", "pk").values_list("pk", flat=True))
    assert str(event.pk) in [row["id"] for row in rows]


def test_the_api_and_the_console_stream_the_same_bytes(officer):
    record(actor=SYSTEM, action="compliance.exported", data={"n": 1})
    session = Client()
    session.force_login(officer)
    for fmt in FORMATS:
        console = body(session.get(f"/compliance/exports/audit.{fmt}", {"from": today(), "to": today()}))
        api = body(session.get(f"{API}audit.{fmt}", {"from": today(), "to": today()}))
        # The API's request sees one more compliance.exported event (the console's): drop it and compare.
        lines = [line for line in api.splitlines() if "compliance.exported" not in line or '"n"' in line]
        assert lines == [line for line in console.splitlines() if "compliance.exported" not in line
                         or '"n"' in line]


@pytest.mark.parametrize("accept", ["application/json", "text/html", "application/xml", "*/*"])
def test_accept_does_not_change_the_format(officer, accept):
    client = token_client(officer)
    record(actor=SYSTEM, action="compliance.exported", data={})
    response = client.get(f"{API}audit.jsonl", HTTP_ACCEPT=accept)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    lines = [json.loads(line) for line in body(response).splitlines()]
    assert lines and set(lines[0]) == set(AUDIT.column_names)
    csv_response = client.get(f"{API}decisions.csv", HTTP_ACCEPT=accept)
    assert csv_response.status_code == 200 and csv_response["Content-Type"].startswith("text/csv")
    assert body(csv_response).splitlines()[0] == ",".join(DATASETS["decisions"].column_names)


def test_other_roles_are_refused_with_403_and_nothing_is_recorded(make_staff):
    before = len(exported_events())
    for role in (Role.REVIEWER, Role.SENIOR_REVIEWER, Role.SHARING_OFFICER):
        person = make_staff(role)
        for url in (f"{API}audit.csv", f"{API}decisions.jsonl", API):
            response = token_client(person).get(url)
            assert response.status_code == 403, (role, url, response.status_code)
            assert response.json() == {"detail": "Only compliance officers export."}
        session = Client()
        session.force_login(person)
        assert session.get(f"{API}audit.csv").status_code == 403
    assert len(exported_events()) == before


def test_no_credentials_is_a_401_asking_for_a_token():
    for url, accept in ((f"{API}audit.csv", "text/csv"), (f"{API}shares.jsonl", "application/json"), (API, "*/*")):
        response = Client().get(url, HTTP_ACCEPT=accept)
        assert response.status_code == 401, (url, response.status_code)
        assert response["WWW-Authenticate"].startswith("Token")
        assert response["Content-Type"] == "application/json"
    assert Client(HTTP_AUTHORIZATION="Token rvs_unknown").get(f"{API}audit.csv").status_code == 401
    assert exported_events() == []


@pytest.mark.parametrize(("query", "field"), [
    ({"from": "2026-13-01"}, "from"),
    ({"from": "01/02/2026"}, "from"),
    ({"to": "yesterday"}, "to"),
    ({"from": "2026-02-01", "to": "2026-01-31"}, "to"),
])
def test_a_bad_date_is_a_json_400_naming_the_field(officer, query, field):
    response = token_client(officer).get(f"{API}appeals.csv", query, HTTP_ACCEPT="text/csv")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    answer = response.json()
    assert list(answer) == [field] and answer[field][0]
    assert exported_events() == []


def test_the_range_is_inclusive_utc_dates(officer):
    event = record(actor=SYSTEM, action="compliance.exported", data={})
    day = event.created_at.astimezone(UTC).date()
    client = token_client(officer)

    def ids(first, last) -> list[int]:
        text = body(client.get(f"{API}audit.jsonl", {"from": first.isoformat(), "to": last.isoformat()}))
        return [json.loads(line)["id"] for line in text.splitlines()]

    assert event.pk in ids(day, day)
    assert event.pk not in ids(day - timedelta(days=3), day - timedelta(days=1))
    assert event.pk not in ids(day + timedelta(days=1), day + timedelta(days=1))


def test_the_index_lists_every_dataset_with_its_columns_and_working_urls(officer):
    client = token_client(officer)
    index = client.get(API, HTTP_ACCEPT="application/json")
    assert index.status_code == 200
    answer = index.json()
    assert answer["default_days"] == 30
    assert [d["slug"] for d in answer["datasets"]] == list(DATASETS)
    for entry in answer["datasets"]:
        dataset = DATASETS[entry["slug"]]
        assert [c["name"] for c in entry["columns"]] == dataset.column_names
        assert {f["format"]: f["url"] for f in entry["formats"]} == {
            fmt: f"http://testserver{API}{dataset.slug}.{fmt}" for fmt in FORMATS}
        download = client.get(entry["formats"][0]["url"])
        assert download.status_code == 200 and body(download).splitlines()[0] == ",".join(dataset.column_names)


def test_the_schema_documents_each_download():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    media = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
    for slug, dataset in DATASETS.items():
        for fmt in FORMATS:
            operation = schema["paths"][f"{API}{slug}.{fmt}"]["get"]
            assert list(operation["responses"]["200"]["content"]) == [media[fmt]]
            assert {"400", "401", "403"} <= set(operation["responses"])
            assert [p["name"] for p in operation["parameters"]] == ["from", "to"]
            assert all(f"`{name}`" in operation["description"] for name in dataset.column_names)
    assert "ExportIndex" in schema["components"]["schemas"]
