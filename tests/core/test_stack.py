"""What `make run` hands its processes."""

from reviewapp.core.stack import Stack


def test_notices_link_to_the_port_make_run_serves(monkeypatch):
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    assert Stack(port=8123).environment()["PUBLIC_BASE_URL"] == "http://127.0.0.1:8123"


def test_a_configured_public_address_wins(monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://appeals.example")
    assert Stack(port=8123).environment()["PUBLIC_BASE_URL"] == "https://appeals.example"
