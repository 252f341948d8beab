import json

import pytest

from flags.services import flags_ingest
from reviewapp.audit.services import SYSTEM
from reviewapp.cases.models import Case
from tests.conftest import flag_payload
from tests.support import group_all_flags


def seed_cases(detector, flags) -> list[Case]:
    """Real flags through the real ingestion and grouping, for review tests."""
    flags_ingest(items=[(i, json.dumps(f).encode()) for i, f in enumerate(flags)], detector=detector, actor=SYSTEM)
    group_all_flags()
    return list(Case.objects.order_by("pk"))


@pytest.fixture
def case(detector):
    (only,) = seed_cases(detector, [flag_payload(1, evidence={"excerpts": ["Solve step by step: {problem}"]}),
                                    flag_payload(2, account_id="acct_1")])
    from reviewapp.cases.models import Account

    Account.objects.filter(pk=only.account_id).update(contact_email="holder@example.com")
    only.refresh_from_db()
    return only
