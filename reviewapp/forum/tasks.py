"""Celery tasks of the Forum app (queue ``forum``): thin, each calls one service."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="reviewapp.forum.tasks.pull_inbound", acks_late=True)
def pull_inbound() -> list[dict]:
    """Beat: pull every configured collection after its cursor, match, flag (inbound.inbound_pull_all)."""
    from .inbound import inbound_pull_all

    return [result.as_dict() | {"errors": result.errors} for result in inbound_pull_all()]


@shared_task(name="reviewapp.forum.tasks.backfill_match_indexes", acks_late=True)
def backfill_match_indexes() -> dict:
    """Beat: local accounts' pseudonyms and flag evidence's simhashes into the matching indexes."""
    from .inbound import fingerprints_backfill, pseudonyms_backfill

    return {"pseudonyms": pseudonyms_backfill(), "fingerprints": fingerprints_backfill()}


@shared_task(name="reviewapp.forum.tasks.reconcile_pushes", acks_late=True)
def reconcile_pushes() -> list[int]:
    """Beat: re-arm the pushes whose outbox message gave up (services.forum_pushes_reconcile)."""
    from .services import forum_pushes_reconcile

    return forum_pushes_reconcile()
