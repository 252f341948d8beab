"""The beat task through the real Celery worker and a real medallion hub: a match becomes a flag of detector
``forum`` that normal grouping puts into the account's case (for a reviewer; nothing enforced), once."""

from __future__ import annotations

import pytest

from flags.models import Flag
from reviewapp.audit.models import AuditEvent
from reviewapp.forum.models import InboundMatch, InboundObject
from reviewapp.forum.pseudonyms import account_pseudonym
from reviewapp.forum.tasks import pull_inbound
from tests.support import wait_for

from .conftest import FRONTIER
from .test_inbound import SecondLab, _post

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group("worker"), pytest.mark.django_db(transaction=True)]


def test_beat_pull_on_the_worker_flags_a_match_once_and_grouping_takes_it(celery_worker, forum_hub, world):
    account, case = world.account("acct_pulled_by_beat", decided=False, flags=[{"simhash": "0123456789abcdef"}])
    lab = SecondLab()
    _post(forum_hub, lab.bundle([*lab.accounts([account_pseudonym(account.external_id)]),
                                 lab.indicator("0123456789abcdee")]))
    pull_inbound.delay()  # what beat sends (no result backend: the test watches the database)
    flags = Flag.objects.filter(detector__slug="forum", account_external_id=account.external_id)
    wait_for(lambda: InboundMatch.objects.count() == 2, timeout=120, what="the pull's two matches")
    wait_for(lambda: flags.filter(case__isnull=False).count() == 2, timeout=60, what="grouping of the forum flags")
    assert set(flags.values_list("case_id", flat=True)) == {case.pk}  # the account's open case, for a reviewer
    account.refresh_from_db()
    assert account.enforcement_status == "none"

    pulls = AuditEvent.objects.filter(action="forum.inbound_pulled", target_id=FRONTIER)
    before = pulls.count()
    pull_inbound.delay()
    wait_for(lambda: pulls.count() > before, timeout=120, what="the second pull")
    assert pulls.order_by("-id").first().data["stored"] == 0
    assert InboundMatch.objects.count() == 2 and flags.count() == 2 and InboundObject.objects.count() == 5
