"""A small TAXII 2.1 server standing in for a Forum hub that processes what it is sent asynchronously, the way a
production hub may (medallion answers "complete" at once). Run as its own process on 127.0.0.1:

    python tests/forum/taxii_standin.py --port PORT --collections ID,ID --mode pending:2

It speaks the part of TAXII 2.1 our client uses: a collection's information, Add Objects (202 with a status
resource), Get Status, Get Objects and Get Object Versions, with the TAXII media types and basic auth (any
user). ``--mode`` says how each status resource answers:

- ``pending:N``  N polls answer "pending", then "complete" with every object a success (listed);
- ``partial:N``  N polls "pending", then "complete" with every indicator failed (listed) and the rest
                 accepted, the successes counted but not listed (TAXII 2.1 makes the lists optional);
- ``failed``     "complete" at once, every object failed;
- ``never``      "pending" for ever.

Objects count as held (readable, in their versions) only once their status says they succeeded.
``GET /_stats`` answers how many times each endpoint was asked and how many objects were posted;
``POST /_mode`` with ``{"mode": ...}`` changes the mode for every status from then on (a hub that recovers).
"""

from __future__ import annotations

import argparse
import json
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TAXII = "application/taxii+json;version=2.1"
STIX = "application/stix+json;version=2.1"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Hub:
    def __init__(self, collections: list[str], mode: str, api_root: str):
        self.collections, self.mode, self.api_root = collections, mode, api_root
        self.lock = threading.Lock()
        self.held: dict[str, list[dict]] = {c: [] for c in collections}  # accepted objects, every version
        self.statuses: dict[str, dict] = {}
        self.stats = {"posts": 0, "objects_posted": 0, "status_gets": 0, "object_gets": 0, "version_gets": 0}

    def _rule(self) -> tuple[str, int]:
        kind, _, polls = self.mode.partition(":")
        return kind, int(polls or 0)

    def post(self, collection: str, objects: list[dict]) -> dict:
        with self.lock:
            self.stats["posts"] += 1
            self.stats["objects_posted"] += len(objects)
            status_id = str(uuid.uuid4())
            self.statuses[status_id] = {"collection": collection, "objects": objects, "polls": 0,
                                        "timestamp": _now(), "final": None}
            return self._answer(status_id, first=True)

    def status(self, status_id: str) -> dict | None:
        with self.lock:
            self.stats["status_gets"] += 1
            if status_id not in self.statuses:
                return None
            self.statuses[status_id]["polls"] += 1
            return self._answer(status_id)

    def _answer(self, status_id: str, *, first: bool = False) -> dict:
        entry = self.statuses[status_id]
        objects = entry["objects"]
        base = {"id": status_id, "request_timestamp": entry["timestamp"], "total_count": len(objects)}
        if entry["final"] is not None:
            return {**base, **entry["final"]}
        kind, polls = self._rule()
        if kind == "never" or (kind in ("pending", "partial") and (first or entry["polls"] <= polls)):
            return {**base, "status": "pending", "success_count": 0, "failure_count": 0,
                    "pending_count": len(objects),
                    "pendings": [{"id": o["id"], "version": o.get("modified", "")} for o in objects]}
        failed = [o for o in objects if kind == "failed" or (kind == "partial" and o["type"] == "indicator")]
        accepted = [o for o in objects if o not in failed]
        self.held[entry["collection"]].extend(o for o in accepted if o not in self.held[entry["collection"]])
        final = {"status": "complete", "success_count": len(accepted), "failure_count": len(failed),
                 "pending_count": 0,
                 "failures": [{"id": o["id"], "version": o.get("modified", ""), "message": "refused by the stand-in"}
                              for o in failed]}
        if kind != "partial":
            final["successes"] = [{"id": o["id"], "version": o.get("modified", "")} for o in accepted]
        entry["final"] = final
        return {**base, **final}

    def newest(self, collection: str) -> list[dict]:
        with self.lock:
            self.stats["object_gets"] += 1
            newest: dict[str, dict] = {}
            for obj in self.held[collection]:
                if obj["id"] not in newest or obj.get("modified", "") > newest[obj["id"]].get("modified", ""):
                    newest[obj["id"]] = obj
            return list(newest.values())

    def versions(self, collection: str, stix_id: str) -> list[str]:
        with self.lock:
            self.stats["version_gets"] += 1
            return sorted(o.get("modified") or o.get("created") or _now()
                          for o in self.held[collection] if o["id"] == stix_id)


def handler_for(hub: Hub):
    root = f"/{hub.api_root}/"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet: the test's log is the hub's counters
            pass

        def _send(self, code: int, body: dict, media_type: str = TAXII) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", media_type if code < 400 else TAXII)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _parts(self) -> list[str]:
            path = self.path.split("?", 1)[0]
            return [p for p in path[len(root):].split("/") if p] if path.startswith(root) else []

        def _not_found(self) -> None:
            self._send(404, {"title": "not found", "http_status": "404"})

        def do_GET(self):
            if self.path == "/_stats":
                return self._send(200, hub.stats, "application/json")
            parts = self._parts()
            if len(parts) == 2 and parts[0] == "status":
                answer = hub.status(parts[1])
                return self._send(200, answer) if answer else self._not_found()
            if len(parts) >= 2 and parts[0] == "collections" and parts[1] in hub.collections:
                collection = parts[1]
                if len(parts) == 2:
                    return self._send(200, {"id": collection, "title": collection, "can_read": True,
                                            "can_write": True, "media_types": [STIX]})
                if parts[2:] == ["objects"]:
                    return self._send(200, {"more": False, "objects": hub.newest(collection)})
                if len(parts) == 5 and parts[2] == "objects" and parts[4] == "versions":
                    versions = hub.versions(collection, parts[3])
                    return self._send(200, {"more": False, "versions": versions}) if versions else self._not_found()
            return self._not_found()

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if self.path == "/_mode":
                hub.mode = body["mode"]
                return self._send(200, {"mode": hub.mode}, "application/json")
            parts = self._parts()
            if len(parts) == 3 and parts[0] == "collections" and parts[1] in hub.collections \
                    and parts[2] == "objects":
                return self._send(202, hub.post(parts[1], list(body.get("objects", []))))
            return self._not_found()

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--collections", required=True, help="comma-separated collection ids")
    parser.add_argument("--mode", default="pending:2")
    parser.add_argument("--api-root", default="forum")
    args = parser.parse_args()
    hub = Hub(args.collections.split(","), args.mode, args.api_root)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(hub))
    print(f"TAXII stand-in on 127.0.0.1:{args.port}, mode {args.mode}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
