"""Every Forum list is paged (Django's Paginator, templates/_pager.html) with its filters kept in the pager's
links; a second page shows what the first did not, and a page costs the same queries for one row as for many."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from reviewapp.forum import services, views
from reviewapp.forum.content import ShareChoice
from reviewapp.forum.models import ForumPush, InboundMatch, InboundObject, ShareProposal
from reviewapp.forum.previews import share_preview

from .conftest import COLLECTIONS, FRONTIER

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _pager(text: str) -> str:
    return re.search(r'<nav aria-label="Pages">.*?</nav>', text, re.S).group(0)


def _next(text: str) -> str:
    return re.search(r'href="(\?[^"]*)" rel="next"', _pager(text)).group(1).replace("&amp;", "&")


def _shares(world, people, n: int):
    made = []
    for _ in range(n):
        _account, case = world.account()
        made.append(services.share_propose(proposer=people["reviewer"], source=case, collection_id=FRONTIER,
                                           choice=ShareChoice()))
    return made


def test_shares_second_page_keeps_the_state_filter(world, sharing_people, small_pages):
    proposals = _shares(world, sharing_people, 4)
    services.share_reject(officer=sharing_people["officer"], proposal=proposals[0], reason="No.")
    officer = _client(sharing_people["officer"])
    first = officer.get(reverse("forum:shares"), {"state": "awaiting_approval"}).text
    assert "Page 1 of 2" in _pager(first)
    link = _next(first)
    assert link == "?state=awaiting_approval&page=2"
    second = officer.get(reverse("forum:shares") + link).text
    shown = set(re.findall(r"<td><a href=\"/forum/shares/(\d+)/\">", first + second))
    assert shown == {str(p.pk) for p in proposals[1:]}  # the rejected one is filtered out on both pages
    assert 'rel="prev"' in _pager(second) and "state=awaiting_approval&amp;page=1" in _pager(second)


def test_register_second_page_and_constant_queries(world, sharing_people, small_pages):
    proposals = _shares(world, sharing_people, 2)
    def approve(proposal):
        preview = share_preview(user=sharing_people["officer"], proposal=proposal)
        services.share_approve(officer=sharing_people["officer"], proposal=proposal, version_number=1,
                               bundle_sha256=preview.sha256)

    for proposal in proposals:
        approve(proposal)
    compliance = _client(sharing_people["compliance"])
    with CaptureQueriesContext(connection) as two:
        first = compliance.get(reverse("forum:register")).text
    assert "Page 1 of 1" in _pager(first) and first.count("Pending") == 2
    for proposal in _shares(world, sharing_people, 3):
        approve(proposal)
    with CaptureQueriesContext(connection) as more:
        first = compliance.get(reverse("forum:register")).text
    assert len(more) == len(two)  # no query per row (delivery and withdrawals come with the page)
    second = compliance.get(reverse("forum:register") + _next(first)).text
    third = compliance.get(reverse("forum:register") + _next(second)).text
    shown = re.findall(r'<a href="/forum/shares/(\d+)/">', first + second + third)
    assert sorted(shown) == sorted(str(p.pk) for p in ShareProposal.objects.all())


def test_inbound_second_page_keeps_the_collection_and_costs_no_query_per_row(world, sharing_people, small_pages):
    account, _ = world.account()
    other = COLLECTIONS[1]

    def received(n: int, collection: str) -> None:
        for i in range(n):
            obj = InboundObject.objects.create(
                stix_id=f"indicator--00000000-0000-4000-8000-{collection[:4]}{InboundObject.objects.count():08d}",
                modified="2026-11-20T00:00:00.000Z", stix_type="indicator", collection_id=collection, tlp="amber",
                body={"name": f"pattern {collection[:4]} {i}"}, received_at=timezone.now())
            InboundMatch.objects.create(stix_id=obj.stix_id, inbound=obj, collection_id=collection, account=account,
                                        kind="fingerprint", distance=1, flag_external_id=f"{obj.stix_id}/x",
                                        matched_at=timezone.now())

    received(2, FRONTIER)
    received(1, other)
    officer = _client(sharing_people["officer"])
    with CaptureQueriesContext(connection) as few:
        officer.get(reverse("forum:inbound"), {"collection": FRONTIER})
    received(2, FRONTIER)
    with CaptureQueriesContext(connection) as many:
        first = officer.get(reverse("forum:inbound"), {"collection": FRONTIER}).text
    assert len(many) == len(few)
    assert f'<option value="{FRONTIER}" selected>' in first and "Page 1 of 2" in _pager(first)
    assert _next(first) == f"?collection={FRONTIER}&page=2"
    second = officer.get(reverse("forum:inbound") + _next(first)).text
    names = re.findall(r"pattern (\w{4}) \d", first + second)
    assert len(names) == 4 and set(names) == {FRONTIER[:4]}  # the other collection's object on neither page
    assert second.count("distance 1") == 2


def test_pushes_second_page_keeps_both_filters(sharing_people, small_pages):
    for state in ("failed", "failed", "failed", "sent"):
        ForumPush.objects.create(purpose="share", collection_id=FRONTIER, state=state, bundle_sha256="0" * 64,
                                 created_at=timezone.now())
    officer = _client(sharing_people["officer"])
    first = officer.get(reverse("forum:pushes"), {"state": "failed", "purpose": "share"}).text
    link = _next(first)
    assert link == "?state=failed&purpose=share&page=2"
    second = officer.get(reverse("forum:pushes") + link).text
    assert second.count("status-bad\">Failed") == 1 and "Page 2 of 2" in _pager(second)


def test_the_api_lists_are_paged_by_cursor(world, sharing_people):
    _shares(world, sharing_people, 3)
    officer = _client(sharing_people["officer"])
    first = officer.get("/api/v1/forum/proposals", {"page_size": 2}).json()
    assert len(first["results"]) == 2 and first["next"]
    second = officer.get(first["next"]).json()
    assert len(second["results"]) == 1 and second["next"] is None
    assert {r["id"] for r in first["results"] + second["results"]} == set(
        ShareProposal.objects.all().values_list("pk", flat=True))
    assert officer.get("/api/v1/forum/inbound", {"page_size": 501}).status_code == 400
