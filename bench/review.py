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
import statistics
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
    claim_seconds: list[float] = field(default_factory=list)  # claim-next answers that gave a case
    decide_seconds: list[float] = field(default_factory=list)

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
            started = time.perf_counter()
            status, body, _ = self._request("POST", f"/api/v1/queues/{queue}/claim-next")
            claimed = time.perf_counter()
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
            self.claim_seconds.append(claimed - started)
            self.decide_seconds.append(time.perf_counter() - claimed)
            self.queue_at = (self.queue_at + offset + 1) % len(QUEUES)  # spread the load over the queues
            return True
        self.empty += 1
        return False


@dataclass
class ReviewRun:
    rate: float  # decisions per second
    decisions: int
    claim_ms: float  # median latency of a claim-next that gave a case
    decide_ms: float  # median latency of a decision

    def latencies(self) -> str:
        return f"claim p50 {self.claim_ms:,.0f} ms, decide p50 {self.decide_ms:,.0f} ms"


def decisions_per_second(reviewers: list[Reviewer], *, seconds: float) -> ReviewRun:
    """Every reviewer decides as fast as it can for ``seconds``.

    The window closes when the last reviewer's request in flight at the deadline has returned, so the rate
    is decisions over elapsed time.
    """
    stop = threading.Event()
    counts = [0] * len(reviewers)
    for reviewer in reviewers:
        reviewer.claim_seconds.clear()
        reviewer.decide_seconds.clear()

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
    claims = [s for reviewer in reviewers for s in reviewer.claim_seconds] or [0.0]
    decides = [s for reviewer in reviewers for s in reviewer.decide_seconds] or [0.0]
    total = sum(counts)
    return ReviewRun(total / elapsed, total, statistics.median(claims) * 1000, statistics.median(decides) * 1000)
