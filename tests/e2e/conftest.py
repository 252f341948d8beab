"""tests/e2e: every test here runs in Chromium (the harness is tests/browser.py, a plugin of the whole suite)."""

from __future__ import annotations

import pytest

from tests.browser import serious_accessibility_violations  # noqa: F401 — imported from here by older tests


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            # Browser tests share one process (one Chromium); those needing the real Celery worker run in
            # the worker's process instead, so a test session never runs two workers.
            group = "worker" if item.get_closest_marker("worker") else "browser"
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True)
def _fresh_rate_limits(fresh_rate_limits):
    """Rate-limit counters are per address, and every browser test signs in from 127.0.0.1."""
