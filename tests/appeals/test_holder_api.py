"""The holder API (/api/v1/holder/): the portal session as the principal (never a staff login), CSRF on
unsafe methods, the same services and the same refusals as the pages, and in the OpenAPI schema."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

import appeals.views
from appeals.models import Appeal, AppealAttachment
from appeals.services import appeal_claim, appeal_message_add
from reviewapp.outbox.models import OutboxMessage
from reviewapp.people.roles import Role

from .conftest import FACTS, PDF, sign_in_path

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


def test_decisions_carry_the_statement_and_the_deadline(signed_in, holder):
    response = signed_in.get("/api/v1/holder/decisions/")
    assert response.status_code == 200
    (decision,) = response.json()
    assert decision["id"] == holder.decision.pk and decision["action"] == "suspend"
    assert decision["state"] == "enforced" and decision["can_appeal"] is True and decision["open_appeal"] is None
    statement = decision["statement"]
    assert statement["id"] == holder.statement.pk and statement["content"] == holder.statement.content
    assert statement["content"]["facts"] == FACTS
    assert statement["content"]["ground"]["clauses"][0]["text"] == "Do not extract outputs at scale."
    assert decision["appeal_deadline"].startswith(holder.statement.appeal_deadline.strftime("%Y-%m-%dT%H:%M:%S"))


def test_filing_with_attachments_then_following_and_answering(signed_in, holder, make_staff, portal_attachments):
    response = signed_in.post("/api/v1/holder/appeals/", {
        "decision": holder.decision.pk, "grounds": "A documented benchmark run.", "researcher_claim": "true",
        "affiliation": "Example University",
        "attachments": [SimpleUploadedFile("letter.pdf", PDF, "application/pdf"),
                        SimpleUploadedFile("log.txt", b"run 1\n", "text/plain")],
    })
    assert response.status_code == 201, response.content
    body = response.json()
    appeal = Appeal.objects.get()
    assert body["id"] == appeal.pk and body["state"] == "filed" and body["researcher_claim"] is True
    assert [(a["name"], a["content_type"]) for a in body["attachments"]] == [
        ("letter.pdf", "application/pdf"), ("log.txt", "text/plain")]
    assert OutboxMessage.objects.filter(kind="email", idempotency_key=f"appeal-receipt-{appeal.pk}").exists()

    decisions = signed_in.get("/api/v1/holder/decisions/").json()
    assert decisions[0]["can_appeal"] is False and decisions[0]["open_appeal"] == appeal.pk
    assert [a["id"] for a in signed_in.get("/api/v1/holder/appeals/").json()] == [appeal.pk]

    senior = make_staff(Role.SENIOR_REVIEWER, username="olga")
    appeal_claim(reviewer=senior, appeal=appeal)
    appeal_message_add(appeal=appeal, staff=senior, text="Which benchmark?")
    detail = signed_in.get(f"/api/v1/holder/appeals/{appeal.pk}/").json()
    assert detail["state"] == "info_requested"
    assert [(m["author_type"], m["text"]) for m in detail["messages"]] == [("staff", "Which benchmark?")]
    assert "olga" not in str(detail)  # the reviewer's name is not the holder's business

    answer = signed_in.post(f"/api/v1/holder/appeals/{appeal.pk}/messages", {"text": "An MMLU-style sweep."},
                            content_type="application/json")
    assert answer.status_code == 201 and answer.json()["author_type"] == "holder"
    assert signed_in.get(f"/api/v1/holder/appeals/{appeal.pk}").json()["state"] == "in_review"


def test_refusals_are_400_with_the_services_message_and_nothing_is_stored(signed_in, holder, portal_attachments):
    fake = SimpleUploadedFile("report.pdf", b"MZ not a pdf", "application/pdf")
    response = signed_in.post("/api/v1/holder/appeals/", {"decision": holder.decision.pk, "grounds": "Grounds.",
                                                          "attachments": [fake]})
    assert response.status_code == 400 and response.json() == {"detail": "report.pdf does not look like a .pdf file"}
    assert not Appeal.objects.exists() and not AppealAttachment.objects.exists()

    six = [SimpleUploadedFile(f"p{i}.txt", b"text", "text/plain") for i in range(6)]
    response = signed_in.post("/api/v1/holder/appeals/", {"decision": holder.decision.pk, "grounds": "G.",
                                                          "attachments": six})
    assert response.status_code == 400 and response.json() == {"detail": "Attach at most 5 files."}

    missing = signed_in.post("/api/v1/holder/appeals/", {"decision": holder.decision.pk},
                             content_type="application/json")
    assert missing.status_code == 400 and "grounds" in missing.json()

    ok = signed_in.post("/api/v1/holder/appeals/", {"decision": holder.decision.pk, "grounds": "JSON grounds."},
                        content_type="application/json")
    assert ok.status_code == 201
    again = signed_in.post("/api/v1/holder/appeals/", {"decision": holder.decision.pk, "grounds": "Again."},
                           content_type="application/json")
    assert again.status_code == 409  # a conflict with the appeal as it stands, as in the staff API
    assert again.json() == {"detail": "You already have an open appeal against this decision."}
    assert not portal_attachments.exists() or not any(portal_attachments.iterdir())


def test_writes_are_rate_limited_with_429(signed_in, holder, monkeypatch):
    monkeypatch.setitem(appeals.views.WRITE_RATES, "appeals.message", "2/h")
    appeal = Appeal.objects.get(pk=signed_in.post("/api/v1/holder/appeals/", {
        "decision": holder.decision.pk, "grounds": "G."}, content_type="application/json").json()["id"])
    url = f"/api/v1/holder/appeals/{appeal.pk}/messages"
    statuses = [signed_in.post(url, {"text": f"note {i}"}, content_type="application/json").status_code
                for i in range(3)]
    assert statuses == [201, 201, 429]
    # The pages and the API share the counter: the portal refuses the next one too.
    assert signed_in.post(reverse("appeals:appeal-message", args=[appeal.pk]), {"text": "x"}).status_code == 429


def test_unsafe_methods_need_the_csrf_token(holder):
    client = Client(enforce_csrf_checks=True)
    page = client.get(sign_in_path(holder.account))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    client.post(page.request["PATH_INFO"], {"csrfmiddlewaretoken": token})
    assert client.get("/api/v1/holder/decisions/").status_code == 200  # reads need no token

    body = {"decision": holder.decision.pk, "grounds": "Grounds."}
    refused = client.post("/api/v1/holder/appeals/", body, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert not Appeal.objects.exists()
    accepted = client.post("/api/v1/holder/appeals/", body, content_type="application/json",
                           headers={"X-CSRFToken": client.cookies["csrftoken"].value})
    assert accepted.status_code == 201


def test_a_staff_session_is_not_a_holder(client, holder, make_staff):
    client.force_login(make_staff(Role.ADMIN))
    for url in ("/api/v1/holder/decisions/", "/api/v1/holder/appeals/"):
        assert client.get(url).status_code == 403
    assert client.post("/api/v1/holder/appeals/", {"decision": holder.decision.pk, "grounds": "G."},
                       content_type="application/json").status_code == 403
    assert client.get(reverse("appeals:home")).url == reverse("appeals:start")
    assert not Appeal.objects.exists()


def test_the_holder_endpoints_are_in_the_openapi_schema(client):
    schema = client.get("/api/schema/?format=json").json()
    operations = {(path, method): op for path, ops in schema["paths"].items() for method, op in ops.items()}
    expected = {
        ("/api/v1/holder/decisions/", "get"), ("/api/v1/holder/appeals/", "get"),
        ("/api/v1/holder/appeals/", "post"), ("/api/v1/holder/appeals/{id}/", "get"),
        ("/api/v1/holder/appeals/{id}/messages/", "post"),  # the trailing slash is optional
    }
    found = {(re.sub(r"/\?$", "/", path.replace("{pk}", "{id}")), method) for path, method in operations
             if "holder" in operations[path, method].get("tags", [])}
    assert found == expected, found
    for (path, _method), op in operations.items():
        if "holder" in op.get("tags", []):
            assert op["security"] == [{"holderSession": []}], path
    assert "multipart/form-data" in operations["/api/v1/holder/appeals/", "post"]["requestBody"]["content"]
