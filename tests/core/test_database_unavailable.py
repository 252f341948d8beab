"""The database unreachable or its connection dropped: 503 with Retry-After (JSON under /api/, a plain page
elsewhere), never a 500 or a hang, and the next request connects afresh. Real broken connections: this test's
own backend ended by pg_terminate_backend (what a fast shutdown does to every backend), and a server address
that accepts the TCP connection but never answers (libpq's connect_timeout ends the wait).
"""

from __future__ import annotations

import json
import socket
import threading

import psycopg
import pytest
from django.db import IntegrityError, OperationalError, ProgrammingError, connection, connections, transaction
from django.test import Client

from flags.models import Detector, Flag
from reviewapp.core.database_unavailable import DETAIL, is_database_unavailable
from reviewapp.people.roles import Role
from tests.conftest import flag_payload

pytestmark = pytest.mark.django_db(transaction=True)


def _other_connection() -> psycopg.Connection:
    db = connection.settings_dict
    return psycopg.connect(dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None,
                           host=db["HOST"] or None, port=db["PORT"] or None, autocommit=True)


def _drop_this_connection() -> int:
    """End this thread's database backend from another connection, as a fast shutdown ends every backend."""
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    with _other_connection() as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    return pid


def _post_flags(client, token: str, *flags: dict):
    return client.post("/api/v1/flags/", json.dumps({"flags": list(flags)}), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {token}")


def test_a_dropped_connection_is_a_503_for_the_api_and_the_next_request_reconnects(client, detector_token):
    _drop_this_connection()
    refused = _post_flags(client, detector_token, flag_payload(1))
    assert refused.status_code == 503, refused.content
    assert refused.json() == {"detail": DETAIL} and "database is unavailable" in DETAIL
    assert int(refused["Retry-After"]) > 0 and "no-store" in refused["Cache-Control"]
    assert connection.connection is None, "the broken connection is closed, so the next request connects again"

    accepted = _post_flags(client, detector_token, flag_payload(1))
    assert accepted.status_code == 201 and accepted.json()["created"] == 1
    assert Flag.objects.count() == 1


def _refused_port() -> int:
    with socket.socket() as probe:  # bound and closed again: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_an_unreachable_database_in_a_middleware_is_a_503_page(debug, settings, make_staff):
    """The session and the user are read by middleware before any view (handler500's path), with DEBUG on too.
    The server refuses every connection for the whole request: a page that needed the database could not render."""
    settings.DEBUG = debug
    client = Client(raise_request_exception=False)
    client.force_login(make_staff(Role.REVIEWER))
    connection.close()
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
        patch.setitem(connection.settings_dict, "PORT", str(_refused_port()))
        page = client.get("/")
    assert page.status_code == 503, page.content[:300]
    assert page["Content-Type"].startswith("text/html") and int(page["Retry-After"]) > 0
    body = page.content.decode()
    assert "<h1>Temporarily unavailable</h1>" in body and "<script" not in body and "Traceback" not in body
    assert connection.connection is None
    assert client.get("/").status_code == 200  # the server is back: the next request connects


def test_healthz_names_the_database_as_down_and_recovers(client):
    _drop_this_connection()
    down = client.get("/healthz")
    assert down.status_code == 503 and down.json()["database"] == "down" and "database" in down.json()["down"]
    up = client.get("/healthz")
    assert up.json()["database"] == "ok", "the next probe reconnects"


def test_a_server_that_never_answers_is_a_503_after_the_connect_timeout_not_a_hang(settings, detector_token):
    """A listening socket that never speaks: the kernel completes the TCP handshake, libpq waits for the server's
    first word until connect_timeout (2 s, libpq's least), and the request is answered 503."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    answers: list = []

    def request() -> None:  # a thread of its own: its own connection, made from the patched settings
        try:
            answers.append(_post_flags(Client(), detector_token, flag_payload(1)))
        finally:
            connections.close_all()

    db = connection.settings_dict
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(db, "HOST", "127.0.0.1")
        patch.setitem(db, "PORT", str(silent.getsockname()[1]))
        patch.setitem(db, "OPTIONS", {**db.get("OPTIONS", {}), "connect_timeout": 2})
        worker = threading.Thread(target=request, daemon=True)
        worker.start()
        worker.join(30)
    silent.close()
    assert not worker.is_alive(), "the request hung on a server that does not answer"
    assert answers and answers[0].status_code == 503 and answers[0].json() == {"detail": DETAIL}


def test_only_an_unreachable_database_counts_errors_of_ours_stay_errors(detector):
    """Real errors from PostgreSQL, each classified: constraint, programming and timeout errors are not 503s."""
    def error_of(statement, *params):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout = '50ms'")
                cursor.execute(statement, params)
        except Exception as exc:
            return exc
        raise AssertionError(f"{statement} did not fail")

    with pytest.raises(IntegrityError) as duplicate, transaction.atomic():
        Detector.objects.create(slug=detector.slug, name="Same slug", owner_team="T&S")
    assert not is_database_unavailable(duplicate.value)
    typo = error_of("SELECT * FROM no_such_table")
    assert isinstance(typo, ProgrammingError) and not is_database_unavailable(typo)
    timeout = error_of("SELECT pg_sleep(1)")
    assert isinstance(timeout, OperationalError) and not is_database_unavailable(timeout)

    _drop_this_connection()
    with pytest.raises(OperationalError) as dropped:
        Detector.objects.count()
    assert is_database_unavailable(dropped.value)
    connection.close()


def test_a_transaction_that_loses_its_connection_commits_nothing(detector):
    """PostgreSQL rolls back what the dropped backend had; the ORM raises rather than carrying on."""
    with pytest.raises(OperationalError) as dropped, transaction.atomic():
        Detector.objects.filter(pk=detector.pk).update(name="renamed inside the lost transaction")
        Detector.objects.create(slug="lost", name="Lost", owner_team="T&S")
        _terminate_from_outside(connection.connection.info.backend_pid)
        Detector.objects.create(slug="after", name="After", owner_team="T&S")
    assert is_database_unavailable(dropped.value)
    connection.close()
    assert list(Detector.objects.values_list("slug", "name")) == [(detector.slug, detector.name)]


def _terminate_from_outside(pid: int) -> None:
    with _other_connection() as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
