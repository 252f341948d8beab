"""The staff appeals API's edges: what is no appeal id answers 404, and a role that may not handle appeals is
refused (403) before its body is judged. (The flows themselves are in test_review.py.)"""

from __future__ import annotations

import pytest

from appeals.models import Appeal

from .review_fixtures import (  # noqa: F401 (fixtures, asked for by name)
    appeal_staff_fixture,
    attachments_dir_fixture,
    contested_fixture,
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
