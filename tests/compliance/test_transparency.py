"""The transparency report: the numbers of a seeded data set, worked out by hand here; the CSV behind each chart
says the same; the SVG draws them; an empty period renders; the query count does not grow with the data; only
compliance reads it.

The data set (flags through ingestion and grouping, claims, decisions and appeals through the real services; then
each timestamp set to a known instant, since the services stamp "now"). The period is January to March 2026.

    account  researcher  case opened     decided           clauses    action      appeal filed → decided
    acct_a   yes         01-05 00:00     01-05 10:00 (10h) T-1        warn        01-06 → 01-08 overturned (48h)
    acct_b   yes         01-10 00:00     01-11 06:00 (30h) T-1, T-3   warn        01-20 → 02-02 upheld (312h)
    acct_r   yes         01-20 00:00     01-21 02:00 (26h) T-1        no viol.    —
    acct_r   yes         02-15 (a second case, still open)
    acct_c   no          02-01 00:00     02-03 00:00 (48h) T-1        rate limit  02-05 00:00 → 12:00 upheld (12h)
    acct_d   no          2025-12-01      2025-12-20 (outside the period)  warn   02-10 filed, still open

Forum (rows made directly, as the Forum tests' World does: the setup, not the behaviour): a share approved
01-15, acct_a's part of it withdrawn 01-08 after the overturn; a second share approved 02-03 and withdrawn whole
by an officer 02-20; a third approved in 2025-11 (outside).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from appeals.models import Appeal
from appeals.services import appeal_claim, appeal_decide
from reviewapp.audit.services import SYSTEM
from reviewapp.cases.models import Account, Case, Decision
from reviewapp.cases.services import account_profile_set
from reviewapp.compliance.transparency.forms import PeriodForm
from reviewapp.compliance.transparency.selectors import Period, transparency_report
from reviewapp.forum.models import ShareApproval, ShareProposal, ShareVersion, ShareWithdrawal
from reviewapp.people.roles import Role
from tests.appeals.review_fixtures import decide, file_appeal
from tests.factories import DetectorFactory, FlaggedCaseFactory

pytestmark = pytest.mark.django_db

PERIOD = {"from": "2026-01", "to": "2026-03"}
JAN, FEB, MAR = "2026-01", "2026-02", "2026-03"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _decided(case, *, reviewer, clauses, action, opened, decided, duration_days=None):
    decision = decide(case, reviewer=reviewer, clauses=clauses, action=action, duration_days=duration_days)
    Case.objects.filter(pk=case.pk).update(opened_at=at(opened))
    Decision.objects.filter(pk=decision.pk).update(decided_at=at(decided))
    return decision


def _appeal(decision, *, senior, filed, decided=None, outcome=None):
    appeal = file_appeal(decision)
    if outcome:
        appeal_claim(reviewer=senior, appeal=appeal)
        appeal_decide(reviewer=senior, appeal=appeal, outcome=outcome, reason="Reasons for the holder.")
    Appeal.objects.filter(pk=appeal.pk).update(filed_at=at(filed), decided_at=at(decided) if decided else None)
    return appeal


def _share(account, officer, *, approved: str):
    proposal = ShareProposal.objects.create(source="account", account=account, proposed_by=officer,
                                            proposed_at=at(approved), state=ShareProposal.State.APPROVED)
    version = ShareVersion.objects.create(proposal=proposal, number=1, created_by=officer, created_at=at(approved),
                                          collection_id="frontier", bundle_sha256="0" * 64)
    ShareApproval.objects.create(proposal=proposal, version=version, approved_by=officer, approved_at=at(approved),
                                 bundle_sha256="0" * 64)
    return proposal


@pytest.fixture
def seeded(policy, make_staff, settings, tmp_path):
    settings.APPEAL_ATTACHMENTS_DIR = tmp_path / "attachments"
    t1, t3 = policy["extraction"], policy["research"]
    reviewer, senior = make_staff(Role.REVIEWER), make_staff(Role.SENIOR_REVIEWER)
    officer, other_officer = make_staff(Role.SHARING_OFFICER), make_staff(Role.SHARING_OFFICER)
    detector = DetectorFactory(slug="template-miner")

    def case(account):
        return FlaggedCaseFactory(detector=detector, account_id=account, contact_email=f"{account}@example.org")

    cases = {name: case(name) for name in ("acct_a", "acct_b", "acct_r", "acct_c", "acct_d")}
    for name in ("acct_a", "acct_b", "acct_r"):
        account_profile_set(actor=SYSTEM, account=Account.objects.get(external_id=name), researcher_programme=True)

    a = _decided(cases["acct_a"], reviewer=reviewer, clauses=[t1], action="warn",
                 opened="2026-01-05T00:00", decided="2026-01-05T10:00")
    b = _decided(cases["acct_b"], reviewer=reviewer, clauses=[t1, t3], action="warn",
                 opened="2026-01-10T00:00", decided="2026-01-11T06:00")
    _decided(cases["acct_r"], reviewer=reviewer, clauses=[t1], action="no_violation",
             opened="2026-01-20T00:00", decided="2026-01-21T02:00")
    c = _decided(cases["acct_c"], reviewer=reviewer, clauses=[t1], action="rate_limit", duration_days=7,
                 opened="2026-02-01T00:00", decided="2026-02-03T00:00")
    d = _decided(cases["acct_d"], reviewer=reviewer, clauses=[t1], action="warn",
                 opened="2025-12-01T00:00", decided="2025-12-20T00:00")
    second_r = case("acct_r")  # a new flag after the decision: a second case, left open
    assert second_r.pk != cases["acct_r"].pk
    Case.objects.filter(pk=second_r.pk).update(opened_at=at("2026-02-15T00:00"))

    _appeal(a, senior=senior, filed="2026-01-06T00:00", decided="2026-01-08T00:00", outcome="overturned")
    _appeal(b, senior=senior, filed="2026-01-20T00:00", decided="2026-02-02T00:00", outcome="upheld")
    _appeal(c, senior=senior, filed="2026-02-05T00:00", decided="2026-02-05T12:00", outcome="upheld")
    _appeal(d, senior=senior, filed="2026-02-10T00:00")

    first = _share(a.account, officer, approved="2026-01-15T09:00")
    ShareWithdrawal.objects.create(proposal=first, account=a.account, decision=a, reason="Overturned on appeal.",
                                   withdrawn_at=at("2026-01-08T00:05"))
    second = _share(c.account, other_officer, approved="2026-02-03T09:00")
    ShareWithdrawal.objects.create(proposal=second, withdrawn_by=other_officer, reason="Stale.",
                                   withdrawn_at=at("2026-02-20T00:00"))
    _share(d.account, officer, approved="2025-11-30T23:59")


def _period() -> Period:
    form = PeriodForm(PERIOD)
    assert form.is_valid(), form.errors
    return form.period


def _by_month(rows) -> dict:
    return {f"{row.month:%Y-%m}": row for row in rows}


def test_numbers_by_hand(seeded, django_assert_num_queries):
    with django_assert_num_queries(9):  # 2 decisions, 2 appeals, 2 Forum, 3 researchers: whatever the data
        report = transparency_report(_period())

    decisions = _by_month(report.decisions.months)
    assert list(decisions) == [JAN, FEB, MAR]
    # January: a warn, b warn (two clauses, one decision), r no violation = 3; February: c rate limit; d is December.
    assert decisions[JAN].total == 3 and decisions[JAN].by_action["warn"] == 2
    assert decisions[JAN].by_action["no_violation"] == 1
    assert (decisions[FEB].total, decisions[FEB].by_action["rate_limit"], decisions[MAR].total) == (1, 1, 0)
    # Median time to decision: January of 10 h, 30 h, 26 h = 26 h; February 48 h; March none.
    assert decisions[JAN].median_hours == pytest.approx(26)
    assert decisions[FEB].median_hours == pytest.approx(48)
    assert decisions[MAR].median_hours is None
    by_clause = {(f"{r.month:%Y-%m}", r.clause, r.action): r.decisions for r in report.decisions.by_clause}
    assert by_clause == {(JAN, "T-1", "warn"): 2, (JAN, "T-1", "no_violation"): 1, (JAN, "T-3", "warn"): 1,
                         (FEB, "T-1", "rate_limit"): 1}
    assert report.decisions.clause_totals == {"T-1": 4, "T-3": 1}

    appeals = _by_month(report.appeals)
    # Filed: a, b in January; c, d in February. Decided: a (overturned) in January; b, c (upheld) in February.
    assert (appeals[JAN].filed, appeals[JAN].decided, appeals[JAN].overturned) == (2, 1, 1)
    assert (appeals[FEB].filed, appeals[FEB].decided, appeals[FEB].upheld, appeals[FEB].overturned) == (2, 2, 2, 0)
    assert (appeals[JAN].overturn_rate, appeals[FEB].overturn_rate, appeals[MAR].overturn_rate) == (1.0, 0.0, None)
    # Median time to outcome: January 48 h; February of 312 h and 12 h, interpolated = 162 h.
    assert appeals[JAN].median_hours == pytest.approx(48)
    assert appeals[FEB].median_hours == pytest.approx(162)
    assert appeals[MAR].median_hours is None

    forum = _by_month(report.forum)
    assert (forum[JAN].shares_approved, forum[JAN].withdrawn_by_officer, forum[JAN].withdrawn_after_appeal) == (1, 0, 1)
    assert (forum[FEB].shares_approved, forum[FEB].withdrawn_by_officer, forum[FEB].withdrawn_after_appeal) == (1, 1, 0)
    assert forum[MAR].shares_approved == 0

    researchers = _by_month(report.researchers.months)
    # January: a overturned, b warn upheld (action taken), r no violation; February: r's second case, open.
    assert researchers[JAN].accounts == 3 and researchers[JAN].by_outcome == {
        "open": 0, "overturned": 1, "modified": 0, "action": 1, "no_violation": 1, "closed": 0}
    assert researchers[FEB].accounts == 1 and researchers[FEB].by_outcome["open"] == 1 and researchers[FEB].cases == 1
    assert report.researchers.accounts == 3  # r in both months counts once; c and d are not in the programme
    assert report.researchers.cases == 4


def _csv(client, chart: str, query=PERIOD) -> list[dict]:
    response = client.get(reverse(f"compliance:transparency-csv-{chart}"), query)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert f"transparency-{chart}-" in response["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.content.decode())))


@pytest.fixture
def officer_client(client, make_staff):
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    return client


def test_csvs_say_what_the_charts_say(seeded, officer_client):
    client = officer_client
    rows = _csv(client, "decisions")
    every = {(r["month"], r["action"]): int(r["decisions"]) for r in rows if r["clause"] == "all clauses"}
    assert len(every) == 3 * 5  # every month × every action, zeros included
    assert (every[JAN, "Warning"], every[JAN, "No violation"], every[FEB, "Rate limit"], every[MAR, "Warning"]) == (
        2, 1, 1, 0)
    clauses = {(r["month"], r["clause"], r["action"]): int(r["decisions"]) for r in rows
               if r["clause"] != "all clauses"}
    assert clauses == {(JAN, "T-1", "Warning"): 2, (JAN, "T-1", "No violation"): 1, (JAN, "T-3", "Warning"): 1,
                       (FEB, "T-1", "Rate limit"): 1}
    assert {r["clause_title"] for r in rows if r["clause"] == "T-3"} == {"Researcher access"}

    appeals = {r["month"]: r for r in _csv(client, "appeals")}
    assert (appeals[JAN]["filed"], appeals[JAN]["decided"], appeals[JAN]["overturned"]) == ("2", "1", "1")
    assert (appeals[JAN]["overturn_rate"], appeals[FEB]["overturn_rate"], appeals[MAR]["overturn_rate"]) == (
        "1.0000", "0.0000", "")

    durations = {r["month"]: r for r in _csv(client, "durations")}
    assert (durations[JAN]["median_hours_to_decision"], durations[FEB]["median_hours_to_appeal_outcome"]) == (
        "26.00", "162.00")
    assert durations[MAR]["median_hours_to_decision"] == "" and durations[JAN]["decisions"] == "3"

    forum = {r["month"]: r for r in _csv(client, "forum")}
    assert (forum[JAN]["shares_approved"], forum[JAN]["withdrawn_account_after_appeal"]) == ("1", "1")
    assert forum[FEB]["withdrawn_whole_share"] == "1"

    researchers = {r["month"]: r for r in _csv(client, "researchers")}
    assert (researchers[JAN]["accounts"], researchers[JAN]["overturned"], researchers[JAN]["action"]) == (
        "3", "1", "1")
    assert researchers[FEB]["open"] == "1"

    # The page's tables and the API carry the same numbers as the CSVs.
    api = client.get(reverse("transparency-api"), PERIOD).json()
    assert api["period"] == {"first": JAN, "last": MAR, "months": [JAN, FEB, MAR]}
    assert api["decisions"]["months"][0]["by_action"]["warn"] == 2 and api["decisions"]["total"] == 4
    assert api["decisions"]["clause_totals"] == {"T-1": 4, "T-3": 1}
    assert api["appeals"][1]["median_hours"] == pytest.approx(162)
    assert api["forum"][1]["withdrawn_by_officer"] == 1
    assert api["researchers"]["accounts"] == 3 and api["researchers"]["totals"]["overturned"] == 1


def _svg(page: str, slug: str) -> str:
    match = re.search(rf'<svg[^>]*aria-labelledby="{slug}-title {slug}-desc".*?</svg>', page, re.S)
    assert match, slug
    return match[0]


def test_the_page_draws_the_numbers(seeded, officer_client):
    response = officer_client.get(reverse("compliance:transparency"), PERIOD)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Transparency report: January 2026 to March 2026" in page

    decisions = _svg(page, "decisions")
    assert '<title id="decisions-title">Decisions per month, by action</title>' in decisions
    assert "4 decisions in the period (No violation 1; Warning 2; Rate limit 1); by clause: T-1 4, T-3 1." in decisions
    assert 'data-series="warn" data-month="2026-01" data-value="2"' in decisions
    assert 'data-series="rate_limit" data-month="2026-02" data-value="1"' in decisions
    assert "Warning, January 2026: 2</title>" in decisions
    assert 'data-month="2026-03"' not in decisions  # nothing to draw in March
    assert ">Month (UTC)</text>" in decisions and ">Decisions</text>" in decisions  # axis titles
    assert ">Jan 26</text>" in decisions and ">Mar 26</text>" in decisions  # month labels

    appeals = _svg(page, "appeals")
    assert 'data-series="filed" data-month="2026-01" data-value="2"' in appeals
    assert 'data-series="overturned" data-month="2026-01" data-value="1"' in appeals
    assert "overturn rate 33.3%" in appeals  # 1 overturned of 3 decided in the period

    durations = _svg(page, "durations")
    assert 'data-series="decision" data-month="2026-01" data-value="26.00"' in durations
    assert 'data-series="appeal" data-month="2026-02" data-value="162.00"' in durations
    assert "<polyline" in durations  # two months with a value make a line

    forum = _svg(page, "forum")
    assert 'data-series="whole" data-month="2026-02" data-value="1"' in forum
    researchers = _svg(page, "researchers")
    assert 'data-series="overturned" data-month="2026-01" data-value="1"' in researchers
    assert "3 researcher-programme accounts flagged in 4 cases" in researchers

    # A table beside every chart, and a CSV link with the same period.
    for slug in ("decisions", "appeals", "durations", "forum", "researchers"):
        assert f'href="/compliance/transparency/{slug}.csv?from=2026-01&amp;to=2026-03"' in page
    # The decisions table: January's no violation 1, warning 2, rate limit 0, suspension 0, termination 0, total 3.
    assert ('<th scope="row">Jan 2026</th>' + "".join(f'<td class="num">{n}</td>' for n in (1, 2, 0, 0, 0, 3))
            in page)
    assert "162.0 h" in page and "100.0%" in page


def test_empty_period_renders(seeded, officer_client):
    response = officer_client.get(reverse("compliance:transparency"), {"from": "2024-01", "to": "2024-02"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "0 decisions in the period." in page and "0 appeals filed, 0 decided" in page
    assert "<rect" not in page and "<circle" not in page  # nothing to draw, the axes still are
    assert _svg(page, "durations")
    rows = _csv(officer_client, "appeals", {"from": "2024-01", "to": "2024-02"})
    assert [r["month"] for r in rows] == ["2024-01", "2024-02"] and {r["filed"] for r in rows} == {"0"}


def test_default_period_is_the_last_twelve_months(officer_client, db):
    response = officer_client.get(reverse("compliance:transparency"))
    assert response.status_code == 200
    months = response.context["period"].months
    assert len(months) == 12 and months[-1] == datetime.now(UTC).date().replace(day=1)
    assert len(officer_client.get(reverse("transparency-api")).json()["period"]["months"]) == 12


@pytest.mark.parametrize(("query", "field", "message"), [
    ({"from": "2026-13"}, "from", "is not a month"),
    ({"to": "January"}, "to", "is not a month"),
    ({"from": "2026-05", "to": "2026-04"}, "to", "Must not be before From"),
    ({"from": "2000-01", "to": "2026-01"}, "from", "At most 120 months"),
])
def test_bad_period_is_refused_naming_the_field(officer_client, db, query, field, message):
    page = officer_client.get(reverse("compliance:transparency"), query)
    assert page.status_code == 400 and message in page.content.decode()
    api = officer_client.get(reverse("transparency-api"), query)
    assert api.status_code == 400 and message in " ".join(api.json()[field])
    download = officer_client.get(reverse("compliance:transparency-csv-appeals"), query)
    assert download.status_code == 400 and download.content.decode().startswith(f"{field}: ")


def _queries(client, url, query) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, query).status_code == 200
    return len(captured)


def test_query_count_does_not_grow_with_the_data(policy, make_staff, officer_client):
    reviewer = make_staff(Role.REVIEWER)
    detector = DetectorFactory(slug="template-miner")
    urls = [reverse("compliance:transparency"), reverse("transparency-api"),
            *[reverse(f"compliance:transparency-csv-{c}") for c in ("decisions", "researchers")]]
    query = {"from": "2025-01", "to": "2030-12"}  # the cases below are decided now, inside this period

    def grow(n):
        for _ in range(n):
            case = FlaggedCaseFactory(detector=detector)
            decide(case, reviewer=reviewer, clauses=[policy["extraction"]], action="warn", duration_days=None)

    grow(1)
    small = [_queries(officer_client, url, query) for url in urls]
    grow(6)
    assert [_queries(officer_client, url, query) for url in urls] == small


def test_for_compliance_only(client, make_staff, db):
    urls = [reverse("compliance:transparency"), reverse("compliance:transparency-csv-forum"),
            reverse("transparency-api")]
    for role in (Role.REVIEWER, Role.SENIOR_REVIEWER, Role.SHARING_OFFICER, Role.ADMIN):
        client.force_login(make_staff(role))
        assert [client.get(url).status_code for url in urls] == [403, 403, 403], role
    client.logout()
    assert client.get(urls[0]).status_code == 302  # to the sign-in page
    assert client.get(urls[2]).status_code in {401, 403}
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    assert client.get("/compliance/transparency/nothing.csv").status_code == 404
    assert client.post(urls[0]).status_code == 405  # a read: nothing to post


def test_home_panel_links_to_the_report(officer_client, db):
    page = officer_client.get(reverse("compliance:home")).content.decode()
    assert 'id="panel-transparency"' in page and 'href="/compliance/transparency/"' in page
