"""The staff appeals API's edges: what is no appeal id answers 404, and a role that may not handle appeals is
refused (403) before its body is judged. (The flows themselves are in test_review.py.)"""

from __future__ import annotations

import pytest

from appeals.models import Appeal
from appeals.selectors import appeals_queue

from .review_fixtures import (  # noqa: F401 (fixtures, asked for by name)
    appeal_staff_fixture,
    attachments_dir_fixture,
    contested_fixture,
    decide,
    file_appeal,
    flagged_case,
)

pytestmark = pytest.mark.django_db


def _as(client, user):
    client.force_login(user)
    return client


@pytest.mark.parametrize("pk", ["AAA", "1e3", "99999999999999999999", "-1"])
def test_what_is_no_appeal_id_is_404(contested, client, pk):
    api = _as(client, contested.staff.outsider)
    assert api.get(f"/api/v1/appeals/{pk}/").status_code == 404
    for path in ("claim", "messages", "outcome"):
        response = api.post(f"/api/v1/appeals/{pk}/{path}", {"text": "Why?", "outcome": "upheld", "reason": "R."},
                            content_type="application/json")
        assert response.status_code == 404, (path, response.content)
        assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("path", ["claim", "messages", "outcome"])
def test_compliance_gets_403_for_an_empty_body(contested, client, path):
    api = _as(client, contested.staff.compliance)
    response = api.post(f"/api/v1/appeals/{contested.appeal.pk}/{path}", {}, content_type="application/json")
    assert response.status_code == 403, response.content
    assert response.json() == {"detail": "Only senior reviewers handle appeals."}
    assert Appeal.objects.get(pk=contested.appeal.pk).reviewer is None


def test_the_api_queue_is_in_the_queue_pages_order_the_review_due_first(contested, policy, client):
    """The API pages the queue in the order of the HTML queue (``appeals_queue``), by when the review is due, not
    by the holder's filing deadline: here the appeal filed later has the nearer filing deadline (T-1, 180 days)."""
    staff = contested.staff
    later = file_appeal(decide(flagged_case("template-miner", "acct_plain"), reviewer=staff.decider,
                               clauses=[policy["extraction"]]))
    first = contested.appeal
    assert later.deadline < first.deadline and first.review_due_at < later.review_due_at
    api = _as(client, staff.outsider)

    rows = api.get("/api/v1/appeals/").json()["results"]
    assert [row["id"] for row in rows] == [appeal.pk for appeal in appeals_queue()] == [first.pk, later.pk]
    assert rows[0]["review_due_at"].startswith(first.review_due_at.strftime("%Y-%m-%dT%H:%M"))

    page = api.get("/api/v1/appeals/?page_size=1").json()  # and the cursor walks on in that order
    assert [row["id"] for row in page["results"]] == [first.pk]
    assert [row["id"] for row in client.get(page["next"]).json()["results"]] == [later.pk]
