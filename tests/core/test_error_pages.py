"""The project's own error pages, also with DEBUG on (as `make run` has it), and a request body over
DATA_UPLOAD_MAX_MEMORY_SIZE answered 413 naming the limit: HTML for pages, JSON under /api/. Never Django's
debug pages, which list every URL pattern (and, for an exception, the settings) to anyone."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

import reviewapp.core.views
from reviewapp.people.roles import Role
from tests.conftest import flag_payload
from tests.support import ROOT

pytestmark = pytest.mark.django_db
URL_LISTING = "Using the URLconf defined in"
DEBUG_PAGE = "You’re seeing this error because you have <code>DEBUG = True</code>"


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


def _page(response) -> str:
    page = response.content.decode()
    assert URL_LISTING not in page and DEBUG_PAGE not in page and "Traceback" not in page
    return page


def test_an_unknown_url_gets_our_404_in_each_layout(client, debug):
    page = _page(client.get("/no-such-page/"))
    assert "<h1>Not found</h1>" in page and "api/v1/" not in page
    response = client.get("/appeals/no-such-page/")
    assert response.status_code == 404 and "Back to your decisions" in _page(response)
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}


def test_a_view_that_raises_404_gets_our_page_with_debug_on(client, debug, make_staff):
    client.force_login(make_staff(Role.REVIEWER))
    response = client.get("/cases/999999/")
    assert response.status_code == 404 and "<h1>Not found</h1>" in _page(response)


def test_a_fault_gets_our_500_page_and_the_log_gets_the_traceback(client, settings, monkeypatch, caplog):
    settings.DEBUG = True  # with DEBUG off Django itself uses handler500 (the client would re-raise the error)

    def broken():
        raise RuntimeError("the health checks broke")

    monkeypatch.setattr(reviewapp.core.views, "health_checks", broken)
    with caplog.at_level(logging.ERROR):
        response = client.get("/healthz")
    assert response.status_code == 500 and "Something went wrong" in _page(response)
    assert "the health checks broke" not in response.content.decode()
    assert any("the health checks broke" in (record.exc_text or "") for record in caplog.records)


def test_a_bad_host_gets_our_400_page(client, debug):
    response = client.get("/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400 and "<h1>Bad request</h1>" in _page(response)


def test_a_form_body_over_the_default_limit_is_413_naming_it(client, debug, settings):
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 2_621_440  # Django's 2.5 MB
    response = client.post("/login/", {"username": "u", "password": "p" * 3_000_000})  # multipart, as a browser
    assert response.status_code == 413
    page = _page(response)
    assert "<h1>Too much sent at once</h1>" in page and "2.5 MB (2621440 bytes)" in page
    urlencoded = client.post("/login/", "password=" + "p" * 3_000_000, content_type="application/x-www-form-urlencoded")
    assert urlencoded.status_code == 413 and "2621440 bytes" in _page(urlencoded)


def test_an_api_body_over_the_limit_is_413_in_json(client, debug, settings, make_staff):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_048_576
    client.force_login(make_staff(Role.REVIEWER))
    response = client.post("/api/v1/cases/1/decisions", {"rationale": "r" * 1_100_000}, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is larger than 1048576 bytes (1 MB), the limit.",
                               "limit_bytes": 1_048_576, "limit_mb": "1"}


def test_the_flags_api_keeps_its_own_body_limit(client, detector_token, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    body = json.dumps({"flags": [flag_payload(n) for n in range(20)]})
    assert len(body) > 1_000
    response = client.post("/api/v1/flags/", body, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {detector_token}")
    assert response.status_code in (200, 201) and response.json()["created"] == 20


def test_the_demo_settings_serve_our_404_page_not_the_url_listing():
    """`make run`'s settings (reviewapp.settings.dev with REVIEWAPP_DEMO=1, DEBUG on), in a process of their own."""
    script = (
        "import json, django; django.setup()\n"
        "from django.conf import settings\n"
        "from django.test import Client\n"
        "response = Client(HTTP_HOST='127.0.0.1').get('/no-such-page/')\n"
        "print(json.dumps({'debug': settings.DEBUG, 'status': response.status_code,"
        " 'page': response.content.decode()}))\n"
    )
    env = {key: value for key, value in os.environ.items() if key not in {"DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(DJANGO_SETTINGS_MODULE="reviewapp.settings.dev", REVIEWAPP_DEMO="1", SECRET_KEY="test-only",
               PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=True)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["debug"] is True and answer["status"] == 404
    assert URL_LISTING not in answer["page"] and "api/v1/" not in answer["page"]
    assert "<h1>Not found</h1>" in answer["page"]


def test_a_form_without_its_csrf_token_gets_our_page(debug):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/login/", {"username": "u", "password": "p"})
    assert response.status_code == 403
    page = _page(response)
    assert "<h1>Not sent</h1>" in page and "CSRF_FAILURE_VIEW" not in page and "Help" not in page


def test_a_form_with_too_many_fields_gets_our_400_page(debug, settings):
    from django.test import Client

    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 100
    body = "&".join(f"field{n}=x" for n in range(200))
    # As a browser's POST is checked: CsrfViewMiddleware reads the form before the view does.
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and "<h1>Bad request</h1>" in _page(response)


def test_the_schema_documents_413_on_every_operation_with_a_body(client, make_staff):
    """The 413 above is a response like any other: each operation that reads a body says it can answer it."""
    client.force_login(make_staff(Role.ADMIN))
    schema = client.get("/api/schema/", {"format": "json"}).json()
    with_body = [(path, method, operation) for path, operations in schema["paths"].items()
                 for method, operation in operations.items()
                 if isinstance(operation, dict) and "requestBody" in operation]
    assert len(with_body) > 10
    missing = [f"{method.upper()} {path}" for path, method, operation in with_body
               if "413" not in operation["responses"]]
    assert missing == []
    first = schema["paths"][with_body[0][0]][with_body[0][1]]["responses"]["413"]
    assert first["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
