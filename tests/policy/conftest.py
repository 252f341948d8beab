"""A copy of the real policies/ directory that a test may edit, and helpers to load and edit it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.conf import settings

from reviewapp.audit.services import SYSTEM
from reviewapp.policy.services import policies_load

POLICY_FILE = "usage-policy.md"


@pytest.fixture
def policy_dir(tmp_path) -> Path:
    """tmp_path/policies holding a copy of the real policies/ (README included, which the loader skips)."""
    directory = tmp_path / "policies"
    shutil.copytree(settings.POLICIES_DIR, directory)
    return directory


def load(directory: Path | None = None):
    return policies_load(directory=directory or settings.POLICIES_DIR, actor=SYSTEM)


def edit(path: Path, old: str, new: str, *, after: str = "") -> None:
    """Replace the first ``old`` that follows ``after`` (e.g. a clause heading) in the file at ``path``."""
    text = path.read_text()
    start = text.index(after) if after else 0
    at = text.index(old, start)
    path.write_text(text[:at] + new + text[at + len(old):])


def heading(ref: str) -> str:
    return f"### {ref} "


@pytest.fixture
def loaded(db):
    """The real policy, published as v1."""
    [result] = load()
    return result.version
