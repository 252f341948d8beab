"""The Forum API under /api/v1/forum/: the same services as the pages — propose, preview (exact bytes and hash),
approve by hash (four eyes), reject, narrow, withdraw, the register, inbound and feedback — with 403 for a role
that may not, 404 for what one may not know exists, 400 naming the field, 409 for a share already decided."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from reviewapp.forum import services
from reviewapp.forum.content import ShareChoice
from reviewapp.forum.models import ShareProposal, ShareState

from .conftest import FRONTIER

pytestmark = pytest.mark.django_db
API = "/api/v1/forum/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _post(client, path, body):
    return client.post(API + path, json.dumps(body), content_type="application/json")


def test_propose_preview_approve_through_the_api(world, sharing_people):
    _account, case = world.account()
    reviewer = _client(sharing_people["reviewer"])
    refused = _post(reviewer, "proposals", {"source": "case", "source_id": case.pk, "collection_id": FRONTIER,
                                            "account_pseudonyms": True, "tlp": "clear"})
    assert refused.status_code == 400 and "tlp" in refused.json()["detail"]
    made = _post(reviewer, "proposals", {"source": "case", "source_id": case.pk, "collection_id": FRONTIER})
    assert made.status_code == 201, made.content
    pk = made.json()["id"]
    assert made.json()["state"] == "awaiting_approval"
    officer = _client(sharing_people["officer"])
    preview = officer.get(f"{API}proposals/{pk}/preview").json()
    assert preview["version"] == 1 and len(preview["bundle_sha256"]) == 64
    assert json.loads(preview["canonical"]) == preview["bundle"]
    # The proposer may not approve their own share (four eyes).
    assert _post(reviewer, f"proposals/{pk}/approve",
                 {"version": 1, "bundle_sha256": preview["bundle_sha256"]}).status_code == 403
    stale = _post(officer, f"proposals/{pk}/approve", {"version": 1, "bundle_sha256": "a" * 64})
    assert stale.status_code == 400 and "bundle_sha256" in stale.json()["detail"]
    ok = _post(officer, f"proposals/{pk}/approve", {"version": 1, "bundle_sha256": preview["bundle_sha256"]})
    assert ok.status_code == 200 and ok.json()["state"] == "approved" and ok.json()["delivery"] == "Pending"
    again = _post(_client(sharing_people["officer2"]), f"proposals/{pk}/reject", {"reason": "late"})
    assert again.status_code == 409
    register = _client(sharing_people["compliance"]).get(f"{API}register").json()["results"]
    assert register[0]["proposal"] == pk and register[0]["bundle_sha256"] == preview["bundle_sha256"]
    withdrawn = _post(officer, f"proposals/{pk}/withdraw", {"reason": "Wrong cluster."})
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "withdrawn"


def test_visibility_and_roles(world, sharing_people, make_staff):
    _account, case = world.account()
    proposal = services.share_propose(proposer=sharing_people["reviewer"], source=case, collection_id=FRONTIER,
                                      choice=ShareChoice())
    stranger = _client(make_staff())
    assert stranger.get(f"{API}proposals/{proposal.pk}").status_code == 404
    assert stranger.get(f"{API}proposals").json()["results"] == []
    assert stranger.get(f"{API}register").status_code == 403
    assert stranger.get(f"{API}inbound").status_code == 403
    compliance = _client(sharing_people["compliance"])
    assert compliance.get(f"{API}proposals/{proposal.pk}").status_code == 200
    assert _post(compliance, f"proposals/{proposal.pk}/reject", {"reason": "no"}).status_code == 403
    assert _post(compliance, f"proposals/{proposal.pk}/withdraw", {"reason": "no"}).status_code == 403
    officer = _client(sharing_people["officer"])
    narrowed = _post(officer, f"proposals/{proposal.pk}/narrow", {"volume_stats": False, "reason": "less"})
    assert narrowed.status_code == 200 and narrowed.json()["current_version"] == 2
    widened = _post(officer, f"proposals/{proposal.pk}/narrow", {"account_pseudonyms": True, "reason": "more"})
    assert widened.status_code == 400
    rejected = _post(officer, f"proposals/{proposal.pk}/reject", {"reason": "Too broad."})
    assert rejected.json()["state"] == ShareState.REJECTED
    assert ShareProposal.objects.get().rejection_reason == "Too broad."
    assert officer.get(f"{API}inbound").json()["results"] == []
    assert officer.get(f"{API}matches").json()["results"] == []
    assert officer.get(f"{API}inbound/5").status_code == 404
