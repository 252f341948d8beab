"""The people of `make load` (bench/load.py), as locust users against the real stack.

bench/load.py seeds the database and hands this file a JSON seed (``LOAD_SEED``): the detector's token,
logins per role, holders' sign-in links (with their decision and statement), the request bodies the detectors
post, and the Forum's collections. Each user class is one kind of person; the weights give the mix:

- ``DetectorUser`` posts batches of fresh flags with its token (``POST /api/v1/flags/``);
- ``ReviewerUser`` signs in through the login page (session and CSRF, as a browser), claims the next case of a
  queue, opens the case workspace and decides through the API: most decisions a warning under UP-2.1 (enforced
  at once), one in four a rate limit under UP-1.2, which waits for a senior reviewer's second approval; now and
  then it proposes a Forum share of a case it warned;
- ``SeniorUser`` reads the approvals page and gives second approval to one of the decisions waiting there;
- ``HolderUser`` signs in with a pre-issued link, reads the account page and the statement of reasons, files an
  appeal once, reads it back and the holder API, and signs out; then the next link;
- ``OfficerUser`` reads the Forum's pages, previews the shares awaiting approval and approves one by the SHA-256
  it previewed (the push goes to the local Forum hub through the outbox; beat pulls the hub's collections);
- ``ComplianceUser`` reads the console: home, the decision register, the audit explorer.

Every request is named by its endpoint (ids as ``[id]``). A status outside what the step expects is a failure.
The one deliberate non-success is a race two people can lose honestly (two seniors approving the same decision,
two officers the same share): its request is a success in its row, and the race is counted ("… (taken by another
…)"), not hidden. A request the server's keep-alive close cut off before any answer is resent once, as a browser
does, and counted as "resent" (``ResendOnStaleConnection``). Both counts sit beside locust's stats (``NOTES``).
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import random
import re
from collections import deque

from locust import HttpUser, between, events, task
from locust.clients import LocustHttpAdapter
from urllib3.util.retry import Retry

from bench.ingest import renamed

SEED = json.loads(open(os.environ["LOAD_SEED"]).read())  # noqa: SIM115 — read once at import
QUEUES = ("extraction", "accounts", "volume")
_CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_APPROVAL_CASE = re.compile(r'href="/cases/(\d+)/#decision"')
WARN = {
    "clauses": ["UP-2.1"], "action": "warn",
    "rationale": "Load test: templated extraction prompts from one account; a first warning.",
    "facts_for_holder": "Your account sent large volumes of templated prompts designed to extract model outputs.",
}
RATE_LIMIT = {
    "clauses": ["UP-1.2"], "action": "rate_limit", "duration_days": 7,
    "rationale": "Load test: prompts built to extract the model's reasoning; a rate limit, for second approval.",
    "facts_for_holder": "Your account sent prompts designed to make the model reveal its step-by-step reasoning.",
}

_logins = {role: itertools.cycle(people) for role, people in SEED["people"].items()}
_holders = deque(SEED["holders"])


class _Bodies:
    """The detectors' request bodies, in turn; when they run out, the same flags again under new external ids."""

    def __init__(self, path: str):
        with open(path, "rb") as stream:
            self.bodies = [line.rstrip(b"\n") for line in stream if line.strip()]
        self.at, self.generation = 0, 0

    def next(self) -> bytes:
        if self.at == len(self.bodies):
            self.at, self.generation = 0, self.generation + 1
        body = self.bodies[self.at]
        self.at += 1
        return renamed(body, self.generation) if self.generation else body


_bodies = _Bodies(SEED["bodies"])


# What happened beside the requests, by kind and name: kept out of locust's stats (they are no requests of their
# own, and would count as 0 ms answers), written beside its CSV at the end for bench/load_report.py.
NOTES: collections.Counter = collections.Counter()


def lost_race(name: str) -> None:
    """Count an honest race lost (someone else acted first); the request itself is in its endpoint's row."""
    NOTES[("race lost", name)] += 1


def expect(response, *statuses: int) -> bool:
    """Mark the response a success when its status is one of ``statuses``, else a failure naming it."""
    if response.status_code in statuses:
        response.success()
        return True
    detail = repr(response.error) if response.status_code == 0 else response.text[:200]  # 0: no answer at all
    response.failure(f"{response.status_code} (expected {'/'.join(map(str, statuses))}): {detail}")
    return False


class ResendOnStaleConnection(Retry):
    """Send a request once more when the server closed the kept-alive connection just as it went out, before any
    answer (gunicorn closes a connection idle for its keep-alive, 2 s; a user who waited about that long can meet
    the close on the wire). Browsers resend in exactly this case. Each resend is counted as its own row, so a
    server that drops requests for another reason shows up, and bench/load.py checks the web log for workers that
    died or timed out."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        retry = super().increment(method, url, response, error, _pool, _stacktrace)  # raises once used up
        if error is not None:
            NOTES[("resent", f"connection closed before any answer ({type(error).__name__})")] += 1
        return retry


def _resend_once() -> ResendOnStaleConnection:
    return ResendOnStaleConnection(total=1, connect=1, read=1, status=0, other=0, redirect=False,
                                   allowed_methods=None, raise_on_status=False)


# Several web servers (``make load LOAD_ARGS="--webs 2"``): bench/load.py lists them in LOAD_HOSTS, and each user
# class spreads its users over them in turn, as a load balancer would spread people (each user keeps its server,
# and its session works on any of them: sessions live in the database).
_HOSTS = [host for host in os.environ.get("LOAD_HOSTS", "").split(",") if host]
_host_turns: dict[str, itertools.cycle] = {}


class Person(HttpUser):
    """Every user: one connection kept alive between its requests, as a browser keeps one."""

    abstract = True

    def __init__(self, *args, **kwargs):
        if _HOSTS:
            self.host = next(_host_turns.setdefault(type(self).__name__, itertools.cycle(_HOSTS)))
        super().__init__(*args, **kwargs)

    def on_start(self) -> None:
        adapter = LocustHttpAdapter(pool_manager=None, max_retries=_resend_once())
        self.client.mount("http://", adapter)


class StaffUser(Person):
    """A staff member signed in through the login page; POSTs carry the CSRF token as the pages' script does."""

    abstract = True
    role = ""

    def on_start(self) -> None:
        super().on_start()
        username, password = next(_logins[self.role])
        with self.client.get("/login/", name="GET /login/", catch_response=True) as page:
            token = _CSRF_INPUT.search(page.text)
            if not expect(page, 200) or not token:
                page.failure("no CSRF token on the login page")
                return
        with self.client.post("/login/", name="POST /login/", allow_redirects=False, catch_response=True,
                              data={"username": username, "password": password,
                                    "csrfmiddlewaretoken": token[1]}) as answer:
            if expect(answer, 302) and "sessionid" not in self.client.cookies:
                answer.failure("signed in without a session cookie")

    def post_json(self, path: str, name: str, body=None):
        return self.client.post(path, name=name, data=json.dumps(body) if body is not None else None,
                                catch_response=True, headers={"Content-Type": "application/json",
                                                              "X-CSRFToken": self.client.cookies.get("csrftoken", "")})

    def page(self, path: str, name: str) -> str:
        with self.client.get(path, name=name, catch_response=True) as answer:
            expect(answer, 200)
            return answer.text


class DetectorUser(Person):
    weight = 2
    wait_time = between(1, 3)

    @task
    def post_flags(self) -> None:
        with self.client.post("/api/v1/flags/", name=f"POST /api/v1/flags/ ({SEED['batch']} flags)",
                              data=_bodies.next(), catch_response=True,
                              headers={"Authorization": f"Bearer {SEED['token']}",
                                       "Content-Type": "application/json"}) as answer:
            if expect(answer, 200, 201) and answer.json().get("rejected"):
                answer.failure(f"flags rejected: {answer.text[:200]}")


class ReviewerUser(StaffUser):
    weight = 8
    role = "reviewer"
    wait_time = between(1, 3)

    def on_start(self) -> None:
        super().on_start()
        self.queue_at = random.randrange(len(QUEUES))

    def claim_next(self) -> int | None:
        for offset in range(len(QUEUES)):
            queue = QUEUES[(self.queue_at + offset) % len(QUEUES)]
            path = f"/api/v1/queues/{queue}/claim-next"
            with self.post_json(path, "POST /api/v1/queues/[queue]/claim-next") as answer:
                if not expect(answer, 200, 204):
                    return None
                if answer.status_code == 200:
                    self.queue_at = (self.queue_at + offset + 1) % len(QUEUES)
                    return answer.json()["id"]
        return None

    @task(10)
    def decide(self) -> None:
        case = self.claim_next()
        if case is None:
            return
        self.page(f"/cases/{case}/", "GET /cases/[id]/ (workspace)")
        decision = RATE_LIMIT if random.random() < 0.25 else WARN
        with self.post_json(f"/api/v1/cases/{case}/decisions", "POST /api/v1/cases/[id]/decisions", decision) as answer:
            if not expect(answer, 201):
                return
        if decision is WARN and random.random() < 0.2:
            body = {"source": "case", "source_id": case, "collection_id": random.choice(SEED["collections"])}
            with self.post_json("/api/v1/forum/proposals", "POST /api/v1/forum/proposals", body) as answer:
                expect(answer, 201)

    @task(1)
    def queues(self) -> None:
        self.page("/queues/", "GET /queues/")


class SeniorUser(StaffUser):
    weight = 3
    role = "senior_reviewer"
    wait_time = between(1, 3)

    @task
    def approve(self) -> None:
        waiting = _APPROVAL_CASE.findall(self.page("/approvals/", "GET /approvals/"))
        if not waiting:
            return
        case = random.choice(waiting[:10])  # the oldest first, as a person works the list
        with self.post_json(f"/api/v1/cases/{case}/approve", "POST /api/v1/cases/[id]/approve") as answer:
            # Another senior approved it since the page was read: 404 when they had committed before this request
            # looked for the pending decision, 409 when both requests found it and theirs took the row lock first.
            if answer.status_code in (404, 409):
                answer.success()
                lost_race("approve (taken by another senior)")
                return
            expect(answer, 200)


class OfficerUser(StaffUser):
    weight = 2
    role = "sharing_officer"
    wait_time = between(2, 4)

    @task(3)
    def approve_share(self) -> None:
        with self.client.get("/api/v1/forum/proposals?page_size=50", name="GET /api/v1/forum/proposals",
                             catch_response=True) as answer:
            if not expect(answer, 200):
                return
            waiting = [p["id"] for p in answer.json()["results"] if p["state"] == "awaiting_approval"]
        if not waiting:
            return
        proposal = random.choice(waiting)
        with self.client.get(f"/api/v1/forum/proposals/{proposal}/preview",
                             name="GET /api/v1/forum/proposals/[id]/preview", catch_response=True) as answer:
            if not expect(answer, 200):
                return
            preview = answer.json()
        self.page(f"/forum/shares/{proposal}/", "GET /forum/shares/[id]/")
        with self.post_json(f"/api/v1/forum/proposals/{proposal}/approve", "POST /api/v1/forum/proposals/[id]/approve",
                            {"version": preview["version"], "bundle_sha256": preview["bundle_sha256"]}) as answer:
            if answer.status_code == 409:  # another officer decided it since the list was read
                answer.success()
                lost_race("approve share (taken by another officer)")
                return
            expect(answer, 200)

    @task(2)
    def forum_pages(self) -> None:
        self.page("/forum/shares/", "GET /forum/shares/")
        self.page("/forum/pushes/", "GET /forum/pushes/")
        self.page("/forum/inbound/", "GET /forum/inbound/")
        self.page("/forum/matches/", "GET /forum/matches/")


class ComplianceUser(StaffUser):
    weight = 1
    role = "compliance_officer"
    wait_time = between(2, 4)

    @task
    def console(self) -> None:
        self.page("/compliance/", "GET /compliance/")
        self.page("/compliance/decisions/", "GET /compliance/decisions/")
        self.page("/compliance/audit/", "GET /compliance/audit/")


class HolderUser(Person):
    weight = 4
    wait_time = between(1, 3)
    holder: dict | None = None

    def form_post(self, path: str, name: str, data: dict, page: str):
        token = _CSRF_INPUT.search(page)
        return self.client.post(path, name=name, allow_redirects=False, catch_response=True,
                                data={**data, "csrfmiddlewaretoken": token[1] if token else ""})

    def page(self, path: str, name: str) -> str:
        with self.client.get(path, name=name, catch_response=True) as answer:
            expect(answer, 200)
            return answer.text

    @task
    def journey(self) -> None:
        if not _holders:  # every link used: keep reading the last account's pages
            if self.holder:
                self.page("/appeals/account/", "GET /appeals/account/")
                self.page(f"/appeals/statements/{self.holder['statement']}/", "GET /appeals/statements/[id]/")
            return
        self.holder = holder = _holders.popleft()
        page = self.page(holder["link"], "GET /appeals/signin/[token]/")
        with self.form_post(holder["link"], "POST /appeals/signin/[token]/", {}, page) as answer:
            if not expect(answer, 302) or not answer.headers.get("Location", "").endswith("/appeals/account/"):
                answer.failure(f"sign-in went to {answer.headers.get('Location')}")
                return
        self.page("/appeals/account/", "GET /appeals/account/")
        self.wait()
        self.page(f"/appeals/statements/{holder['statement']}/", "GET /appeals/statements/[id]/")
        with self.client.get("/api/v1/holder/decisions", name="GET /api/v1/holder/decisions",
                             catch_response=True) as answer:
            expect(answer, 200)
        self.wait()
        path = f"/appeals/decisions/{holder['decision']}/appeal/"
        form = self.page(path, "GET /appeals/decisions/[id]/appeal/")
        grounds = ("I run an evaluation harness for a university course; the templated prompts were our test set, "
                   "not an attempt to copy the model.")
        with self.form_post(path, "POST /appeals/decisions/[id]/appeal/", {"grounds": grounds, "affiliation": "Uni"},
                            form) as answer:
            if not expect(answer, 302):
                return
            filed = answer.headers.get("Location", "")
        match = re.search(r"/appeals/appeal/(\d+)/filed/", filed)
        if not match:
            return
        self.page(f"/appeals/appeal/{match[1]}/filed/", "GET /appeals/appeal/[id]/filed/")
        self.wait()
        page = self.page(f"/appeals/appeal/{match[1]}/", "GET /appeals/appeal/[id]/")
        with self.client.get("/api/v1/holder/appeals", name="GET /api/v1/holder/appeals",
                             catch_response=True) as answer:
            expect(answer, 200)
        with self.form_post("/appeals/signout/", "POST /appeals/signout/", {}, page) as answer:
            expect(answer, 302)


@events.quitting.add_listener
def _zero_errors(environment, **_kwargs) -> None:
    """Exit 1 when any request failed (locust's default does too; said here because the scenario relies on it)."""
    if environment.stats.total.fail_ratio > 0:
        environment.process_exit_code = 1
    notes = [{"kind": kind, "name": name, "count": count} for (kind, name), count in sorted(NOTES.items())]
    for note in notes:
        print(f"{note['kind']}: {note['name']}: {note['count']}")
    if os.environ.get("LOAD_NOTES"):
        with open(os.environ["LOAD_NOTES"], "w") as out:
            json.dump(notes, out)
