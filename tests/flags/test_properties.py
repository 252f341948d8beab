"""Property: any mix of valid and invalid items stores exactly the valid ones, each once, and says so."""

import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flags.models import Flag
from flags.services import flags_ingest
from reviewapp.audit.services import SYSTEM
from tests.conftest import flag_payload

BREAKERS = [
    {"score": 2.5}, {"score": -1}, {"signal": "unknown_signal"}, {"observed_to": "2020-01-01T00:00:00Z"},
    {"detector": "another-detector"}, {"surprise": True}, {"account_id": ""}, {"request_count": -3},
    {"evidence": {"excerpts": ["x"] * 25}}, {"observed_from": "not a date"},
]

item = st.tuples(
    st.integers(min_value=0, max_value=30),             # external id: collisions are likely on purpose
    st.one_of(st.none(), st.sampled_from(BREAKERS)),    # None: valid
    st.floats(min_value=0, max_value=1),                # score of a valid item
)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.lists(item, min_size=1, max_size=40), second=st.lists(item, min_size=1, max_size=40))
def test_exactly_the_valid_items_are_stored_once(detector, first, second):
    prefix = uuid.uuid4().hex[:8]  # examples share one transaction: keep each example's ids apart

    def build(spec):
        body = flag_payload(f"{prefix}-{spec[0]}", score=spec[2])
        if spec[1]:
            body.update(spec[1])
        return body

    stored: dict[str, float] = {}
    for batch in (first, second):
        bodies = [build(spec) for spec in batch]
        result = flags_ingest(items=[(i, json.dumps(b).encode()) for i, b in enumerate(bodies)],
                              detector=detector, actor=SYSTEM)
        valid = [(i, b) for i, (b, spec) in enumerate(zip(bodies, batch, strict=True)) if spec[1] is None]
        new = {}
        for _, body in valid:
            if body["external_id"] not in stored:
                new.setdefault(body["external_id"], body["score"])
        assert result.created == len(new)
        assert result.duplicates == len(valid) - len(new)
        assert sorted(r["index"] for r in result.rejected) == [i for i, s in enumerate(batch) if s[1] is not None]
        stored.update(new)
    in_db = dict(Flag.objects.filter(external_id__startswith=f"f-{prefix}-").values_list("external_id", "score"))
    assert in_db == stored
