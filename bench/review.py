"""The decision load: reviewers claiming the next case of a queue and deciding it, through the API.

Each reviewer is a staff member with the reviewer role (``people.services.staff_create``), signs in
through the login page (a session cookie and its CSRF token, as a browser does) and then loops:
``POST /api/v1/queues/<queue>/claim-next`` (trying the next queue when one answers 204), then
``POST /api/v1/cases/<id>/decisions`` with a decision that needs no second approval — a warning under
UP-2.1 ("Automated extraction at scale" permits ``warn``, no second approval), which is enforced at
once: the account's status, the enforcement webhook (outbox), the statement of reasons, the audit
events. Each reviewer uses one connection at a time, as a person at a browser does.
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field

QUEUES = ("extraction", "accounts", "volume")
DECISION = {
    "clauses": ["UP-2.1"],
    "action": "warn",
    "rationale": "Benchmark: templated extraction prompts from one account; a first warning.",
    "facts_for_holder": "Your account sent large volumes of templated prompts designed to extract model outputs.",
}


def reviewers_create(count: int, *, prefix: str) -> list[tuple[str, str]]:
    """Staff members with the reviewer role; returns (username, password) pairs."""
    from reviewapp.audit.services import SYSTEM
    from reviewapp.people.roles import Role
    from reviewapp.people.services import staff_create

    people = []
    for number in range(count):
        password = secrets.token_urlsafe(18)
        user, _ = staff_create(actor=SYSTEM, username=f"{prefix}-reviewer-{number}", role=Role.REVIEWER,
                               password=password)
        people.append((user.username, password))
    return people


_COOKIE = re.compile(r"^([^=;]+)=([^;]*)")
_CSRF_INPUT = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


@dataclass
class Reviewer:
    port: int
    username: str
    password: str
    cookies: dict[str, str] = field(default_factory=dict)
    decided: int = 0
    errors: list[str] = field(default_factory=list)
    empty: int = 0
    queue_at: int = 0

    def _request(self, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, bytes, http.client.HTTPResponse]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            all_headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), **(headers or {})}
            if method == "POST" and "csrftoken" in self.cookies:
                all_headers.setdefault("X-CSRFToken", self.cookies["csrftoken"])
                all_headers.setdefault("Referer", f"http://127.0.0.1:{self.port}/")
            connection.request(method, path, body=body, headers=all_headers)
            answer = connection.getresponse()
            data = answer.read()
            for header, value in answer.getheaders():
                if header.lower() == "set-cookie":
                    match = _COOKIE.match(value)
                    if match:
                        self.cookies[match[1]] = match[2]
            return answer.status, data, answer
        finally:
            connection.close()

    def login(self) -> None:
        status, page, _ = self._request("GET", "/login/")
        match = _CSRF_INPUT.search(page)
        if status != 200 or not match:
            raise RuntimeError(f"login page answered {status} without a CSRF token")
        from urllib.parse import urlencode

        form = urlencode({"username": self.username, "password": self.password,
                          "csrfmiddlewaretoken": match[1].decode()}).encode()
        status, page, _ = self._request("POST", "/login/", form,
                                        {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"login of {self.username} answered {status}: {page[:300]!r}")

    def decide_one(self) -> bool:
        """Claim the next case of some queue and decide it. False when every queue was empty."""
        for offset in range(len(QUEUES)):
            queue = QUEUES[(self.queue_at + offset) % len(QUEUES)]
            status, body, _ = self._request("POST", f"/api/v1/queues/{queue}/claim-next")
            if status == 204:
                continue
            if status != 200:
                self.errors.append(f"claim-next {queue}: {status} {body[:200]!r}")
                return False
            case = json.loads(body)["id"]
            status, body, _ = self._request("POST", f"/api/v1/cases/{case}/decisions", json.dumps(DECISION).encode(),
                                            {"Content-Type": "application/json"})
            if status != 201:
                self.errors.append(f"decide case {case}: {status} {body[:200]!r}")
                return False
            self.queue_at = (self.queue_at + offset + 1) % len(QUEUES)  # spread the load over the queues
            return True
        self.empty += 1
        return False


def decisions_per_second(reviewers: list[Reviewer], *, seconds: float) -> tuple[float, int]:
    """Every reviewer decides as fast as it can for ``seconds``; returns (decisions/s, decisions).

    Only decisions whose answer arrived inside the window count; the window closes when the last reviewer's
    request in flight at the deadline has returned (so the rate is decisions over elapsed time).
    """
    stop = threading.Event()
    counts = [0] * len(reviewers)

    def run(index: int, reviewer: Reviewer) -> None:
        while not stop.is_set():
            if reviewer.decide_one():
                counts[index] += 1
            elif reviewer.errors:
                return
            else:
                time.sleep(0.05)  # every queue empty: look again shortly

    threads = [threading.Thread(target=run, args=(i, r), daemon=True) for i, r in enumerate(reviewers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    errors = [error for reviewer in reviewers for error in reviewer.errors]
    if errors:
        raise RuntimeError(f"reviewers failed: {errors[:3]}")
    total = sum(counts)
    return total / elapsed, total
