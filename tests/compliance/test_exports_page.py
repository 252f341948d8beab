"""The export page (/compliance/exports/): a GET form of dataset, format and UTC dates whose submission redirects to
the chosen download with the range (so it works without JavaScript), re-renders with a 400 and each error beside
its field when a value is refused, is linked from the console home and is for compliance officers only."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.compliance.exports.selectors import DATASETS
from reviewapp.people.roles import Role

pytestmark = pytest.mark.django_db
PAGE, START = "/compliance/exports/", "/compliance/exports/download"


@pytest.fixture
def officer_client(client, make_staff):
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER, username="cora"))
    return client


def test_the_page_is_a_get_form_to_the_download_with_labels_and_utc_help(officer_client):
    page = officer_client.get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    form = re.search(r'<form method="get" action="([^"]+)"', html)
    assert form and form[1] == reverse("compliance:export-download") == START
    today = datetime.now(UTC).date()
    assert f'type="date" name="from" value="{today - timedelta(days=29)}"' in html
    assert f'type="date" name="to" value="{today}"' in html
    assert '<label for="id_from">From (UTC date)</label>' in html
    assert '<label for="id_to">To (UTC date, inclusive)</label>' in html
    assert 'aria-describedby="id_to_helptext"' in html and "24:00 UTC" in html
    for slug, dataset in DATASETS.items():
        assert f'value="{slug}"' in html and dataset.title in html
        assert all(f"<code>{name}</code>" in html for name in dataset.column_names)
    assert 'value="csv"' in html and 'value="jsonl"' in html


def test_submitting_redirects_to_the_download_which_streams_and_is_audited(officer_client):
    answer = officer_client.get(START, {"dataset": "appeals", "fmt": "jsonl", "from": "2026-01-01",
                                        "to": "2026-01-31"})
    assert answer.status_code == 302
    assert answer["Location"] == "/compliance/exports/appeals.jsonl?from=2026-01-01&to=2026-01-31"
    assert not AuditEvent.objects.filter(action=AuditAction.COMPLIANCE_EXPORTED).exists()  # not yet: a redirect

    download = officer_client.get(answer["Location"])
    assert download.status_code == 200 and download["Content-Type"].startswith("application/x-ndjson")
    b"".join(download.streaming_content)
    event = AuditEvent.objects.get(action=AuditAction.COMPLIANCE_EXPORTED)
    assert event.data == {"dataset": "appeals", "format": "jsonl", "from": "2026-01-01", "to": "2026-01-31",
                          "rows": 0}


def test_empty_dates_take_the_default_range(officer_client):
    answer = officer_client.get(START, {"dataset": "audit", "fmt": "csv", "from": "", "to": ""})
    today = datetime.now(UTC).date()
    assert answer["Location"] == f"/compliance/exports/audit.csv?from={today - timedelta(days=29)}&to={today}"


@pytest.mark.parametrize(("query", "field", "message"), [
    ({"dataset": "audit", "fmt": "csv", "from": "2026-02-30"}, "from",
     "From (UTC date): '2026-02-30' is not a date: write it as YYYY-MM-DD (UTC)."),
    ({"dataset": "audit", "fmt": "csv", "from": "2026-02-02", "to": "2026-02-01"}, "to",
     "To (UTC date, inclusive): Must not be before From."),
    ({"dataset": "passwords", "fmt": "csv"}, "dataset", "Dataset: Select a valid choice."),
    ({"dataset": "audit", "fmt": "xlsx"}, "fmt", "Format: Select a valid choice."),
    ({"fmt": "csv"}, "dataset", "Dataset: This field is required."),
])
def test_a_bad_value_re_renders_the_form_with_400_and_the_error_by_its_field(officer_client, query, field, message):
    answer = officer_client.get(START, query)
    assert answer.status_code == 400
    html = answer.content.decode()
    assert f'id="id_{field}_error">{message}' in html.replace("&#x27;", "'")
    assert 'role="alert"' in html and "<title>Error: Exports" in html
    if field in ("from", "to"):
        assert re.search(rf'<input type="date" name="{field}"[^>]*aria-invalid="true"', html)
        assert f'aria-describedby="id_{field}_helptext id_{field}_error"' in html
    # What was chosen (and valid) is kept.
    if query.get("dataset") == "audit":
        assert re.search(r'<input type="radio" name="dataset" value="audit"[^>]* checked', html)
    assert not AuditEvent.objects.filter(action=AuditAction.COMPLIANCE_EXPORTED).exists()


def test_the_home_panel_links_the_page(officer_client):
    home = officer_client.get(reverse("compliance:home")).content.decode()
    assert f'href="{PAGE}"' in home


def test_the_page_is_for_compliance_only(client, make_staff):
    client.force_login(make_staff(Role.SENIOR_REVIEWER))
    assert client.get(PAGE).status_code == 403
    assert client.get(START, {"dataset": "audit", "fmt": "csv"}).status_code == 403
    client.logout()
    assert client.get(PAGE).status_code == 302  # to sign in
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    assert client.post(PAGE).status_code == 405 and client.post(START).status_code == 405
