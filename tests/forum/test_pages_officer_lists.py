"""The sharing officer's lists behind the home page's counts: pushes by state and purpose, withdrawals of the
last days, inbound matches awaiting review; each paged with its filter kept; 404 for roles that do not read them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reviewapp.forum import services
from reviewapp.forum.content import ShareChoice
from reviewapp.forum.models import ForumPush, ShareWithdrawal

from .conftest import FRONTIER
from .withdrawn_source import decided_case_with_withdrawn_source

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _rows(text: str) -> list[str]:
    return re.findall(r"<tr>.*?</tr>", re.sub(r"\s+", " ", text).split("<tbody>")[1].split("</tbody>")[0])


def _push(state: str, purpose: str = "share", **fields) -> ForumPush:
    return ForumPush.objects.create(purpose=purpose, collection_id=FRONTIER, state=state, bundle_sha256="0" * 64,
                                    created_at=timezone.now(), **fields)


def test_pushes_filtered_by_state_and_purpose(sharing_people):
    _push("pending", last_error="hub unreachable: connection refused")
    _push("failed", purpose="feedback")
    _push("sent")
    officer = _client(sharing_people["officer"])
    assert len(_rows(officer.get(reverse("forum:pushes")).text)) == 3
    pending = _rows(officer.get(reverse("forum:pushes"), {"state": "pending"}).text)
    assert len(pending) == 1 and "hub unreachable" in pending[0]
    failed = _rows(officer.get(reverse("forum:pushes"), {"state": "failed", "purpose": "feedback"}).text)
    assert len(failed) == 1 and "Feedback to a peer" in failed[0] and 'class="status-bad">Failed' in failed[0]
    assert _rows(officer.get(reverse("forum:pushes"), {"state": "failed", "purpose": "share"}).text) == [
        '<tr><td colspan="9">No pushes match.</td></tr>']
    assert _client(sharing_people["compliance"]).get(reverse("forum:pushes")).status_code == 200  # reads shares
    assert _client(sharing_people["reviewer"]).get(reverse("forum:pushes")).status_code == 404


def test_withdrawals_of_the_last_days(world, sharing_people):
    _account, case = world.account()
    proposal = services.share_propose(proposer=sharing_people["reviewer"], source=case, collection_id=FRONTIER,
                                      choice=ShareChoice())
    services.share_withdraw(officer=sharing_people["officer"], proposal=proposal, reason="Wrong cluster entirely.")
    officer = _client(sharing_people["officer"])
    (row,) = _rows(officer.get(reverse("forum:withdrawals"), {"days": "7"}).text)
    assert f'href="{reverse("forum:share", args=[proposal.pk])}"' in row and "Wrong cluster entirely." in row
    assert "The whole share" in row and "otto-officer" in row
    ShareWithdrawal.objects.update(withdrawn_at=timezone.now() - timedelta(days=9))
    assert "Nothing was withdrawn in the last 7 days." in officer.get(reverse("forum:withdrawals"),
                                                                       {"days": "7"}).text
    assert len(_rows(officer.get(reverse("forum:withdrawals"), {"days": "30"}).text)) == 1


def test_matches_awaiting_review_are_the_live_ones_of_open_cases(world, monkeypatch, sharing_people):
    waiting = decided_case_with_withdrawn_source(world, monkeypatch, external_id="acct_in_review",
                                                 simhash="1111111111111111", revoke=False, decided=False)
    decided_case_with_withdrawn_source(world, monkeypatch, external_id="acct_decided_already",
                                       simhash="2222222222222222", revoke=False)
    decided_case_with_withdrawn_source(world, monkeypatch, external_id="acct_withdrawn_match",
                                       simhash="3333333333333333", decided=False)
    officer = _client(sharing_people["officer"])
    assert len(_rows(officer.get(reverse("forum:matches")).text)) == 3
    (row,) = _rows(officer.get(reverse("forum:matches"), {"awaiting": "1"}).text)
    assert "acct_in_review" in row and f'href="{reverse("review:case", args=[waiting.case.pk])}"' in row
    assert "(In review)" in row
    assert _client(sharing_people["compliance"]).get(reverse("forum:matches")).status_code == 200  # reads everything
