"""Two database sessions at once, for the Forum's race tests: ``started`` runs a step in a thread of its own (its
own database connection), so a test can hold one transaction open at the point that matters while another runs."""

from __future__ import annotations

import threading

from django.db import connection


def started(target, errors: list[BaseException]) -> threading.Thread:
    """``target`` running in a new thread; what it raises goes to ``errors`` for the test to report."""
    def body():
        try:
            target()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=body)
    thread.start()
    return thread


def waits_for(holder: threading.Thread, release: threading.Event, target, errors: list[BaseException], *,
              what: str) -> None:
    """Start ``target`` while ``holder`` keeps its transaction open at the point that matters; check that it waits
    (still running two seconds later: ``what`` says for what), then release the holder and let both finish."""
    waiting = started(target, errors)
    waiting.join(2)
    assert waiting.is_alive(), what
    release.set()
    holder.join(60)
    waiting.join(60)
    assert not holder.is_alive() and not waiting.is_alive() and not errors, errors
