"""The demo's second lab (reviewapp/forum/demo.py, seeded into make run's hub): its bundle passes the OASIS
validator, and pulled from a real hub it matches demo accounts by pseudonym and a demo template by fingerprint."""

from __future__ import annotations

import json

import pytest

from flags.demo import REASONING_TEMPLATES
from reviewapp.forum import inbound, taxii
from reviewapp.forum.demo import MATCHED_ACCOUNTS, second_lab_objects, write_seed
from reviewapp.forum.models import InboundMatch
from reviewapp.forum.trust_groups import trust_group

from .conftest import FRONTIER, ForumHub, _free_port, assert_valid_bundle

pytestmark = pytest.mark.django_db


def test_the_second_labs_bundle_matches_demo_accounts_and_a_demo_template(forum_hub, world, tmp_path):
    objects = second_lab_objects()
    bundle = {"type": "bundle", "id": "bundle--5b0e6d3c-2f1a-4c7e-9d8b-0a1b2c3d4e5f", "objects": objects}
    assert_valid_bundle(bundle)
    assert list(json.loads(write_seed(tmp_path / "seed.json").read_text())) == [FRONTIER]
    seen = [world.account(external_id, flags=[{"simhash": "00000000000000ff"}])[0]
            for external_id in MATCHED_ACCOUNTS]
    template, _ = world.account("acct_template_user", flags=[{"simhash": REASONING_TEMPLATES[0].simhash64}])
    taxii.post_bundle(trust_group(FRONTIER), json.dumps(bundle).encode())
    inbound.pseudonyms_backfill()
    inbound.fingerprints_backfill()
    inbound.inbound_pull(group=trust_group(FRONTIER))
    matches = {(m.account_id, m.kind) for m in InboundMatch.objects.all()}
    assert {(a.pk, "pseudonym") for a in seen} <= matches
    assert (template.pk, "fingerprint") in matches


def test_make_runs_hub_seeded_from_its_data_file_answers_the_pull(world, settings, tmp_path, artifacts_dir):
    """`make run` starts the hub with the second lab's objects in its data file (``run_forum_hub --seed``), not
    posted to it. Its user-account objects carry neither ``created`` nor ``modified``: medallion dates such objects
    by a hidden ``_date_added`` that only its own POST sets, and answered every read of the collection with a 500
    (beat's pull failed every time; `make load` found it) until hub_data dated them the same way."""
    port = _free_port()
    hub = ForumHub(port, tmp_path / "hub", artifacts_dir / f"forum-hub-seeded-{port}.log")
    settings.FORUM_TAXII_API_ROOT = hub.api_root
    seen = [world.account(external_id, flags=[{"simhash": "00000000000000ff"}])[0] for external_id in MATCHED_ACCOUNTS]
    hub.start(seed=write_seed(tmp_path / "seed.json"))
    try:
        inbound.pseudonyms_backfill()
        result = inbound.inbound_pull(group=trust_group(FRONTIER))
    finally:
        hub.stop()
    assert not result.errors, result.errors
    assert result.stored == len(second_lab_objects())
    matches = {(m.account_id, m.kind) for m in InboundMatch.objects.all()}
    assert {(a.pk, "pseudonym") for a in seen} <= matches
