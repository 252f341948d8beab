"""Feedback on an inbound object whose collection is no longer configured (the trust group was removed from
FORUM_COLLECTIONS after the object arrived): the page says so and re-renders with the reason, the API answers
400 naming collection_id — never a 500 — and nothing is queued for the hub."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reviewapp.forum.models import ForumPush, InboundMatch, InboundObject

from .conftest import COLLECTIONS, FRONTIER

pytestmark = pytest.mark.django_db
REMOVED = COLLECTIONS[1]


@pytest.fixture
def orphan(world, settings):
    """An object with a match, from a collection that is then dropped from the configuration."""
    account, _ = world.account()
    obj = InboundObject.objects.create(stix_id="indicator--5b1f5a2c-7a38-4a3f-9e3a-1c6a7d0e9b15",
                                       modified="2026-11-20T00:00:00.000Z", stix_type="indicator",
                                       collection_id=REMOVED, tlp="amber", body={"name": "from a removed group"},
                                       received_at=timezone.now())
    InboundMatch.objects.create(stix_id=obj.stix_id, inbound=obj, collection_id=REMOVED, account=account,
                                kind="fingerprint", distance=1, flag_external_id=f"{obj.stix_id}/{account.pk}",
                                matched_at=timezone.now())
    settings.FORUM_COLLECTIONS = {FRONTIER: settings.FORUM_COLLECTIONS[FRONTIER]}
    return obj


def _officer(sharing_people) -> Client:
    client = Client()
    client.force_login(sharing_people["officer"])
    return client


def test_the_page_says_feedback_is_not_possible_and_a_post_is_refused_with_the_reason(orphan, sharing_people):
    officer = _officer(sharing_people)
    page = html.unescape(officer.get(reverse("forum:inbound")).text)
    row = re.search(rf'<tr id="inbound-{orphan.pk}">.*?</tr>', page, re.S).group(0)
    assert f"No feedback possible: collection {REMOVED} is no longer a configured trust group." in row
    assert reverse("forum:feedback", args=[orphan.pk]) not in row
    assert f"{REMOVED} (no longer configured)" in row  # named as what it is, where a group's name would be

    refused = officer.post(reverse("forum:feedback", args=[orphan.pk]), {"verdict": "confirmed"})
    assert refused.status_code == 422
    text = re.sub(r"\s+", " ", html.unescape(refused.content.decode()))
    assert "Feedback not sent: 1 thing to correct" in text
    assert f'<a href="#inbound-{orphan.pk}">Feedback on {orphan.stix_id} not sent: it came from a collection that ' \
           "is no longer configured" in text
    assert f"collection '{REMOVED}' is not a configured trust group (known: {FRONTIER}" in text
    assert not ForumPush.objects.exists()


def test_a_verdict_we_do_not_know_re_renders_the_page_naming_it(world, sharing_people):
    account, _ = world.account()
    obj = InboundObject.objects.create(stix_id="indicator--6b1f5a2c-7a38-4a3f-9e3a-1c6a7d0e9b16",
                                       modified="2026-11-20T00:00:00.000Z", stix_type="indicator",
                                       collection_id=FRONTIER, tlp="amber", body={}, received_at=timezone.now())
    refused = _officer(sharing_people).post(reverse("forum:feedback", args=[obj.pk]), {"verdict": "maybe"})
    assert refused.status_code == 422 and "not sent: verdict: must be one of" in html.unescape(refused.text)
    assert not ForumPush.objects.exists() and account


def test_the_api_answers_400_naming_the_collection(orphan, sharing_people):
    answer = _officer(sharing_people).post(f"/api/v1/forum/inbound/{orphan.pk}/feedback",
                                           json.dumps({"verdict": "confirmed"}), content_type="application/json")
    assert answer.status_code == 400
    (message,) = answer.json()["collection_id"]
    assert "no longer configured" in message and REMOVED in message
    assert not ForumPush.objects.exists()
