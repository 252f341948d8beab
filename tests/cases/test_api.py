"""GET /api/v1/cases/ and /api/v1/cases/{id}/: per-role visibility, filters, cursor pages, flat query count."""

import json

import pytest

from reviewapp.cases.models import Case
from reviewapp.people.roles import Role
from tests.conftest import flag_payload
from tests.factories import ingest_and_group

pytestmark = pytest.mark.django_db
URL = "/api/v1/cases/"


@pytest.fixture
def reviewer_client(client, make_staff):
    client.force_login(make_staff(Role.REVIEWER))
    return client


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.SENIOR_REVIEWER, Role.SHARING_OFFICER, Role.COMPLIANCE_OFFICER])
def test_staff_who_work_cases_can_read_them(client, make_staff, detector, role):
    ingest_and_group(detector, [flag_payload(1)])
    client.force_login(make_staff(role))
    assert client.get(URL).status_code == 200


def test_admins_and_strangers_cannot(client, make_staff, detector):
    ingest_and_group(detector, [flag_payload(1)])
    case = Case.objects.get()
    assert client.get(URL).status_code == 403  # not signed in: DRF answers 403 to a session API
    client.force_login(make_staff(Role.ADMIN))
    assert client.get(URL).status_code == 403
    assert client.get(f"{URL}{case.pk}/").status_code == 403


def test_detail_lists_flags_without_raw_evidence(reviewer_client, detector):
    ingest_and_group(detector, [flag_payload(1, evidence={"excerpts": ["secret prompt text"]}),
                    flag_payload(2, account_id="acct_1")])
    case = Case.objects.get()
    body = reviewer_client.get(f"{URL}{case.pk}/").json()
    assert body["account"] == "acct_1" and body["flag_count"] == 2
    assert {f["external_id"] for f in body["flags"]} == {"f-1", "f-2"}
    assert {f["has_evidence"] for f in body["flags"]} == {True, False}
    assert "secret prompt text" not in json.dumps(body)


def test_filters(reviewer_client, detector):
    ingest_and_group(detector, [
        flag_payload(1, account_id="acct_a", signal="volume_anomaly", score=0.2, request_count=5),
        flag_payload(2, account_id="acct_b", signal="reasoning_extraction", score=0.99, cluster_id="c-1",
                     request_count=3_000_000),
        flag_payload(3, account_id="acct_c", signal="account_cluster", cluster_id="c-1"),
    ])

    def accounts(**params):
        return sorted(c["account"] for c in reviewer_client.get(URL, params).json()["results"])

    assert accounts() == ["acct_a", "acct_b", "acct_c"]
    assert accounts(queue="volume") == ["acct_a"]
    assert accounts(signal="account_cluster") == ["acct_c"]
    assert accounts(campaign="template-miner:c-1") == ["acct_b", "acct_c"]
    assert accounts(account="acct_b") == ["acct_b"]
    assert accounts(priority_min=80) == ["acct_b"]
    assert accounts(priority_max=40) == ["acct_a"]
    assert accounts(state="new") == ["acct_a", "acct_b", "acct_c"]
    assert accounts(state="closed") == []
    assert accounts(detector="template-miner") == ["acct_a", "acct_b", "acct_c"]
    assert accounts(detector="nobody") == []
    assert accounts(opened_after="2099-01-01T00:00:00Z") == []
    assert reviewer_client.get(URL, {"queue": "nonsense"}).status_code == 400


def test_cursor_pages_walk_every_case_once(reviewer_client, detector):
    ingest_and_group(detector, [flag_payload(n) for n in range(23)])
    seen, url = [], URL + "?page_size=10"
    while url:
        page = reviewer_client.get(url).json()
        seen += [c["id"] for c in page["results"]]
        url = page["next"]
    assert sorted(seen) == sorted(Case.objects.values_list("pk", flat=True)) and len(seen) == 23


def test_query_count_does_not_grow_with_the_page(reviewer_client, detector, django_assert_num_queries):
    ingest_and_group(detector, [flag_payload(n, cluster_id=f"c-{n % 2}") for n in range(40)])
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        assert len(reviewer_client.get(URL, {"page_size": 5}).json()["results"]) == 5
    with CaptureQueriesContext(connection) as large:
        assert len(reviewer_client.get(URL, {"page_size": 40}).json()["results"]) == 40
    assert len(large.captured_queries) == len(small.captured_queries)
    case = Case.objects.first()
    with CaptureQueriesContext(connection) as detail:
        reviewer_client.get(f"{URL}{case.pk}/")
    assert len(detail.captured_queries) <= len(small.captured_queries) + 1


def test_unknown_case_is_404(reviewer_client):
    assert reviewer_client.get(f"{URL}999999/").status_code == 404


@pytest.mark.parametrize(("parameter", "value"), [
    ("opened_after", "9999-12-31T23:59:59-23:00"),    # past year 9999 once in UTC
    ("opened_before", "9999-12-31T20:00:00-04:00"),
    ("observed_after", "0001-01-01T00:00:00+01:00"),  # before year 1 once in UTC
])
def test_times_the_database_cannot_hold_are_400_naming_the_parameter(reviewer_client, detector, parameter, value):
    ingest_and_group(detector, [flag_payload(1)])
    response = reviewer_client.get(URL, {parameter: value})
    assert response.status_code == 400, response.content
    assert list(response.json()) == [parameter]


def test_a_far_offset_inside_the_years_still_filters(reviewer_client, detector):
    """RFC 3339 allows +21:21 (PostgreSQL refuses offsets past 15:59): the time is taken in UTC, not a 500."""
    ingest_and_group(detector, [flag_payload(1)])
    assert len(reviewer_client.get(URL, {"opened_after": "0219-02-07T09:40:56+21:21"}).json()["results"]) == 1
    assert reviewer_client.get(URL, {"opened_before": "0219-02-07T09:40:56+21:21"}).json()["results"] == []
    assert reviewer_client.get(URL, {"opened_before": "2000-01-01T00:00:00+14:00"}).json()["results"] == []


@pytest.mark.parametrize("page_size", ["abc", "0", "-5", "501", "1.5", "٣"])
def test_a_page_size_out_of_bounds_is_400_naming_it(client, make_staff, detector, page_size):
    ingest_and_group(detector, [flag_payload(1)])
    client.force_login(make_staff(Role.SENIOR_REVIEWER))  # reads cases and appeals
    for path in (URL, "/api/v1/appeals/"):
        response = client.get(path, {"page_size": page_size})
        assert response.status_code == 400 and list(response.json()) == ["page_size"], path
    assert len(client.get(URL, {"page_size": "500"}).json()["results"]) == 1


def test_the_schema_says_the_page_size_bounds(reviewer_client):
    schema = reviewer_client.get("/api/schema/?format=json").json()
    for path in ("/api/v1/cases/", "/api/v1/appeals/"):
        (page_size,) = [p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == "page_size"]
        assert (page_size["schema"]["minimum"], page_size["schema"]["maximum"]) == (1, 500)
