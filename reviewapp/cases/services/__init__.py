"""Writes for accounts, campaigns and cases. Each writes its audit events in the same transaction."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import Entry, Target, record, record_many

from ..models import Account, Campaign, Case
from ..priority import SLA_DEFAULT, case_priority, sla_for
from ..vocabulary import queue_for
from ..workflow import TRANSITIONS, InvalidCaseTransition


@transaction.atomic
def case_transition(*, case: Case, to: str, actor, reason: str = "") -> Case:
    """Move a case along the workflow table (workflow.TRANSITIONS); anything else raises InvalidCaseTransition."""
    case = Case.objects.select_for_update(no_key=True).get(pk=case.pk)
    to = Case.State(to)
    if to not in TRANSITIONS[case.state]:
        raise InvalidCaseTransition(case, to)
    before = case.state
    case.state = to
    case.closed_at = timezone.now() if to == Case.State.CLOSED else case.closed_at
    case.save(update_fields=["state", "closed_at", "updated_at"])
    record(actor=actor, action=AuditAction.CASE_TRANSITIONED, target=case,
           data={"from": before, "to": to.value, "reason": reason})
    return case


def accounts_ensure(*, accounts: dict[str, str]) -> dict[str, int]:
    """Make sure each flagged account exists ({external_id: organization_id}); return {external_id: pk}.

    An account row records only that the platform account was flagged; its first flag's grouping
    event (``case.opened``) is its audit record.
    """
    # Inserted in one order (sorted) by every grouping transaction, so two that race cannot deadlock.
    ids = sorted(accounts)
    orgs = [accounts[i] for i in ids]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO cases_account (external_id, organization_id, contact_email, region,
                                       researcher_programme, enforcement_status, first_flagged_at)
            SELECT i, o, '', '', false, 'none', now() FROM unnest(%s::text[], %s::text[]) AS t(i, o)
            ON CONFLICT (external_id) DO NOTHING
            """,
            [ids, orgs],
        )
    return dict(Account.objects.filter(external_id__in=ids).values_list("external_id", "pk"))


def open_cases_for(*, account_ids: set[int], actor, opened_by: dict[int, list[str]],
                   events: list[Entry] | None = None) -> dict[int, int]:
    """Return {account_id: open case id}, opening a case (audited) for each account without one.

    The database allows one open case per account (a partial unique index); two grouping workers that
    race to open the same account's case both end up with the one that won. With ``events`` given, the
    ``case.opened`` events are appended to it for the caller to record later in the same transaction
    (grouping records all of a batch's events at once, after its case rows are updated).
    """
    existing = dict(
        Case.objects.filter(account_id__in=account_ids, state__in=Case.OPEN_STATES).values_list("account_id", "pk")
    )
    missing = sorted(account_ids - set(existing))
    if missing:
        now = timezone.now()
        with connection.cursor() as cursor:
            # Opened with the longest SLA; cases_refresh brings it closer as soon as the flags are counted.
            cursor.execute(
                """
                INSERT INTO cases_case (account_id, state, queue, priority, sla_due_at, signals, flag_count,
                                        total_requests, max_score, opened_at, updated_at)
                SELECT a, 'new', '', 0, %(due)s, '{}', 0, 0, 0, %(now)s, %(now)s FROM unnest(%(accounts)s::bigint[]) a
                ON CONFLICT (account_id) WHERE state IN ('new', 'in_review', 'awaiting_approval') DO NOTHING
                RETURNING account_id, id
                """,
                {"accounts": missing, "now": now, "due": now + SLA_DEFAULT},
            )
            opened = dict(cursor.fetchall())
        existing.update(opened)
        raced = set(missing) - set(opened)
        if raced:
            existing.update(Case.objects.filter(account_id__in=raced, state__in=Case.OPEN_STATES)
                            .values_list("account_id", "pk"))
        opened_events = [
            Entry(actor=actor, action=AuditAction.CASE_OPENED, target=Target("cases.case", str(case_id)),
                  data={"account_id": account_id, "flags": opened_by.get(account_id, [])[:20]})
            for account_id, case_id in sorted(opened.items())
        ]
        if events is None:
            record_many(opened_events)
        else:
            events.extend(opened_events)
    return existing


def campaigns_link(*, case_clusters: dict[int, str], actor, events: list[Entry] | None = None) -> None:
    """Link cases to the campaign of their detector cluster ("detector-slug:cluster-id").

    A case joins the first campaign its flags name and stays there; a new cluster key creates a campaign.
    With ``events`` given, the audit events are appended to it for the caller to record (as open_cases_for).
    """
    keys = sorted(set(case_clusters.values()))
    campaigns = {c.key: c for c in Campaign.objects.filter(key__in=keys)}
    new = [Campaign(key=key, detector_slug=key.split(":", 1)[0], cluster_id=key.split(":", 1)[1],
                    name=f"Cluster {key.split(':', 1)[1]} ({key.split(':', 1)[0]})")
           for key in keys if key not in campaigns]
    if new:
        Campaign.objects.bulk_create(new, ignore_conflicts=True)
        campaigns = {c.key: c for c in Campaign.objects.filter(key__in=keys)}
    entries = [Entry(actor=actor, action=AuditAction.CAMPAIGN_CREATED, target=campaigns[c.key], data={"key": c.key})
               for c in new if c.key in campaigns]
    unlinked = sorted(Case.objects.filter(pk__in=case_clusters, campaign__isnull=True).values_list("pk", flat=True))
    by_campaign: dict[str, list[int]] = defaultdict(list)
    for case_id in unlinked:
        by_campaign[case_clusters[case_id]].append(case_id)
        entries.append(Entry(actor=actor, action=AuditAction.CASE_CAMPAIGN_LINKED,
                             target=Target("cases.case", str(case_id)), data={"campaign": case_clusters[case_id]}))
    if by_campaign:  # one UPDATE for all of them, not one per case or per campaign
        ids = [case_id for case_ids in by_campaign.values() for case_id in case_ids]
        links = [campaigns[key].pk for key, case_ids in by_campaign.items() for _ in case_ids]
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE cases_case c SET campaign_id = l.campaign_id "
                "FROM unnest(%s::bigint[], %s::bigint[]) AS l(case_id, campaign_id) "
                "WHERE c.id = l.case_id AND c.campaign_id IS NULL",
                [ids, links],
            )
    if events is None:
        record_many(entries)
    else:
        events.extend(entries)


@dataclass(frozen=True)
class FlagsAdded:
    """What one grouping batch adds to one case (computed by the flags app, which owns the flags)."""

    case_id: int
    flag_count: int
    total_requests: int
    max_score: float
    last_observed_at: datetime
    signals: list[str]


# bigint's largest value: a case's request total saturates there instead of overflowing.
MAX_TOTAL_REQUESTS = 2**63 - 1

# Adds a batch's per-case deltas to the stored aggregates in one statement. The arithmetic happens on the
# row as it is when this transaction locks it (READ COMMITTED re-reads a row another transaction updated
# meanwhile), so concurrent batches for one case each add their own flags and none is lost. The cost
# depends on the batch only, never on how many flags a case already has. Rows are locked in case id
# order first (the MATERIALIZED CTE), so two batches touching the same cases cannot deadlock.
_ADD_FLAGS = """
WITH d AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(counts)s::integer[], %(requests)s::numeric[], %(scores)s::float8[],
                         %(observed)s::timestamptz[], %(signals)s::text[])
        AS d(case_id, flag_count, total_requests, max_score, last_observed_at, signals)
), locked AS MATERIALIZED (
    SELECT id FROM cases_case WHERE id IN (SELECT case_id FROM d) ORDER BY id FOR NO KEY UPDATE
)
UPDATE cases_case c SET
    flag_count = c.flag_count + d.flag_count,
    total_requests = LEAST(c.total_requests::numeric + d.total_requests, %(max_total)s)::bigint,
    max_score = GREATEST(c.max_score, d.max_score),
    last_observed_at = GREATEST(c.last_observed_at, d.last_observed_at),
    signals = ARRAY(SELECT DISTINCT s COLLATE "C" FROM unnest(c.signals || string_to_array(d.signals, ',')::varchar[])
                    AS t(s) ORDER BY 1),
    updated_at = %(now)s
FROM d JOIN locked ON locked.id = d.case_id
WHERE c.id = d.case_id
RETURNING c.id, c.signals, c.max_score, c.total_requests, c.last_observed_at, c.opened_at, c.sla_due_at
"""
_SET_PRIORITY = """
UPDATE cases_case c SET queue = p.queue, priority = p.priority, sla_due_at = p.sla_due_at
FROM unnest(%s::bigint[], %s::text[], %s::integer[], %s::timestamptz[]) AS p(case_id, queue, priority, sla_due_at)
WHERE c.id = p.case_id
"""


def cases_add_flags(*, added: list[FlagsAdded], now: datetime | None = None) -> int:
    """Add newly attached flags to their cases' aggregates, then set queue, priority and SLA (priority.py).

    Derived values only; the flags that produced them are audited by the grouping event. Two statements
    for the whole batch: the aggregates are added in SQL (see ``_ADD_FLAGS``), and queue, priority and SLA
    are computed here from the updated rows, which this transaction holds locked until it commits.
    Returns how many cases changed.
    """
    if not added:
        return 0
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_ADD_FLAGS, {
            "ids": [a.case_id for a in added], "counts": [a.flag_count for a in added],
            "requests": [min(a.total_requests, MAX_TOTAL_REQUESTS) for a in added],
            "scores": [a.max_score for a in added], "observed": [a.last_observed_at for a in added],
            "signals": [",".join(a.signals) for a in added], "max_total": MAX_TOTAL_REQUESTS, "now": now,
        })
        rows = cursor.fetchall()
        ids, queues, priorities, due = [], [], [], []
        for case_id, signals, max_score, total_requests, last_observed_at, opened_at, sla_due_at in rows:
            priority = case_priority(signals=signals, max_score=max_score, total_requests=total_requests,
                                     last_observed=last_observed_at, now=now)
            ids.append(case_id)
            queues.append(queue_for(signals))
            priorities.append(priority)
            # The SLA only ever gets closer: a rising priority shortens it, a falling one never extends it.
            due.append(min(sla_due_at, opened_at + sla_for(priority)))
        cursor.execute(_SET_PRIORITY, [ids, queues, priorities, due])
    return len(rows)


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
    note = CaseNote.objects.create(case=case, author=author, text=text.strip())
    record(actor=author, action=AuditAction.CASE_NOTE_ADDED, target=case, data={"note": note.pk})
    return note
