"""A pull that stops after a page (its worker killed, the hub gone) resumes from its cursor and loses nothing.

A hub dates every object of one POST alike (medallion: the request's time), so objects of one bundle share their
``date_added`` across pages; and ``added_after`` is exclusive. A cursor set to the last page's date on a page that
has more after it would skip the rest of that bundle for good."""

from __future__ import annotations

import pytest

from reviewapp.forum import inbound, taxii
from reviewapp.forum.models import InboundObject, PullCursor
from reviewapp.forum.trust_groups import trust_group

from .conftest import FRONTIER
from .test_inbound import SecondLab, _post, _pull

pytestmark = pytest.mark.django_db


def test_a_pull_stopped_after_its_first_page_resumes_without_losing_the_rest_of_the_bundle(forum_hub, world):
    lab = SecondLab()
    indicators = [lab.indicator(f"{n:016x}") for n in range(10)]
    _post(forum_hub, lab.bundle(indicators))  # 12 objects, one date_added
    group = trust_group(FRONTIER)
    PullCursor.objects.get_or_create(collection_id=FRONTIER)

    # What a worker does before it dies: the first page stored (its own transaction), the rest never read.
    first = next(taxii.pull(group, per_request=5))
    inbound._page_store(group, first, inbound.PullResult(collection_id=FRONTIER))
    assert InboundObject.objects.count() == 5

    resumed = _pull(per_request=5)
    expected = {o["id"] for o in lab.bundle(indicators)["objects"]}
    stored = list(InboundObject.objects.values_list("stix_id", flat=True))
    assert resumed.stored == 7, f"the resumed pull stored {resumed.stored} of the 7 objects the first page left"
    assert sorted(stored) == sorted(expected) and len(stored) == len(set(stored)) == 12

    # Once the collection is read to its end the cursor is the hub's last date: a pull again stores nothing.
    assert PullCursor.objects.get(collection_id=FRONTIER).added_after == first.added_last
    assert _pull(per_request=5).stored == 0
