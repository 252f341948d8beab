"""Browser-facing headers: pages and answers that show evidence or personal data are never stored
(``Cache-Control: no-store``), and every page carries a Content-Security-Policy its own scripts pass."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from appeals.services import appeal_file
from reviewapp.people.roles import Role
from tests.appeals.conftest import enforced_decision, sign_in_path
from tests.support import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture
def holder(detector, make_staff, policy, settings, tmp_path):
    settings.APPEAL_ATTACHMENTS_DIR = tmp_path / "attachments"
    holder = enforced_decision(detector, make_staff, policy["extraction"], account_id="acct_h",
                               email="holder@example.org")
    holder.appeal = appeal_file(account=holder.account, decision=holder.decision, grounds="A benchmark run.",
                                uploads=[])
    return holder


def no_store(response) -> bool:
    return "no-store" in response.get("Cache-Control", "")


def test_staff_pages_with_evidence_or_personal_data_are_not_stored(client, holder, make_staff):
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    case = holder.decision.case_id
    evidence = client.post(f"/cases/{case}/evidence/")  # opening it is an audited POST
    assert evidence.status_code == 200 and no_store(evidence)
    for path in (f"/cases/{case}/", f"/statements/{holder.statement.pk}/",
                 f"/review/appeals/{holder.appeal.pk}/", "/review/appeals/",
                 f"/api/v1/cases/{case}/", f"/api/v1/appeals/{holder.appeal.pk}/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert no_store(response), path
    assert not no_store(client.get("/api/schema/"))  # nothing personal: caches may keep it


def test_the_holders_portal_and_api_are_not_stored(holder):
    portal = Client()
    portal.post(sign_in_path(holder.account))
    for path in ("/appeals/account/", f"/appeals/statements/{holder.statement.pk}/",
                 f"/appeals/appeal/{holder.appeal.pk}/", "/api/v1/holder/decisions/"):
        response = portal.get(path)
        assert response.status_code == 200, path
        assert no_store(response), path


def test_every_page_has_a_content_security_policy_without_inline_code(client, holder, make_staff):
    client.force_login(make_staff(Role.REVIEWER))
    for path in ("/", "/queues/", "/policy/", "/login/"):
        policy = client.get(path)["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
        assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'", path
        assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>"), "an inline <script>"),
    (re.compile(r"<style\b"), "a <style> element"),
    (re.compile(r"\sstyle="), "a style attribute"),
    (re.compile(r"\son[a-z]+=", re.IGNORECASE), "an inline event handler"),
    (re.compile(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", re.IGNORECASE), "a javascript: URL"),
]


def test_no_template_has_code_the_policy_would_refuse():
    found = [f"{path.relative_to(ROOT)}: {what}" for path in sorted((ROOT / "templates").rglob("*.html"))
             for pattern, what in INLINE if pattern.search(path.read_text())]
    assert not found, "\n".join(found)
