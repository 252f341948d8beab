"""A forum-detector flag whose source object the peer revoked is marked on the case page — in the flag table and
in the opened evidence — as "withdrawn by the source (peer revoked object X at T)"; the case's own flags are not.
Flags reads no Forum table: the marking comes through flags.withdrawals, which the Forum app registers into."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client
from django.urls import reverse

from flags.models import Flag
from flags.withdrawals import ref_of, withdrawals_of
from reviewapp.people.roles import Role

from .withdrawn_source import decided_case_with_withdrawn_source

pytestmark = pytest.mark.django_db


def _page(user, case, *, evidence: bool = False) -> str:
    client = Client()
    client.force_login(user)
    if evidence:
        response = client.post(reverse("review:case-evidence", args=[case.pk]))
    else:
        response = client.get(reverse("review:case", args=[case.pk]))
    assert response.status_code == 200
    return re.sub(r"\s+", " ", html.unescape(response.content.decode()))


def _flag_rows(text: str) -> list[str]:
    table = re.search(r'<section aria-labelledby="flags-h">.*?</section>', text).group(0)
    return re.findall(r"<tr>.*?</tr>", table.split("<tbody>")[1])


def test_the_case_page_marks_the_withdrawn_forum_flag_and_only_it(world, monkeypatch, make_staff):
    withdrawn = decided_case_with_withdrawn_source(world, monkeypatch, external_id="acct_withdrawn_source")
    expected = f"Withdrawn by the source</strong> <small>(peer revoked object {withdrawn.indicator['id']} at " \
               "2026-11-04 00:00 UTC)</small>"
    text = _page(make_staff(Role.SENIOR_REVIEWER), withdrawn.case)
    rows = _flag_rows(text)
    assert len(rows) == 2
    (forum_row,) = [r for r in rows if "forum" in r]
    (own_row,) = [r for r in rows if "template-miner" in r]
    assert expected in forum_row and "Withdrawn" not in own_row
    assert "1 of these flags was withdrawn by its source" in text

    evidence = _page(make_staff(Role.COMPLIANCE_OFFICER), withdrawn.case, evidence=True)
    articles = re.findall(r'<article class="evidence">.*?</article>', evidence)
    (forum_article,) = [a for a in articles if withdrawn.flag.external_id in a]
    assert (f"Withdrawn by the source</strong> (peer revoked object {withdrawn.indicator['id']} at 2026-11-04 00:00 "
            "UTC): this evidence no longer counts.") in forum_article
    assert sum("Withdrawn by the source" in a for a in articles) == 1


def test_before_the_peer_revokes_nothing_is_marked(world, monkeypatch, make_staff):
    live = decided_case_with_withdrawn_source(world, monkeypatch, external_id="acct_live_source", revoke=False)
    text = _page(make_staff(Role.SENIOR_REVIEWER), live.case)
    assert len(_flag_rows(text)) == 2 and "Withdrawn by the source" not in text and "flags-withdrawn" not in text
    assert withdrawals_of([ref_of(live.flag)]) == {}


def test_the_provider_answers_in_constant_queries(world, monkeypatch, django_assert_num_queries):
    one = decided_case_with_withdrawn_source(world, monkeypatch, external_id="acct_w1", simhash="aaaaaaaaaaaaaaaa")
    own = Flag.objects.select_related("detector").get(case=one.case, detector__slug="template-miner")
    with django_assert_num_queries(0):  # no forum flag among them: nothing to ask
        assert withdrawals_of([ref_of(own)]) == {}
    with django_assert_num_queries(1):
        assert set(withdrawals_of([ref_of(one.flag), ref_of(own)])) == {one.flag.pk}
    more = [decided_case_with_withdrawn_source(world, monkeypatch, external_id=f"acct_w{n}",
                                               simhash=f"{n:x}" * 16) for n in range(2, 5)]
    refs = [ref_of(w.flag) for w in [one, *more]]
    with django_assert_num_queries(1):
        found = withdrawals_of(refs)
    assert set(found) == {r.id for r in refs} and all("peer revoked object" in str(w) for w in found.values())


def test_the_case_api_says_which_flag_was_withdrawn(world, monkeypatch, make_staff):
    withdrawn = decided_case_with_withdrawn_source(world, monkeypatch, external_id="acct_api_withdrawn")
    client = Client()
    client.force_login(make_staff(Role.SENIOR_REVIEWER))
    flags = {f["id"]: f["withdrawn"] for f in client.get(f"/api/v1/cases/{withdrawn.case.pk}/").json()["flags"]}
    assert flags.pop(withdrawn.flag.pk) == (f"withdrawn by the source (peer revoked object "
                                            f"{withdrawn.indicator['id']} at 2026-11-04 00:00 UTC)")
    assert list(flags.values()) == [None]
