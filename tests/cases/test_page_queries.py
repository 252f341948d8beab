"""The reviewer's pages cost the same queries however much they show, and stay bounded as a queue grows
(issue 12: the hot paths at a million rows; the timings are bench/scale.py's, never asserted here)."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from reviewapp.audit.services import SYSTEM
from reviewapp.cases import selectors, views
from reviewapp.cases.models import Campaign, Case
from reviewapp.people.roles import Role
from reviewapp.policy.services import policies_load
from tests.conftest import flag_payload
from tests.factories import ingest_and_group

pytestmark = pytest.mark.django_db


@pytest.fixture
def policy(db):
    [result] = policies_load(directory=settings.POLICIES_DIR, actor=SYSTEM)
    return result.version


@pytest.fixture
def reviewer_client(client, make_staff, policy):
    client.force_login(make_staff(Role.REVIEWER, username="rhea"))
    return client


def _queries(client, url: str) -> tuple[int, str]:
    """The queries of a GET of ``url`` once a first GET has filled the process's caches (content types, policy)."""
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured), response.content.decode()


def _grow(detector, first: int, last: int, *, account: str | None = None) -> None:
    """Flags first..last-1 in campaign c-1 (one account's, or an account each)."""
    ingest_and_group(detector, [
        flag_payload(n, account_id=account or f"acct_{n}", cluster_id="c-1", signal="reasoning_extraction",
                     evidence={"excerpts": [f"Solve step by step, item {n}"]})
        for n in range(first, last)])


def test_the_case_page_costs_the_same_queries_for_3_or_30_flags_and_campaign_peers(reviewer_client, detector):
    _grow(detector, 0, 3, account="acct_main")
    _grow(detector, 100, 103)
    case = Case.objects.get(account__external_id="acct_main")
    url = reverse("review:case", args=[case.pk])
    few, _ = _queries(reviewer_client, url)
    _grow(detector, 3, 30, account="acct_main")
    _grow(detector, 103, 130)
    many, page = _queries(reviewer_client, url)
    assert "30 flags," in page and "Solve step by step" not in page  # the evidence is not opened
    assert many == few


def test_the_campaign_page_costs_the_same_queries_for_3_or_30_accounts(reviewer_client, detector):
    _grow(detector, 0, 3)
    url = reverse("review:campaign", args=[Campaign.objects.get().pk])
    few, _ = _queries(reviewer_client, url)
    _grow(detector, 3, 30)
    many, page = _queries(reviewer_client, url)
    assert len(set(re.findall(r'name="accounts" value="(acct_\d+)"', page))) == 30
    assert many == few


def test_the_queue_counts_its_cases_only_up_to_a_limit(reviewer_client, detector, monkeypatch):
    _grow(detector, 0, 7)
    url = reverse("review:queue", args=["extraction"])
    _, page = _queries(reviewer_client, url)
    assert "7 cases." in page and "+" not in re.search(r"Open cases, [^<]*", page).group(0)
    monkeypatch.setattr(views, "QUEUE_COUNT_LIMIT", 5)
    monkeypatch.setattr(views, "QUEUE_PAGE_SIZE", 2)
    _, page = _queries(reviewer_client, url)
    assert "5+ cases." in page and "Page 1 of 3+" in page
    assert len(re.findall("row-link", page)) == 2


def test_the_queue_offers_the_newest_campaigns_and_still_filters_by_any(reviewer_client, detector, monkeypatch):
    for cluster in range(3):
        ingest_and_group(detector, [flag_payload(f"{cluster}-{n}", account_id=f"acct_{cluster}_{n}",
                                                 cluster_id=f"c-{cluster}", signal="reasoning_extraction")
                                    for n in range(2)])
    oldest, *newest = Campaign.objects.order_by("pk")
    monkeypatch.setattr(selectors, "CAMPAIGN_CHOICES", 2)
    url = reverse("review:queue", args=["extraction"])
    _, page = _queries(reviewer_client, url)
    offered = re.findall(r'<option value="(\d+)"', page)
    assert sorted(map(int, offered)) == sorted(c.pk for c in newest)
    _, page = _queries(reviewer_client, f"{url}?campaign={oldest.pk}")
    assert f'<option value="{oldest.pk}" selected>' in page
    assert sorted(re.findall(r'class="row-link">(acct_\w+)<', page)) == ["acct_0_0", "acct_0_1"]
