"""A detector that streams its body (``Transfer-Encoding: chunked``, no Content-Length) through the web server
make run and production use: gunicorn de-chunks it, and the flags API reads it to its end, limit enforced."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from flags.models import Flag
from tests.conftest import _free_port, flag_payload
from tests.support import ROOT, child_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("gunicorn")]
LIMIT = 64 * 1024


@pytest.fixture
def gunicorn(detector_token, artifacts_dir) -> Iterator[int]:
    """One gunicorn worker on the test database, with a small body limit so that 413 is cheap to reach."""
    port = _free_port()
    log = open(artifacts_dir / f"gunicorn-streamed-{os.getpid()}.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "reviewapp.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--graceful-timeout", "2"],
        cwd=ROOT, env=child_env(FLAGS_MAX_BODY_BYTES=str(LIMIT)), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "gunicorn did not start; see its log"
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/healthz")
                connection.getresponse().read()
                break
            except OSError:
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def post_chunked(port: int, token: str, parts: list[bytes]) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        # An iterable body and no Content-Length: http.client sends it chunk by chunk.
        connection.request("POST", "/api/v1/flags/", body=iter(parts), encode_chunked=True, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json",
            "Transfer-Encoding": "chunked"})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"{}")
    finally:
        connection.close()


def test_a_streamed_flag_is_created(gunicorn, detector_token):
    body = json.dumps(flag_payload(1)).encode()
    status, answer = post_chunked(gunicorn, detector_token, [body[:10], body[10:40], body[40:]])
    assert (status, answer["created"], answer["rejected"]) == (201, 1, [])
    assert Flag.objects.get().external_id == "f-1"

    batch = json.dumps({"flags": [flag_payload(n) for n in range(2, 50)]}).encode()
    status, answer = post_chunked(gunicorn, detector_token, [batch[i:i + 1000] for i in range(0, len(batch), 1000)])
    assert (status, answer["created"]) == (201, 48)


def test_a_streamed_body_over_the_limit_is_413_naming_it(gunicorn, detector_token):
    filler = json.dumps({"flags": [flag_payload(n, evidence={"pad": "x" * 4000}) for n in range(20)]}).encode()
    assert len(filler) > LIMIT
    status, answer = post_chunked(gunicorn, detector_token, [filler[i:i + 8192] for i in range(0, len(filler), 8192)])
    assert status == 413 and str(LIMIT) in answer["detail"]
    assert not Flag.objects.exists()
