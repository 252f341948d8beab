import pytest

from tests.conftest import flag_payload
from tests.factories import account_contact_set, ingest_and_group


@pytest.fixture
def case(detector):
    (only,) = ingest_and_group(detector, [flag_payload(1, evidence={"excerpts": ["Solve step by step: {problem}"]}),
                                          flag_payload(2, account_id="acct_1")])
    account_contact_set("acct_1", "holder@example.com")
    only.refresh_from_db()
    return only
