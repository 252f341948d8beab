"""Removing delivered emails' bodies under the retention policy (DESIGN.md invariant 8).

An email's payload holds its recipients, its text and its HTML: sign-in links to the appeals portal and the
holder's personal data. Once delivered it is never sent again (``outbox_retry`` refuses a delivered message), so
after the retention period the payload keeps only its subject (what the outbox page lists it by) and the
retention marker ``{"removed_under_retention": {"at": <when>, "recipients": <how many there were>}}``. The row
itself stays, with its kind, target, idempotency key, attempts and delivery time: what was sent about which
decision or appeal, and when, remains answerable; to whom is no longer kept (the account's contact address lives
on the account). A pending or failed message is never touched: it has not been delivered.

Which messages are due is the compliance console's rule (``reviewapp.compliance.retention``); this module only
removes what it is handed, and writes one ``outbox.bodies_purged`` event per call in the same transaction.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction
from django.db.models import Q

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import SYSTEM, record

from .models import OutboxMessage

RETENTION_MARKER = "removed_under_retention"

# A delivered email whose body is still held.
EMAIL_BODY_HELD = (Q(kind="email", state=OutboxMessage.State.DELIVERED)
                   & ~Q(payload__has_key=RETENTION_MARKER))


def outbox_email_bodies_purge(*, message_ids: list[int], at: datetime, run: str = "") -> list[int]:
    """Strip the given delivered emails to their subject and the marker; return the ids changed.

    Anything not a delivered email, already stripped, or held by another transaction is skipped (a second call
    removes nothing twice and never waits). One ``outbox.bodies_purged`` event names the messages.
    """
    if not message_ids:
        return []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            WITH chosen AS (
                SELECT id FROM outbox_outboxmessage
                WHERE id = ANY(%s) AND kind = 'email' AND state = %s AND NOT (payload ? %s)
                ORDER BY id FOR UPDATE SKIP LOCKED
            )
            UPDATE outbox_outboxmessage m
               SET payload = jsonb_build_object(
                   'subject', m.payload -> 'subject',
                   %s::text, jsonb_build_object(
                       'at', %s::text,
                       'recipients', CASE WHEN jsonb_typeof(m.payload -> 'to') = 'array'
                                          THEN jsonb_array_length(m.payload -> 'to') ELSE 0 END))
              FROM chosen
             WHERE m.id = chosen.id
            RETURNING m.id
            """,
            [list(message_ids), OutboxMessage.State.DELIVERED.value, RETENTION_MARKER, RETENTION_MARKER,
             at.isoformat()],
        )
        changed = sorted(pk for (pk,) in cursor.fetchall())
        if changed:
            record(actor=SYSTEM, action=AuditAction.OUTBOX_BODIES_PURGED, target=None,
                   data={"messages": changed, "count": len(changed), "run": run})
    return changed
