"""Compliance reporting on a read replica: opt-in, for the console's read-only pages only.

With ``COMPLIANCE_REPLICA_URL`` set (a streaming replica of the primary), the settings add the database alias
``compliance_replica`` and ``ComplianceReplicaRouter``. A view wrapped in ``reads_on_replica`` then reads through
the replica; everything else — every other page, every task, and every write anywhere (the router sends all
writes to the primary, even of an object read from the replica) — stays on the primary. Without the setting there
is no alias and the router answers nothing: every read goes to the primary, as before.

Only pages that write nothing and may lag the primary by the replica's delay are wrapped: today the decision
register. The audit explorer's search bounds itself with a statement timeout set on the primary's connection (it
would have to move with the reads), and verification of the chain, exports (audited), the evidence-access log and
a decision's record stay on the primary. Django routes by model, and the same models serve reviewers, so the choice
is made per request, by a context variable the wrapped view sets for its own length (the middleware's session and
permission reads before it run on the primary).
"""

from __future__ import annotations

import contextlib
import functools
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

REPLICA = "compliance_replica"
_on_replica: ContextVar[bool] = ContextVar("compliance_reads_on_replica", default=False)


@contextlib.contextmanager
def replica_reads():
    """Reads inside go to the replica when one is configured (writes never do)."""
    token = _on_replica.set(True)
    try:
        yield
    finally:
        _on_replica.reset(token)


def reads_on_replica(view):
    """Decorate a read-only view: its queries (and its template's, rendered inside) read the replica."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        with replica_reads():
            response = view(request, *args, **kwargs)
            if callable(getattr(response, "render", None)) and not getattr(response, "is_rendered", True):
                response.render()  # a TemplateResponse would otherwise query after the context ends
            return response

    return wrapper


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


class ComplianceReplicaRouter:
    def db_for_read(self, model, **hints):
        return REPLICA if _on_replica.get() and replica_configured() else None

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS  # never the replica, even for an instance read from it

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica holds the primary's rows

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return False if db == REPLICA else None
