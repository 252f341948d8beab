"""Writes for accounts, campaigns and cases. Each writes its audit events in the same transaction."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from reviewapp.audit import sqlarray
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import Entry, Target, record, record_many
from reviewapp.limits import ensure_within_limits

from ..models import Account, Campaign, Case, open_case
from ..predicates import q_sql
from ..priority import SLA_DEFAULT, priority_sql, sla_seconds_sql
from ..vocabulary import worst_signal_sql
from ..workflow import TRANSITIONS, InvalidCaseTransition, transition_apply


@transaction.atomic
def case_transition(*, case: Case, to: str, actor, reason: str = "", locked: bool = False,
                    fields: tuple[str, ...] = (), events: list[Entry] | None = None) -> Case:
    """Move a case along the workflow table (workflow.TRANSITIONS); anything else raises InvalidCaseTransition.

    The one home of a case's state change and its ``case.transitioned`` event. ``locked``: the caller holds
    the row lock and passes its instance, whose other changed ``fields`` (a claim's assignee and lease) are
    saved with the state. With ``events`` given, the event is appended for the caller to record in bulk.
    """
    if not locked:
        case = Case.objects.select_for_update(no_key=True).get(pk=case.pk)
    to = Case.State(to)
    case.closed_at = timezone.now() if to == Case.State.CLOSED else case.closed_at
    return transition_apply(case, table=TRANSITIONS, error=InvalidCaseTransition, to=to, actor=actor,
                            action=AuditAction.CASE_TRANSITIONED, reason=reason,
                            fields=("closed_at", "updated_at", *fields), events=events)


def accounts_ensure(*, accounts: dict[str, str]) -> dict[str, int]:
    """Make sure each flagged account exists ({external_id: organization_id}); return {external_id: pk}.

    An account row records only that the platform account was flagged; its first flag's grouping
    event (``case.opened``) is its audit record.
    """
    ids = sorted(accounts)
    with connection.cursor() as cursor:
        # One array parameter: an ORM "__in" gives each id a placeholder that is parsed again on every call.
        # Read first: once a campaign is under way nearly every account exists, and an insert that finds its
        # conflict still costs PostgreSQL a speculative insertion per row.
        cursor.execute("SELECT external_id, id FROM cases_account WHERE external_id = ANY(%s::text[])",
                       [sqlarray.texts(ids)])
        found = dict(cursor.fetchall())
        missing = [i for i in ids if i not in found]
        if missing:
            # Inserted in one order (sorted) by every grouping transaction, so two that race cannot deadlock.
            cursor.execute(
                """
                INSERT INTO cases_account (external_id, organization_id, contact_email, region,
                                           researcher_programme, enforcement_status, first_flagged_at)
                SELECT i, o, '', '', false, 'none', now() FROM unnest(%s::text[], %s::text[]) AS t(i, o)
                ON CONFLICT (external_id) DO NOTHING
                RETURNING external_id, id
                """,
                [sqlarray.texts(missing), sqlarray.texts(accounts[i] for i in missing)],
            )
            found.update(cursor.fetchall())
            if len(found) < len(ids):  # inserted by a transaction that committed meanwhile
                cursor.execute("SELECT external_id, id FROM cases_account WHERE external_id = ANY(%s::text[])",
                               [sqlarray.texts(i for i in missing if i not in found)])
                found.update(cursor.fetchall())
        return found


def campaigns_ensure(*, keys: set[str], actor, events: list[Entry] | None = None) -> dict[str, int]:
    """Return {cluster key: campaign id} for detector cluster keys ("detector-slug:cluster-id"), creating
    (audited, ``campaign.created``) the campaigns that do not exist yet. With ``events`` given, the events
    are appended to it for the caller to record (as open_cases_for)."""
    keys = sorted(keys)
    if not keys:
        return {}
    campaigns = dict(Campaign.objects.filter(key__in=keys).values_list("key", "pk"))
    new = [key for key in keys if key not in campaigns]
    if new:
        # RETURNING says which this transaction created: a grouper racing us for the same new cluster gets
        # nothing back for it, so each campaign has one campaign.created event (the creator's).
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO cases_campaign (key, detector_slug, cluster_id, name, created_at)
                SELECT k, split_part(k, ':', 1), substr(k, strpos(k, ':') + 1),
                       'Cluster ' || substr(k, strpos(k, ':') + 1) || ' (' || split_part(k, ':', 1) || ')', now()
                FROM unnest(%s::text[]) AS t(k)
                ON CONFLICT (key) DO NOTHING
                RETURNING key, id
                """,
                [sqlarray.texts(new)],
            )
            created = dict(cursor.fetchall())
        campaigns.update(created)
        if len(campaigns) < len(keys):  # created by a transaction that committed meanwhile
            campaigns = dict(Campaign.objects.filter(key__in=keys).values_list("key", "pk"))
        entries = [Entry(actor=actor, action=AuditAction.CAMPAIGN_CREATED,
                         target=Target("cases.campaign", str(pk)), data={"key": key})
                   for key, pk in sorted(created.items())]
        if events is None:
            record_many(entries)
        else:
            events.extend(entries)
    return campaigns


# The conflict target is the one-open-case index, whose condition is models.open_case read as SQL (built on first
# use: it needs the database connection), so the two cannot drift apart.
_OPEN_CASES = """
INSERT INTO cases_case (account_id, campaign_id, state, queue, priority, sla_due_at, signals,
                        flag_count, total_requests, max_score, opened_at, updated_at)
SELECT a, c, 'new', '', 0, %(due)s, '{{}}', 0, 0, 0, %(now)s, %(now)s
FROM unnest(%(accounts)s::bigint[], %(campaigns)s::bigint[]) AS t(a, c)
ON CONFLICT (account_id) WHERE {open_case} DO NOTHING
RETURNING account_id, id
"""


@functools.cache
def _open_cases_sql() -> str:
    return _OPEN_CASES.format(open_case=q_sql(open_case(), Case))


def open_cases_for(*, account_ids: set[int], actor, opened_by: dict[int, list[str]],
                   campaign_of: dict[int, str] | None = None, campaigns: dict[str, int] | None = None,
                   events: list[Entry] | None = None) -> tuple[dict[int, int], set[int]]:
    """Return ({account_id: open case id}, ids of the cases opened here), opening a case (audited) for
    each account without one.

    The database allows one open case per account (a partial unique index); two grouping workers that
    race to open the same account's case both end up with the one that won. A case opened for an account
    in ``campaign_of`` ({account_id: cluster key}, ids in ``campaigns``) is opened in that campaign, and its
    ``case.opened`` event names it (no separate ``case.campaign_linked`` event: one event per new case
    says which case was opened, for which account, by which flags, in which campaign). With ``events``
    given, the events are appended to it for the caller to record later in the same transaction (grouping
    records all of a batch's events at once, after its case rows are updated).
    """
    campaign_of, campaigns = campaign_of or {}, campaigns or {}
    # By account only (the state is checked here): "state IN (open states)" in SQL would tempt the planner
    # to read every open case when its statistics say there are few.
    with connection.cursor() as cursor:
        cursor.execute("SELECT account_id, id, state FROM cases_case WHERE account_id = ANY(%s::bigint[])",
                       [sqlarray.ints(sorted(account_ids))])
        existing = {account_id: pk for account_id, pk, state in cursor.fetchall() if state in Case.OPEN_STATES}
    missing = sorted(account_ids - set(existing))
    opened: dict[int, int] = {}
    if missing:
        now = timezone.now()
        with connection.cursor() as cursor:
            # Opened with the longest SLA; cases_add_flags brings it closer as soon as the flags are counted.
            cursor.execute(
                _open_cases_sql(),
                {"accounts": sqlarray.ints(missing), "now": now, "due": now + SLA_DEFAULT,
                 "campaigns": sqlarray.ints(campaigns.get(campaign_of.get(a, "")) for a in missing)},
            )
            opened = dict(cursor.fetchall())
        existing.update(opened)
        raced = set(missing) - set(opened)
        if raced:
            existing.update(Case.objects.filter(account_id__in=raced, state__in=Case.OPEN_STATES)
                            .values_list("account_id", "pk"))
        opened_events = []
        for account_id, case_id in sorted(opened.items()):
            data = {"account_id": account_id, "flags": opened_by.get(account_id, [])[:20]}
            if campaign_of.get(account_id) in campaigns:
                data["campaign"] = campaign_of[account_id]
            opened_events.append(Entry(actor=actor, action=AuditAction.CASE_OPENED,
                                       target=Target("cases.case", str(case_id)), data=data))
        if events is None:
            record_many(opened_events)
        else:
            events.extend(opened_events)
    return existing, set(opened.values())


def campaigns_link(*, case_clusters: dict[int, str], actor, events: list[Entry] | None = None,
                   campaigns: dict[str, int] | None = None) -> None:
    """Link existing cases to the campaign of their detector cluster ("detector-slug:cluster-id").

    A case joins the first campaign its flags name and stays there; a new cluster key creates a campaign
    (``campaigns`` gives ids already known). Each link is audited (``case.campaign_linked``); a case opened
    in its campaign (open_cases_for) needs none. With ``events`` given, the audit events are appended to it
    for the caller to record (as open_cases_for).
    """
    if not case_clusters:
        return
    campaigns = dict(campaigns or {})
    unknown = set(case_clusters.values()) - set(campaigns)
    if unknown:
        campaigns.update(campaigns_ensure(keys=unknown, actor=actor, events=events))
    # By primary key only, the unlinked ones picked here: "campaign IS NULL" in SQL would tempt the planner
    # to read every unlinked case. The UPDATE links only those still unlinked, and says which.
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, campaign_id FROM cases_case WHERE id = ANY(%s::bigint[])",
                       [sqlarray.ints(sorted(case_clusters))])
        unlinked = sorted(pk for pk, campaign in cursor.fetchall() if campaign is None)
        if not unlinked:
            return
        ids = sqlarray.ints(unlinked)
        cursor.execute(
            "UPDATE cases_case c SET campaign_id = l.campaign_id "
            "FROM unnest(%(ids)s::bigint[], %(links)s::bigint[]) AS l(case_id, campaign_id) "
            "WHERE c.id = ANY(%(ids)s::bigint[]) AND c.id = l.case_id AND coalesce(c.campaign_id, 0) = 0",
            {"ids": ids, "links": sqlarray.ints(campaigns[case_clusters[pk]] for pk in unlinked)},
        )
    entries = [Entry(actor=actor, action=AuditAction.CASE_CAMPAIGN_LINKED, target=Target("cases.case", str(pk)),
                     data={"campaign": case_clusters[pk]}) for pk in unlinked]
    if events is None:
        record_many(entries)
    else:
        events.extend(entries)


# bigint's largest value: a case's request total saturates there instead of overflowing.
MAX_TOTAL_REQUESTS = 2**63 - 1

# Lock the batch's cases in case id order, so two batches touching the same cases cannot deadlock; the lock held
# to commit is what makes concurrent batches for one case add up instead of overwriting each other (the next
# statement reads each case as it is once locked: READ COMMITTED takes a new snapshot per statement).
_LOCK_CASES = """
SELECT count(*) FROM (SELECT id FROM cases_case WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE) AS locked
"""
# One statement for the whole batch: the caller's ``attached`` rows (the flags it has just given a case) summed
# per case, added to each case's aggregates, and the queue, priority and SLA derived from them (priority.py's
# formula in SQL, the vocabulary written into it) written once per case. The SLA only ever gets closer: a rising
# priority shortens it, a falling one never extends it (LEAST). A signal outside the vocabulary leaves the
# priority NULL, which the column refuses, and a last observation Python cannot hold is refused (cases_refuse,
# migration 0005): data errors, on which grouping isolates the flag that causes them.
_ADD_FLAGS = """
WITH attached AS ({attached}),
added AS (
    SELECT case_id, count(*) AS n, coalesce(sum(request_count), 0) AS requests, max(score) AS score,
           max(observed_to) AS observed, array_agg(DISTINCT signal::text) AS signals
    FROM attached GROUP BY case_id
),
summed AS MATERIALIZED (
    SELECT c.id, a.n, c.flag_count + a.n AS flag_count,
           LEAST(c.total_requests::numeric + a.requests, {max_total})::bigint AS total_requests,
           GREATEST(c.max_score, a.score) AS max_score,
           -- Python's datetime holds years 1 to 9999; a case beyond them could not be shown or decided.
           CASE WHEN a.observed >= '10000-01-01T00:00:00Z' OR a.observed < '0001-01-01T00:00:00Z'
                THEN cases_refuse('observed_to in year ' || extract(year FROM a.observed AT TIME ZONE 'UTC')
                                  || ' is outside years 1 to 9999, which a case can hold', a.observed)
                ELSE GREATEST(c.last_observed_at, a.observed) END AS last_observed_at,
           CASE WHEN c.signals::text[] @> a.signals THEN c.signals::text[]  -- nearly always, once a case has flags
                ELSE ARRAY(SELECT DISTINCT s COLLATE "C" FROM unnest(c.signals::text[] || a.signals) AS s ORDER BY 1)
           END AS signals
    FROM added a JOIN cases_case c ON c.id = a.case_id
    WHERE c.id = ANY(%(add_cases)s::bigint[])
),
scored AS MATERIALIZED (
    SELECT s.*, {queue} AS queue, {priority} AS priority FROM summed s
),
written AS (
    UPDATE cases_case c SET flag_count = s.flag_count, total_requests = s.total_requests, max_score = s.max_score,
        last_observed_at = s.last_observed_at, signals = s.signals::varchar[], queue = s.queue,
        priority = s.priority,
        sla_due_at = LEAST(c.sla_due_at, c.opened_at + {sla_seconds} * interval '1 second'), updated_at = %(add_now)s
    FROM scored s
    WHERE c.id = ANY(%(add_cases)s::bigint[]) AND c.id = s.id
    RETURNING c.id, s.n
)
SELECT coalesce(sum(n), 0), coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM written
"""


@functools.cache
def _add_flags_sql(attached: str) -> str:
    return _ADD_FLAGS.format(
        attached=attached, max_total=MAX_TOTAL_REQUESTS,
        queue=worst_signal_sql("s.signals", lambda info: f"'{info.queue.value}'"),
        priority=priority_sql(severity=worst_signal_sql("s.signals", lambda info: f"{info.severity!r}::float8"),
                              max_score="s.max_score", total_requests="s.total_requests",
                              age_seconds="extract(epoch FROM (%(add_now)s - s.last_observed_at))::float8"),
        sla_seconds=sla_seconds_sql("s.priority"))


@dataclass(frozen=True)
class CasesAdded:
    """What one grouping batch added: how many flags, to which cases (ids ascending)."""

    flags: int
    cases: list[int]


def cases_add_flags(*, attached: str, params: dict, case_ids: list[int], now: datetime | None = None) -> CasesAdded:
    """Add newly attached flags to their cases' aggregates, and set queue, priority and SLA (priority.py).

    ``attached`` is the caller's SQL for the flags it gives a case in this statement (the flags app owns the
    flags: grouping's attach, an ``UPDATE … RETURNING``), returning ``case_id, signal, request_count, score,
    observed_to`` per flag; ``params`` its parameters (none may start with ``add_``); ``case_ids`` every case it
    may name. Incremental: each case gains what this batch adds to it (count and request total added, score and
    last observation the larger, signals united), so the cost depends on the batch, never on how many flags a
    case already has. Two statements for the whole batch, and no row of it passes through Python: lock the
    cases (``_LOCK_CASES``), then attach, sum and write each case once (``_ADD_FLAGS``). A request total
    saturates at bigint's maximum. Derived values only; the flags that produced them are audited by the grouping
    event.
    """
    if not case_ids:
        return CasesAdded(0, [])
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_CASES, [sqlarray.ints(sorted(set(case_ids)))])
        cursor.execute(_add_flags_sql(attached), {
            **params, "add_now": now, "add_cases": sqlarray.ints(sorted(set(case_ids)))})
        flags, cases = cursor.fetchone()
    return CasesAdded(int(flags), [int(pk) for pk in cases.split(",")] if cases else [])


@transaction.atomic
def account_profile_set(*, actor, account: Account, contact_email: str | None = None, region: str | None = None,
                        researcher_programme: bool | None = None) -> Account:
    """Set an account's contact email, region or researcher-programme enrolment; ``None`` leaves a field as it is.

    Enrolment changes how a case is read (good-faith research gets flagged too), so every change is audited
    with its before and after; a call that changes nothing writes nothing. The audit trail can never be
    erased, so it records *that* the contact email changed, never the address itself.
    """
    # NO KEY: grouping keeps opening cases that reference this row while we hold it.
    account = Account.objects.select_for_update(no_key=True).get(pk=account.pk)
    wanted = {"contact_email": contact_email, "region": region, "researcher_programme": researcher_programme}
    changed = sorted(name for name, value in wanted.items() if value is not None and getattr(account, name) != value)
    if not changed:
        return account
    before = {name: getattr(account, name) for name in changed}
    for name in changed:
        setattr(account, name, wanted[name])
    account.clean_fields(exclude=[f.name for f in Account._meta.fields if f.name not in changed])
    account.save(update_fields=changed)
    data = {"account": account.external_id, "changed": changed}
    data.update({name: {"from": before[name], "to": wanted[name]} for name in changed if name != "contact_email"})
    record(actor=actor, action=AuditAction.ACCOUNT_PROFILE_UPDATED, target=account, data=data)
    return account


@transaction.atomic
def case_note_add(*, author, case: Case, text: str):
    """An internal note (never shown to the holder)."""
    from django.core.exceptions import PermissionDenied

    from ..models import CaseNote

    if not author.has_perm("cases.add_casenote"):
        raise PermissionDenied("Your role does not write case notes.")
    if not text.strip():
        raise ValueError("a note needs text")
    ensure_within_limits(CaseNote, text=text.strip())
    note = CaseNote.objects.create(case=case, author=author, text=text.strip())
    record(actor=author, action=AuditAction.CASE_NOTE_ADDED, target=case, data={"note": note.pk})
    return note
