"""Bounded holder and reviewer text on the appeal side (README "Limits on what people type"): grounds,
affiliation, messages and outcome reasons are refused over their limits by the services (never cut), by the
holder API (400 naming the field), and by the portal's form, which states the limit under the box, has no
``maxlength`` for the browser to cut a paste at, and keeps all that was typed when it refuses."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from appeals.models import Appeal, AppealMessage
from appeals.services import AppealError, appeal_claim, appeal_decide, appeal_file, appeal_message_add

from .review_fixtures import (  # noqa: F401 (fixtures, asked for by name)
    appeal_staff_fixture,
    attachments_dir_fixture,
    contested_fixture,
)

pytestmark = pytest.mark.django_db


def test_the_service_refuses_over_long_grounds_and_affiliation_and_stores_nothing(holder):
    with pytest.raises(AppealError, match="Grounds is 20,001 characters long; the limit is 20,000"):
        appeal_file(account=holder.account, decision=holder.decision, grounds="g" * 20_001)
    with pytest.raises(AppealError, match="Affiliation is 201 characters long; the limit is 200"):  # was cut
        appeal_file(account=holder.account, decision=holder.decision, grounds="Grounds.", affiliation="a" * 201)
    assert not Appeal.objects.exists()
    appeal = appeal_file(account=holder.account, decision=holder.decision, grounds="g" * 20_000)
    assert len(appeal.grounds) == 20_000


def test_messages_and_outcome_reasons_are_bounded_by_their_services(contested):
    appeal, reviewer = contested.appeal, contested.staff.outsider
    appeal_claim(reviewer=reviewer, appeal=appeal)
    with pytest.raises(AppealError, match="Message is 20,001 characters long; the limit is 20,000"):
        appeal_message_add(appeal=appeal, text="m" * 20_001, staff=reviewer)
    with pytest.raises(AppealError, match="Message is 20,001 characters long; the limit is 20,000"):
        appeal_message_add(appeal=appeal, text="m" * 20_001, holder=contested.account)
    assert not AppealMessage.objects.exists()
    with pytest.raises(AppealError, match="Reasons for the holder is 10,001 characters long; the limit is 10,000"):
        appeal_decide(reviewer=reviewer, appeal=appeal, outcome="upheld", reason="r" * 10_001)
    assert Appeal.objects.get(pk=appeal.pk).state == Appeal.State.IN_REVIEW


def test_the_staff_api_answers_400_naming_the_field(client, contested):
    reviewer = contested.staff.outsider
    appeal_claim(reviewer=reviewer, appeal=contested.appeal)
    client.force_login(reviewer)
    response = client.post(f"/api/v1/appeals/{contested.appeal.pk}/outcome",
                           {"outcome": "upheld", "reason": "r" * 10_001}, content_type="application/json")
    assert response.status_code == 400 and "10000" in str(response.json()["reason"])


def test_the_holder_api_answers_400_naming_the_field_and_the_limit(signed_in, holder):
    response = signed_in.post("/api/v1/holder/appeals/", {"decision": holder.decision.pk, "grounds": "g" * 20_001},
                              content_type="application/json")
    assert response.status_code == 400 and "20000" in str(response.json()["grounds"])
    assert not Appeal.objects.exists()


def test_the_appeal_form_states_the_limit_and_keeps_over_long_grounds(signed_in, holder):
    url = reverse("appeals:appeal-file", args=[holder.decision.pk])
    page = signed_in.get(url).content.decode()
    box = re.search(r'<textarea name="grounds"[^>]*>', page).group(0)
    assert "maxlength" not in box  # Chromium cut pasted grounds at 20,000 characters, silently
    assert 'data-max-chars="20000"' in box and "id_grounds_limit" in box  # aria-describedby
    assert "At most 20,000 characters." in page
    grounds = "We ran a published benchmark." * 700 + "!" * 700  # 21,000 characters
    response = signed_in.post(url, {"grounds": grounds, "affiliation": "Example Lab"})
    assert response.status_code == 422
    page = response.content.decode()
    summary = re.search(r'<div class="error-box" role="alert" id="appeal-error".*?</div>', page, re.S).group(0)
    assert 'href="#id_grounds"' in summary and "This is 21000 characters long; the limit is 20000." in summary
    assert grounds in page and 'value="Example Lab"' in page  # all that was typed, kept
    assert not Appeal.objects.exists()


def test_files_do_not_count_towards_the_body_limit_but_fields_do(signed_in, holder, settings, portal_attachments):
    """DATA_UPLOAD_MAX_MEMORY_SIZE bounds the form's fields; attachments have their own limits (5 MB each)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from .conftest import PDF

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 50_000
    url = reverse("appeals:appeal-file", args=[holder.decision.pk])
    too_much = signed_in.post(url, {"grounds": "g" * 10_000, "affiliation": "a" * 60_000})
    assert too_much.status_code == 413
    page = too_much.content.decode()
    assert "Back to your decisions" in page and "50000 bytes" in page  # the portal's layout, naming the limit
    scan = SimpleUploadedFile("scan.pdf", PDF + b"%" * 200_000, "application/pdf")
    filed = signed_in.post(url, {"grounds": "See the attached scan.", "attachments": [scan]})
    assert filed.status_code == 302
    assert Appeal.objects.get().attachments.get().size > 200_000
