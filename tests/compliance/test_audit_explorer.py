"""The console's audit explorer: filters, the data search, keyset pages, an event's detail and what it names."""

import re
from datetime import UTC, datetime

import pgtrigger
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM, Actor, Entry, Target, record, record_many
from reviewapp.compliance.audit_explorer import selectors
from reviewapp.people.roles import Role
from tests.support import sequence_audit

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer(make_staff):
    return make_staff(Role.COMPLIANCE_OFFICER, username="olga")


@pytest.fixture
def officer_client(officer, client):
    client.force_login(officer)
    return client


def _page(client, **params) -> str:
    response = client.get(reverse("compliance:audit-events"), params)
    assert response.status_code == 200, response.content.decode()[:2000]
    return response.content.decode()


def _listed(client, **params) -> set[int]:
    """The ids of the events a page lists (the links to their detail)."""
    page = _page(client, **params)
    return {event.pk for event in AuditEvent.objects.all() if reverse("compliance:audit-event", args=[event.pk]) +
            '"' in page}


def _age(event: AuditEvent, moment: datetime) -> None:
    with pgtrigger.ignore("audit.AuditEvent:audit_append_only"):  # only to place it in time
        AuditEvent.objects.filter(pk=event.pk).update(created_at=moment)


def test_only_compliance_officers_see_the_explorer(make_staff, client):
    client.force_login(make_staff(Role.REVIEWER))
    assert client.get(reverse("compliance:audit-events")).status_code == 403
    event = record(actor=SYSTEM, action=AuditAction.STAFF_CREATED)
    assert client.get(reverse("compliance:audit-event", args=[event.pk])).status_code == 403
    client.logout()
    assert client.get(reverse("compliance:audit-events")).status_code == 302  # to sign-in


def test_the_pages_are_read_only(officer_client):
    assert officer_client.post(reverse("compliance:audit-events")).status_code == 405
    event = record(actor=SYSTEM, action=AuditAction.STAFF_CREATED)
    assert officer_client.post(reverse("compliance:audit-event", args=[event.pk])).status_code == 405


def test_filter_by_actor_action_target_and_time_range(officer_client, officer, make_staff):
    other = make_staff(Role.REVIEWER, username="rita")
    by_officer = record(actor=officer, action=AuditAction.EVIDENCE_OPENED, target=Target("cases.case", "7"))
    by_other = record(actor=other, action=AuditAction.DECISION_RECORDED, target=Target("cases.decision", "3"),
                      data={"case": 7})
    by_system = record(actor=SYSTEM, action=AuditAction.CASE_OPENED, target=Target("cases.case", "7"))
    old = record(actor=other, action=AuditAction.CASE_CLAIMED, target=Target("cases.case", "7"))
    _age(old, datetime(2026, 1, 15, 12, tzinfo=UTC))

    assert _listed(officer_client, actor="rita") == {by_other.pk, old.pk}
    assert _listed(officer_client, actor=str(officer.pk), actor_type="user") >= {by_officer.pk}
    assert by_other.pk not in _listed(officer_client, actor=str(officer.pk), actor_type="user")
    assert _listed(officer_client, actor_type="system") >= {by_system.pk}
    assert by_officer.pk not in _listed(officer_client, actor_type="system")
    assert _listed(officer_client, action="decision.recorded") == {by_other.pk}
    assert _listed(officer_client, target_type="cases.case", target_id="7") == {by_officer.pk, by_system.pk, old.pk}
    assert _listed(officer_client, target_type="cases.decision") == {by_other.pk}
    january = _listed(officer_client, since="2026-01-15", until="2026-01-15")  # both ends inclusive, whole days
    assert january == {old.pk}
    assert old.pk not in _listed(officer_client, since="2026-01-16")
    assert old.pk not in _listed(officer_client, until="2026-01-14")


def test_bad_filters_are_a_400_naming_the_field(officer_client):
    for params, field in [({"since": "yesterday"}, "since"), ({"action": "no.such"}, "action"),
                          ({"since": "2026-02-02", "until": "2026-02-01"}, "until"), ({"before": "x"}, "before"),
                          ({"q": "x" * 201}, "q")]:
        response = officer_client.get(reverse("compliance:audit-events"), params)
        assert response.status_code == 400, params
        assert f"{field}:" in response.content.decode()


def test_search_in_data_by_containment_and_by_literal_text(officer_client):
    twelve = record(actor=SYSTEM, action=AuditAction.DECISION_RECORDED, data={"case": 12, "action": "warn"})
    text_twelve = record(actor=SYSTEM, action=AuditAction.DECISION_RECORDED, data={"case": "12", "action": "suspend"})
    nested = record(actor=SYSTEM, action=AuditAction.CASE_NOTE_ADDED,
                    data={"note": {"summary": "Templated 100% of prompts_x"}})
    wildcard_bait = record(actor=SYSTEM, action=AuditAction.CASE_NOTE_ADDED,
                           data={"note": "Templated 1000 of promptsXx"})

    assert _listed(officer_client, q="case=12") == {twelve.pk}  # typed: the number, not the text
    assert _listed(officer_client, q='case="12"') == {text_twelve.pk}
    assert _listed(officer_client, q='action="warn"') == {twelve.pk}
    assert _listed(officer_client, q="action=warn") == {twelve.pk}  # not JSON: taken as text
    # A substring of the data's JSON text, case-insensitive, nested values included; % and _ are literal.
    assert _listed(officer_client, q="templated 100% of prompts_x") == {nested.pk}
    assert wildcard_bait.pk not in _listed(officer_client, q="100%")
    assert _listed(officer_client, q="SUSPEND") == {text_twelve.pk}
    # Combined with the other filters.
    assert _listed(officer_client, q="templated", action="case.note_added") == {nested.pk, wildcard_bait.pk}
    # Quotes and SQL in the search are just text.
    assert _listed(officer_client, q="'; DROP TABLE audit_auditevent; --") == set()
    assert _listed(officer_client, q='x") OR 1=1 --') == set()
    assert AuditEvent.objects.count() >= 4


def test_a_search_that_runs_too_long_is_stopped_and_says_how_to_narrow_it(officer_client, monkeypatch):
    bulky = "x" * 1000
    record_many([Entry(actor=SYSTEM, action=AuditAction.CASE_NOTE_ADDED, data={"note": bulky, "i": i})
                 for i in range(5000)])  # 5 MB of JSON text to scan for a text that is not there
    assert "The search took longer" not in _page(officer_client, q="not in any event")
    monkeypatch.setattr(selectors, "SEARCH_TIMEOUT_MS", 1)
    page = _page(officer_client, q="not in any event")
    assert "The search took longer than" in page and "Narrow it by a date range" in page
    # Filters answered by an index are not under the timeout.
    assert "The search took longer" not in _page(officer_client, action="case.note_added")


def test_a_search_walks_the_trail_in_windows_and_says_where_it_stopped(officer_client, monkeypatch):
    deep = record(actor=SYSTEM, action=AuditAction.CASE_NOTE_ADDED, data={"note": "the needle"})
    record_many([Entry(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"i": i}) for i in range(40)])
    monkeypatch.setattr(selectors, "SEARCH_WINDOW", 10)
    monkeypatch.setattr(selectors, "SEARCH_BUDGET_SECONDS", 0)  # one window per page
    page = _page(officer_client, q="needle")
    stopped = re.search(r"searched the events down to event id (\d+)", page)
    assert stopped and "No events match." in page  # the newest ten: no needle there
    before = int(stopped[1])
    assert AuditEvent.objects.filter(pk__gte=before).count() == 10
    # "Search older events" goes on, window by window, until the needle is found.
    for _ in range(10):
        page = _page(officer_client, q="needle", before=before)
        if reverse("compliance:audit-event", args=[deep.pk]) + '"' in page:
            break
        before = int(re.search(r"down to event id (\d+)", page)[1])
    else:
        raise AssertionError("the search never reached the deep event")
    # With the budget back, one page searches every window.
    monkeypatch.setattr(selectors, "SEARCH_BUDGET_SECONDS", 60)
    assert _listed(officer_client, q="needle") == {deep.pk}
    assert "down to event id" not in _page(officer_client, q="needle")


def test_a_common_search_fills_its_page_from_the_newest_window(monkeypatch):
    record_many([Entry(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"word": "common"}) for _ in range(30)])
    monkeypatch.setattr(selectors, "SEARCH_WINDOW", 1_000_000)
    with CaptureQueriesContext(connection) as captured:
        page = selectors.events_page(selectors.EventFilters(search="common"), page_size=10)
    assert len(page.events) == 10 and page.next_before == page.events[-1].pk
    assert sum("audit_auditevent" in q["sql"] and "LIKE" in q["sql"] for q in captured) == 1


def test_keyset_pages_cover_every_event_once_newest_first(officer_client, monkeypatch):
    monkeypatch.setattr(selectors, "PAGE_SIZE", 4)
    monkeypatch.setattr("reviewapp.compliance.audit_explorer.views.events_page",
                        lambda filters, before=None: selectors.events_page(filters, before=before, page_size=4))
    record_many([Entry(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"i": i}) for i in range(10)])
    expected = list(AuditEvent.objects.order_by("-pk").values_list("pk", flat=True))
    seen, before = [], None
    while True:
        params = {"before": before} if before else {}
        page = _page(officer_client, **params)
        ids = sorted(_listed(officer_client, **params), reverse=True)
        assert len(ids) <= 4
        seen += ids
        if 'rel="next"' not in page:
            break
        before = ids[-1]
        assert f"before={before}" in page
    assert seen == expected


def test_the_list_costs_the_same_queries_for_8_or_128_events(officer_client):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            _page(officer_client)
        return len(captured)

    # Every kind of target, including those whose page is found through another row (one query per kind).
    targets = ["cases.case", "cases.decision", "policy.policyversion", "forum.forumpush", "appeals.appealmessage",
               "cases.casenote", "audit.checkpoint", "people.user"]

    def append(start: int, count: int) -> None:
        record_many([Entry(actor=SYSTEM, action=AuditAction.STAFF_CREATED,
                           target=Target(targets[i % len(targets)], str(i))) for i in range(start, start + count)])

    append(0, 8)
    few = queries()
    append(8, 120)
    assert queries() == few


def test_an_event_reads_as_a_definition_list_with_its_raw_json_links_and_chain(officer_client, officer):
    first = record(actor=SYSTEM, action=AuditAction.STAFF_CREATED)
    event = record(actor=officer, action=AuditAction.DECISION_RECORDED, target=Target("cases.decision", "5"),
                   data={"case": 9, "clauses": ["T-1", "T-2"], "appeal": None,
                         "enforcement": {"action": "suspend", "appeal_id": 4, "researcher": False}})
    last = record(actor=SYSTEM, action=AuditAction.STAFF_CREATED)
    sequence_audit()
    event.refresh_from_db()
    page = officer_client.get(reverse("compliance:audit-event", args=[event.pk])).content.decode()
    # Keys and values as a definition list, nested values readable in turn.
    assert "<dt>clauses</dt><dd>T-1, T-2</dd>" in page
    assert "<dt>appeal</dt><dd>—</dd>" in page
    assert '<dt>enforcement</dt><dd><dl class="readable"><dt>action</dt><dd>suspend</dd>' in page
    assert "<dt>researcher</dt><dd>no</dd>" in page
    # The raw JSON too, as stored.
    assert "Raw JSON" in page and "&quot;appeal_id&quot;: 4" in page
    # What it names: its target, and the ids in its data (nested ones too).
    assert f'href="{reverse("review:case", args=[9])}"' in page
    assert f'href="{reverse("appeal-review:appeal", args=[4])}"' in page
    assert "Decision 5" in page and "<code>cases.decision 5</code>" in page
    # Its place in the chain, its hashes, its neighbours.
    assert event.hash in page and event.prev_hash in page
    assert f'href="{reverse("compliance:audit-event", args=[first.pk])}" rel="prev"' in page
    assert f'href="{reverse("compliance:audit-event", args=[last.pk])}" rel="next"' in page
    assert "their events" in page


def test_an_event_pending_sequencing_is_shown_as_such(officer_client):
    event = record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"note": "just now"})
    page = officer_client.get(reverse("compliance:audit-event", args=[event.pk])).content.decode()
    assert "pending sequencing" in page and "just now" in page and "No previous event" in page
    assert officer_client.get(reverse("compliance:audit-event", args=[event.pk + 1000])).status_code == 404


def test_a_grouping_event_names_its_first_flags_and_counts_the_rest():
    event = record(actor=SYSTEM, action=AuditAction.FLAGS_GROUPED, data={"flags": list(range(1, 131)), "cases": [1]})
    named, more = selectors.named_in(event)
    assert len(named) == selectors.MAX_NAMED
    assert named[0] == selectors.Named("flags", "flags.flag", "1")
    assert more == 130 - selectors.MAX_NAMED + 1  # the other flags, and the case


def test_only_whole_numbers_are_taken_for_ids():
    event = record(actor=Actor("system", "x"), action=AuditAction.DECISION_RECORDED,
                   data={"case": "acct_9", "decision": True, "appeal": 3.5, "user": [1, "2", False]})
    assert selectors.named_in(event) == ([selectors.Named("user", "people.user", "1")], 0)


def test_a_checkpoint_event_links_to_the_head_it_signed(officer_client):
    signed = record(actor=SYSTEM, action=AuditAction.STAFF_CREATED)
    sequence_audit()
    signed.refresh_from_db()
    checkpoint = record(actor=SYSTEM, action=AuditAction.AUDIT_CHECKPOINT,
                        data={"head_seq": signed.seq, "head_hash": signed.hash, "verified": signed.seq})
    page = officer_client.get(reverse("compliance:audit-event", args=[checkpoint.pk])).content.decode()
    assert f'<code>head_seq</code>: <a href="{reverse("compliance:audit-event", args=[signed.pk])}">' in page
