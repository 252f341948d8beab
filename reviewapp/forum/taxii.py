"""The only code that talks TAXII 2.1 to the Forum hub (``taxii2-client``).

Every failure to get an answer (hub down, timeout, 5xx, 4xx, a body that is not TAXII) is ``HubUnavailable``
with a message for the staff pages; the outbox retries it with back-off, so a hub that is down means delay,
never loss. ``pull`` reads a collection page by page after an ``added_after`` cursor (inbound intelligence).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import requests
from django.conf import settings
from taxii2client.common import TAXIIServiceException, _HTTPConnection
from taxii2client.exceptions import InvalidJSONError
from taxii2client.v21 import Collection, Status

from .trust_groups import TrustGroup


class HubUnavailable(Exception):
    """The hub did not give a usable answer; try again later."""


class StatusUnknown(HubUnavailable):
    """The hub answers but does not know the status resource (404): it lost the request, e.g. restarted."""


class _TimeoutSession(requests.Session):
    # taxii2-client passes no timeout to requests; a hub that accepts the connection and never answers must
    # not hold a worker thread. The last answer's headers are kept: taxii2-client returns only the body, and the
    # pull's cursor is a header (X-TAXII-Date-Added-Last).
    last_headers: dict = {}

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", settings.FORUM_TAXII_TIMEOUT_SECONDS)
        response = super().request(*args, **kwargs)
        self.last_headers = dict(response.headers)
        return response


def connection() -> _HTTPConnection:
    conn = _HTTPConnection(version="2.1", user_agent="reviewapp-forum/1")
    session = _TimeoutSession()
    if settings.FORUM_TAXII_USER:
        session.auth = requests.auth.HTTPBasicAuth(settings.FORUM_TAXII_USER, settings.FORUM_TAXII_PASSWORD)
    conn.session = session
    return conn


def collection(group: TrustGroup, conn: _HTTPConnection | None = None) -> Collection:
    return Collection(group.url, conn=conn or connection())


@dataclass(frozen=True)
class HubStatus:
    """A TAXII status resource, reduced to what we keep."""

    id: str
    status: str  # "pending" or "complete"
    success_count: int
    failure_count: int
    pending_count: int
    successes: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @classmethod
    def of(cls, status: Status) -> HubStatus:
        return cls(id=status.id, status=status.status, success_count=status.success_count or 0,
                   failure_count=status.failure_count or 0, pending_count=status.pending_count or 0,
                   successes=list(status.successes or []), failures=list(status.failures or []))


def _describe(exc: Exception, group: TrustGroup) -> str:
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        detail = exc.response.text[:300].strip()
        return f"HTTP {exc.response.status_code} from the Forum hub ({group.url})" + (f": {detail}" if detail else "")
    return f"could not reach the Forum hub at {group.url}: {type(exc).__name__}: {exc}"[:1000]


_FAILURES = (requests.RequestException, TAXIIServiceException, InvalidJSONError, ValueError, KeyError)


def post_bundle(group: TrustGroup, body: bytes) -> HubStatus:
    """POST the exact bytes to the collection's objects endpoint; the hub's first status."""
    try:
        return HubStatus.of(collection(group).add_objects(body, wait_for_completion=False))
    except _FAILURES as exc:
        raise HubUnavailable(_describe(exc, group)) from exc


def get_status(group: TrustGroup, status_id: str) -> HubStatus:
    url = f"{group.api_root.rstrip('/')}/status/{status_id}/"
    try:
        status = Status(url, conn=connection())
        return HubStatus.of(status)
    except requests.HTTPError as exc:
        if exc.response is not None and exc.response.status_code == 404:
            raise StatusUnknown(_describe(exc, group)) from exc
        raise HubUnavailable(_describe(exc, group)) from exc
    except _FAILURES as exc:
        raise HubUnavailable(_describe(exc, group)) from exc


def object_present(group: TrustGroup, stix_id: str, version: str) -> bool:
    """Whether the collection holds ``stix_id`` at ``version`` (its ``modified``; "" for an SCO: any version)."""
    try:
        answer = collection(group).object_versions(stix_id)
    except requests.HTTPError as exc:
        if exc.response is not None and exc.response.status_code == 404:
            return False
        raise HubUnavailable(_describe(exc, group)) from exc
    except _FAILURES as exc:
        raise HubUnavailable(_describe(exc, group)) from exc
    versions = answer.get("versions", []) if isinstance(answer, dict) else []
    return bool(versions) if not version else version in versions


def delete_object(group: TrustGroup, stix_id: str) -> None:
    """TAXII 2.1 Delete An Object: afterwards the collection does not hold ``stix_id`` (an SCO has one version).
    An object the hub does not hold (404: deleted by an earlier try whose answer was lost) counts as deleted."""
    try:
        collection(group).delete_object(stix_id)
    except requests.HTTPError as exc:
        if exc.response is not None and exc.response.status_code == 404:
            return
        raise HubUnavailable(_describe(exc, group)) from exc
    except _FAILURES as exc:
        raise HubUnavailable(_describe(exc, group)) from exc


def read_objects(group: TrustGroup, **filters) -> list[dict]:
    """Every object of the collection (all pages), newest version of each unless filters say otherwise."""
    from taxii2client.v21 import as_pages

    found: list[dict] = []
    try:
        for envelope in as_pages(collection(group).get_objects, per_request=100, **filters):
            found.extend(envelope.get("objects", []))
    except _FAILURES as exc:
        raise HubUnavailable(_describe(exc, group)) from exc
    return found


@dataclass(frozen=True)
class Page:
    """One page of a pull: its objects, the hub's X-TAXII-Date-Added-Last, and whether more pages follow (the
    envelope's ``more``): the next page may hold objects added at that same instant (one POST dates them alike)."""

    objects: list[dict]
    added_last: str
    more: bool = False


def pull(group: TrustGroup, *, added_after: str = "", per_request: int = 100):
    """Yield the pages of objects added to the collection after ``added_after`` (every page, taxii2-client's
    ``as_pages``; the newest version of each object the hub holds). ``HubUnavailable`` on any failure: the
    caller keeps the cursor of the last page it stored, so the next pull goes on from there."""
    from taxii2client.v21 import as_pages

    conn = connection()
    filters = {"added_after": added_after} if added_after else {}
    try:
        for envelope in as_pages(collection(group, conn).get_objects, per_request=per_request, **filters):
            added_last = conn.session.last_headers.get("X-TAXII-Date-Added-Last", "")
            yield Page(objects=list(envelope.get("objects", [])), added_last=added_last,
                       more=bool(envelope.get("more", False)))
    except _FAILURES as exc:
        raise HubUnavailable(_describe(exc, group)) from exc
