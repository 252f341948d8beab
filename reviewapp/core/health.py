"""What /healthz reports: can we reach the database and the broker?"""

from __future__ import annotations

from django.db import connection


def database_state() -> str | None:
    """None when healthy, else why not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()[:300]
    return None


def broker_state(timeout: float = 3.0) -> str | None:
    from reviewapp.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()[:300]
    return None
