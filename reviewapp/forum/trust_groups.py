"""The Forum's trust groups: one TAXII 2.1 collection each, configured in settings.

``FORUM_COLLECTIONS`` maps a collection id to ``{"name": ..., "url": ...}`` where ``url`` is the
collection's TAXII URL (``<api root>/collections/<id>/``; by default under ``FORUM_TAXII_API_ROOT``, read
when asked, so a test or `make run` can move the hub). A share names its destination by collection id;
the push looks the URL up here at delivery time. ``FORUM_TAXII_USER`` / ``FORUM_TAXII_PASSWORD`` are the
hub's basic-auth credentials.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


class UnknownCollection(LookupError):
    pass


@dataclass(frozen=True)
class TrustGroup:
    collection_id: str
    name: str
    url: str

    @property
    def api_root(self) -> str:
        return self.url.rstrip("/").rsplit("/collections/", 1)[0] + "/"


def collection_url(collection_id: str) -> str:
    """A collection's URL under ``FORUM_TAXII_API_ROOT`` (when its configuration gives none)."""
    return f"{settings.FORUM_TAXII_API_ROOT.rstrip('/')}/collections/{collection_id}/"


def trust_groups() -> list[TrustGroup]:
    configured = getattr(settings, "FORUM_COLLECTIONS", {}) or {}
    return [TrustGroup(collection_id=cid, name=conf["name"], url=conf.get("url") or collection_url(cid))
            for cid, conf in configured.items()]


def trust_group(collection_id: str) -> TrustGroup:
    for group in trust_groups():
        if group.collection_id == collection_id:
            return group
    known = ", ".join(f"{g.collection_id} ({g.name})" for g in trust_groups()) or "none configured"
    raise UnknownCollection(f"collection {collection_id!r} is not a configured trust group (known: {known})")


def collection_choices() -> list[tuple[str, str]]:
    return [(g.collection_id, g.name) for g in trust_groups()]
