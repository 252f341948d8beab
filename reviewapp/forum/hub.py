"""A local TAXII 2.1 hub standing in for the Forum's: medallion 3.0.0 (the OASIS reference server, Flask) with
the memory backend and one collection per configured trust group (FORUM.md "Transport").

``write_hub_files`` writes medallion's configuration and data files; ``manage.py run_forum_hub`` serves them
(`make run` starts it as a child, core/stack.py); the tests start the same command as a subprocess. The memory
backend persists nothing: a restarted hub is empty. Extension definitions are never seeded into the
collections (medallion answers 500 to reads that would include one).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from .trust_groups import TrustGroup, trust_groups

STIX_MEDIA_TYPE = "application/stix+json;version=2.1"
TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"


def api_root_name(api_root: str | None = None) -> str:
    """The API root's path segment ("forum" for http://127.0.0.1:5555/forum/)."""
    path = urlsplit(api_root or settings.FORUM_TAXII_API_ROOT).path.strip("/")
    if not path or "/" in path:
        raise ValueError(f"FORUM_TAXII_API_ROOT must be http://host:port/<name>/ for the local hub, not {api_root!r}")
    return path


SEEDED_AT = "2026-01-01T00:00:00.000Z"


def _seeded(stix_object: dict) -> dict:
    """A seed object as medallion's own POST stores it: one with neither ``modified`` nor ``created`` (a cyber
    observable such as user-account) gets the hidden ``_date_added`` medallion versions it by (and strips from
    answers); without it every read of the collection fails with a 500 (KeyError in medallion's filter)."""
    if "modified" in stix_object or "created" in stix_object:
        return stix_object
    return {**stix_object, "_date_added": SEEDED_AT}


def _version(stix_object: dict) -> str:
    return stix_object.get("modified", stix_object.get("created", SEEDED_AT))


def hub_data(*, base_url: str, root: str, groups: Iterable[TrustGroup], seed: dict[str, list[dict]] | None = None):
    seed = seed or {}
    collections = []
    for group in groups:
        objects = [_seeded(o) for o in seed.get(group.collection_id, [])]
        collections.append({
            "id": group.collection_id, "title": group.name, "description": f"Trust group: {group.name}",
            "can_read": True, "can_write": True, "media_types": [STIX_MEDIA_TYPE],
            "objects": objects,
            "manifest": [{"id": o["id"], "date_added": _version(o), "version": _version(o),
                          "media_type": STIX_MEDIA_TYPE} for o in objects],
        })
    return {
        "/discovery": {"title": "Forum hub (local stand-in)", "description": "TAXII 2.1 server for the demo and tests",
                       "default": f"{base_url}/{root}/", "api_roots": [f"{base_url}/{root}/"]},
        root: {
            "information": {"title": "Forum trust groups", "description": "One collection per trust group",
                            "versions": [TAXII_MEDIA_TYPE], "max_content_length": 9765625},
            "status": [],
            "collections": collections,
        },
    }


def write_hub_files(directory: Path, *, port: int, api_root: str | None = None,
                    groups: Iterable[TrustGroup] | None = None,
                    user: str | None = None, password: str | None = None,
                    seed: dict[str, list[dict]] | None = None) -> Path:
    """Write medallion's config.json and data.json into ``directory``; return the config's path."""
    directory.mkdir(parents=True, exist_ok=True)
    root = api_root_name(api_root)
    data_path = directory / "hub-data.json"
    data_path.write_text(json.dumps(hub_data(base_url=f"http://127.0.0.1:{port}", root=root,
                                             groups=list(groups if groups is not None else trust_groups()),
                                             seed=seed)))
    config = {
        "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                    "filename": str(data_path)},
        "users": {user or settings.FORUM_TAXII_USER: password or settings.FORUM_TAXII_PASSWORD},
        "taxii": {"max_page_size": 100},
    }
    config_path = directory / "hub-config.json"
    config_path.write_text(json.dumps(config))
    config_path.chmod(0o600)
    return config_path


def serve(config_path: Path, *, port: int, host: str = "127.0.0.1") -> None:
    """Run medallion in this process until it is stopped (Flask's server: one local peer, not production)."""
    import medallion

    app = medallion.load_app(str(config_path))
    app.run(host=host, port=port, debug=False, use_reloader=False, threaded=True)
