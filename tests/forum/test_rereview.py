"""A senior reviewer's fresh look at decided cases that relied on Forum intelligence a peer revoked: the page
lists each (case, decision, the revoked source object and when), a note marks one done (inbound.rereview_done,
audited); the navigation and the home page lead there; the API does the same. Reviewers and sharing officers
get 403, an id that does not exist 404."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from reviewapp.audit.models import AuditEvent
from reviewapp.forum.models import InboundReReview
from reviewapp.forum.trust_groups import trust_group
from reviewapp.people.roles import Role

from .conftest import FRONTIER
from .withdrawn_source import decided_case_with_withdrawn_source

pytestmark = pytest.mark.django_db
API = "/api/v1/forum/rereviews"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def senior(make_staff):
    return make_staff(Role.SENIOR_REVIEWER, username="sam-senior")


@pytest.fixture
def withdrawn(world, monkeypatch):
    return decided_case_with_withdrawn_source(world, monkeypatch, external_id="acct_relied_on_it")


def _text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.content.decode()))


def test_a_senior_sees_the_case_the_decision_and_the_revoked_object_then_marks_it_done(withdrawn, senior):
    client = _client(senior)
    page = client.get(reverse("forum:rereviews"))
    assert page.status_code == 200
    text = _text(page)
    decision = withdrawn.rereview.decision
    assert f'href="{reverse("review:case", args=[withdrawn.case.pk])}"' in text and "acct_relied_on_it" in text
    assert f"Suspension</a>, decision {decision.pk} by rita-reviewer" in text
    assert withdrawn.indicator["id"] in text
    assert "revoked by the peer at 2026-11-04 00:00 UTC" in text  # the STIX modified of the revoking version
    assert f" in {trust_group(FRONTIER).name} from " in text  # the trust group by name, not its collection id
    assert f"received {withdrawn.revoked.received_at:%Y-%m-%d %H:%M}" in text

    blank = client.post(reverse("forum:rereview-done", args=[withdrawn.rereview.pk]), {"note": "  "})
    assert blank.status_code == 422 and "This field is required." in blank.text
    assert InboundReReview.objects.get().state == "open"

    done = client.post(reverse("forum:rereview-done", args=[withdrawn.rereview.pk]),
                       {"note": "Own flags carry the decision alone; it stands."})
    assert done.status_code == 302 and done["Location"] == reverse("forum:rereviews")
    rereview = InboundReReview.objects.get()
    assert (rereview.state, rereview.resolved_by) == ("done", senior)
    event = AuditEvent.objects.filter(target_type="forum.inboundrereview", target_id=str(rereview.pk)).get()
    assert event.data["note"] == "Own flags carry the decision alone; it stands." and event.data["rereview"] == "done"
    assert "No decision waits for a fresh look." in client.get(reverse("forum:rereviews")).text

    again = client.post(reverse("forum:rereview-done", args=[rereview.pk]), {"note": "Twice."})
    assert again.status_code == 422 and "already done" in again.text


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.SHARING_OFFICER])
def test_roles_without_the_permission_get_403(withdrawn, make_staff, role):
    client = _client(make_staff(role))
    assert client.get(reverse("forum:rereviews")).status_code == 403
    assert client.post(reverse("forum:rereview-done", args=[withdrawn.rereview.pk]), {"note": "x"}).status_code == 403
    assert client.get(API).status_code == 403
    assert client.post(f"{API}/{withdrawn.rereview.pk}/done", {"note": "x"},
                       content_type="application/json").status_code == 403
    assert InboundReReview.objects.get().state == "open"


def test_a_compliance_officer_reads_the_list_but_cannot_mark_one_done(withdrawn, make_staff):
    client = _client(make_staff(Role.COMPLIANCE_OFFICER))
    page = client.get(reverse("forum:rereviews"))
    assert page.status_code == 200
    text = _text(page)
    assert f"Case {withdrawn.rereview.case_id}" in text and withdrawn.rereview.stix_id in text
    assert "a senior reviewer marks it done" in text
    assert reverse("forum:rereview-done", args=[withdrawn.rereview.pk]) not in text  # no form to mark it
    listed = client.get(API)
    assert listed.status_code == 200 and [r["id"] for r in listed.json()["results"]] == [withdrawn.rereview.pk]
    assert client.post(reverse("forum:rereview-done", args=[withdrawn.rereview.pk]), {"note": "x"}).status_code == 403
    assert client.post(f"{API}/{withdrawn.rereview.pk}/done", {"note": "x"},
                       content_type="application/json").status_code == 403
    assert InboundReReview.objects.get().state == "open"


def test_an_id_that_does_not_exist_is_404(withdrawn, senior):
    client = _client(senior)
    missing = withdrawn.rereview.pk + 1000
    assert client.post(reverse("forum:rereview-done", args=[missing]), {"note": "x"}).status_code == 404
    assert client.post(f"{API}/{missing}/done", {"note": "x"}, content_type="application/json").status_code == 404
    assert client.post(f"{API}/99999999999999999999/done", {"note": "x"},
                       content_type="application/json").status_code == 404


def test_the_navigation_and_the_home_page_lead_seniors_there(withdrawn, senior, make_staff):
    text = _text(_client(senior).get(reverse("core:home")))
    assert f'href="{reverse("forum:rereviews")}">Forum re-reviews</a>' in text
    section = re.search(r'<section id="rereviews".*?</section>', text).group(0)
    assert re.search(r'Decisions to look at again \(Forum intelligence withdrawn\) <span class="badge">1</span>',
                     section)
    assert f'href="{reverse("review:case", args=[withdrawn.case.pk])}"' in section
    assert withdrawn.indicator["id"] in section and f'href="{reverse("forum:rereviews")}"' in section
    reviewer_home = _client(make_staff(Role.REVIEWER)).get(reverse("core:home")).text
    assert 'id="rereviews"' not in reviewer_home and reverse("forum:rereviews") not in reviewer_home


def test_the_api_lists_and_marks_done(withdrawn, senior):
    client = _client(senior)
    listed = client.get(API)
    assert listed.status_code == 200
    (row,) = listed.json()["results"]
    assert row["case"] == withdrawn.case.pk and row["account"] == "acct_relied_on_it"
    assert row["decision"] == withdrawn.rereview.decision_id and row["decision_action"] == "suspend"
    assert row["stix_id"] == withdrawn.indicator["id"] and row["state"] == "open"
    assert row["source"]["revoked"] is True and row["source"]["modified"] == withdrawn.revoked.modified

    def done(body):
        return client.post(f"{API}/{withdrawn.rereview.pk}/done", json.dumps(body), content_type="application/json")

    blank = done({"note": "   "})
    assert blank.status_code == 400 and "note" in blank.json()
    answer = done({"note": "Looked again: stands."})
    assert answer.status_code == 200, answer.content
    assert answer.json()["state"] == "done" and answer.json()["resolved_by"] == "sam-senior"
    assert AuditEvent.objects.filter(target_type="forum.inboundrereview", data__note="Looked again: stands.").exists()
    again = done({"note": "Twice."})
    assert again.status_code == 409 and "already done" in again.json()["detail"]
    assert client.get(API).json()["results"] == []


def test_the_schema_documents_the_rereview_api(client):
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/json").json()
    listing = schema["paths"]["/api/v1/forum/rereviews/"]["get"]
    assert {"200", "403"} <= set(listing["responses"])
    done = schema["paths"]["/api/v1/forum/rereviews/{id}/done/"]["post"]
    assert {"200", "400", "403", "404", "409"} <= set(done["responses"])
    body = done["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert schema["components"]["schemas"][body]["required"] == ["note"]
