"""A synthetic distillation campaign for the demo (`manage.py seed_demo`, `make run`). Fictional names only.

What a reviewer meets on a fresh demo:

- three clusters of coordinated accounts (``cluster-graph`` links them, so each cluster is a campaign)
  whose traffic ``template-miner`` recognises as fills of a few prompt templates (reasoning
  extraction, capability sweeps) and whose daily volume ``volume-watch`` flags;
- a few ordinary heavy users: high volume, nothing else, low scores, no campaign;
- a few accounts in the researcher access programme that got flagged for evaluation-style prompts.

Everything goes through the real services (``flags_ingest``, ``flags_group``, ``account_profile_set``),
so the demo shows the same audit trail production would. Idempotent: the plan is drawn from a fixed
random seed, flag ids are deterministic, flags already stored are not sent again, grouping writes nothing
when no flag is pending, and an account that already has a profile keeps it (so a profile changed by hand
survives the next `make run`) — a second run adds no row and no event.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec
from django.db import transaction
from django.utils import timezone

from reviewapp.audit.services import Actor
from reviewapp.cases.models import Account, Campaign, Case
from reviewapp.cases.services import account_profile_set
from reviewapp.cases.vocabulary import Signal

from .grouping import flags_group
from .models import Detector, Flag, FlagBatch, FlagKey
from .services import detector_ensure, flags_ingest

SEED = 20240917
ID_PREFIX = "demo-"  # every demo flag's external_id starts with it

# (slug, name, owner team, description)
DETECTORS = (
    ("template-miner", "Template miner", "Model Integrity",
     "Groups an account's prompts by a 64-bit simhash of their skeleton (slots removed); flags accounts whose "
     "traffic is mostly fills of a few templates, and what those templates are after."),
    ("volume-watch", "Volume watch", "Platform Abuse",
     "Daily request volume against the account's peer group (same tier, same month of sign-up)."),
    ("cluster-graph", "Cluster graph", "Account Integrity",
     "Links accounts that share payment instruments, device fingerprints and sign-up windows into clusters."),
)


@dataclass(frozen=True)
class Template:
    text: str  # slots are {0}, {1}, …
    slots: tuple[tuple[str, ...], ...]

    @property
    def simhash64(self) -> str:
        # A stand-in for the detector's simhash: stable per template, which is all the demo needs.
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    def fill(self, rng: random.Random) -> str:
        return self.text.format(*(rng.choice(values) for values in self.slots))


_SUBJECTS = ("algebra", "number theory", "geometry", "combinatorics", "probability")
_PROBLEMS = (
    "find all integers n such that n^2 + 3n + 2 is divisible by 7",
    "a train leaves at 14:05 at 80 km/h; when does a second train at 110 km/h catch it",
    "how many 5-card hands contain exactly two pairs",
    "prove that the sum of the first n odd numbers is n^2",
    "the probability that three dice show a strictly increasing sequence",
)
_LANGUAGES = ("Python", "Rust", "Go", "TypeScript", "Kotlin")
_TASKS = ("parse an ISO-8601 duration", "merge overlapping intervals", "detect a cycle in a linked list",
          "implement an LRU cache", "validate a Sudoku board")
_DOMAINS = ("contract law", "organic chemistry", "macroeconomics", "cardiology", "medieval history")
_LEVELS = ("easy", "medium", "hard", "expert")

REASONING_TEMPLATES = (
    Template("Solve step by step. Number each step and justify it before the next one. Topic: {0}. Problem: {1}. "
             "End with 'FINAL:' and the answer.", (_SUBJECTS, _PROBLEMS)),
    Template("You are a meticulous tutor. Think aloud through every intermediate result, then check your work. "
             "[{0}] {1}", (_SUBJECTS, _PROBLEMS)),
)
SWEEP_TEMPLATES = (
    Template("Task {0}/400 [{1}/{2}]: write a function in {1} to {3}. Explain your reasoning before the code.",
             (tuple(str(n) for n in range(1, 401)), _LANGUAGES, _LEVELS, _TASKS)),
    Template("Benchmark item ({0}, difficulty {1}): answer as an expert in {0} would, with a full rationale. "
             "Question {2}.", (_DOMAINS, _LEVELS, tuple(f"#{n}" for n in range(1, 251)))),
)
EVALUATION_TEMPLATES = (
    Template("Evaluation run {0}: think step by step, then give only the final number. Problem: {1}",
             (("A", "B", "C"), _PROBLEMS)),
)
_TEMPLATES_FOR = {
    Signal.REASONING_EXTRACTION: REASONING_TEMPLATES,
    Signal.CAPABILITY_SWEEP: SWEEP_TEMPLATES,
    Signal.TEMPLATED_PROMPTS: REASONING_TEMPLATES + SWEEP_TEMPLATES,
}


@dataclass(frozen=True)
class Cluster:
    cluster_id: str
    account_prefix: str
    organizations: tuple[str, ...]  # rotated over the accounts (shell organisations share one cluster)
    size: int
    signals: tuple[Signal, ...]  # what template-miner finds in their traffic
    regions: tuple[str, ...]


CLUSTERS = (
    Cluster("cg-halcyon-0417", "hl", ("org_halcyon_labs",), 12,
            (Signal.TEMPLATED_PROMPTS, Signal.REASONING_EXTRACTION), ("ap-southeast",)),
    Cluster("cg-meridian-0522", "mq", ("org_meridian_quanta",), 9,
            (Signal.TEMPLATED_PROMPTS, Signal.CAPABILITY_SWEEP), ("us-east", "us-west")),
    Cluster("cg-tessellate-0609", "ts", ("org_tessellate_data", "org_pinecrest_studio", "org_lumen_ridge_ai"), 14,
            (Signal.TEMPLATED_PROMPTS, Signal.REASONING_EXTRACTION, Signal.CAPABILITY_SWEEP),
            ("eu-west", "eu-central", "ap-northeast", "sa-east")),
)
# (account id, organisation, contact name, region): busy, legitimate, nothing but volume.
HEAVY_USERS = (
    ("acct_hv_0001", "org_brightwater_analytics", "noor.achterberg", "eu-west"),
    ("acct_hv_0002", "org_fernhill_legal", "tomasz.kerrigan", "eu-central"),
    ("acct_hv_0003", "org_copperleaf_games", "ines.vantongeren", "us-west"),
    ("acct_hv_0004", "org_saltmarsh_media", "delphine.okoro", "us-east"),
)
# Enrolled in the researcher access programme; their evaluation suites look like extraction.
RESEARCHERS = (
    ("acct_rs_0001", "org_aldermoor_university", "priya.castellanos", "eu-west", Signal.REASONING_EXTRACTION),
    ("acct_rs_0002", "org_aldermoor_university", "jonas.whitfield", "eu-west", Signal.CAPABILITY_SWEEP),
    ("acct_rs_0003", "org_kestrel_safety_institute", "mei.lindgren", "eu-north", Signal.REASONING_EXTRACTION),
)
_HANDLES = ("quiet", "amber", "rapid", "silver", "north", "hollow", "lucky", "brisk", "misty", "cobalt")
_NOUNS = ("heron", "falcon", "pixel", "cedar", "comet", "otter", "ember", "fjord", "quartz", "willow")


@dataclass
class PlannedAccount:
    external_id: str
    organization_id: str
    contact_email: str
    region: str
    researcher_programme: bool = False
    flags: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class DemoSummary:
    accounts: int
    researchers: int
    heavy_users: int
    flags: int
    cases: int
    campaigns: int

    def __str__(self) -> str:
        return (f"{self.accounts} flagged accounts ({self.researchers} in the researcher programme, "
                f"{self.heavy_users} ordinary heavy users), {self.flags} flags, {self.cases} cases, "
                f"{self.campaigns} campaigns")


def _flag(account: PlannedAccount, *, key: str, detector: str, signal: Signal, score: float, start: datetime,
          end: datetime, requests: int | None = None, cluster_id: str | None = None,
          evidence: dict | None = None) -> None:
    account.flags.append({
        "external_id": f"{ID_PREFIX}{account.external_id}-{key}",
        "detector": detector,
        "detector_version": {"template-miner": "3.2.0", "volume-watch": "1.8.4", "cluster-graph": "0.9.1"}[detector],
        "account_id": account.external_id,
        "organization_id": account.organization_id,
        "signal": signal.value,
        "score": round(score, 3),
        "observed_from": start,
        "observed_to": end,
        "request_count": requests,
        "cluster_id": cluster_id,
        "evidence": evidence,
    })


def _template_flag(account: PlannedAccount, rng: random.Random, *, signal: Signal, templates: tuple[Template, ...],
                   score: float, days: int, daily: int, now: datetime) -> None:
    template = rng.choice(templates)
    _flag(account, key=f"tm-{signal.value}", detector="template-miner", signal=signal, score=score,
          start=now - timedelta(days=days), end=now - timedelta(hours=rng.randint(1, 20)), requests=daily * days,
          evidence={"template_simhash64": template.simhash64, "slot_count": len(template.slots),
                    "template_share": round(rng.uniform(0.82, 0.99), 2),
                    "excerpts": [template.fill(rng) for _ in range(3)]})


def _volume_flags(account: PlannedAccount, rng: random.Random, *, days: int, daily: tuple[int, int],
                  score: tuple[float, float], now: datetime) -> None:
    for day in range(days):
        requests = rng.randint(*daily)
        _flag(account, key=f"vw-d{day}", detector="volume-watch", signal=Signal.VOLUME_ANOMALY,
              score=rng.uniform(*score), start=now - timedelta(days=day + 1), end=now - timedelta(days=day),
              requests=requests, evidence={"peer_p99_daily": 2400, "ratio_to_p99": round(requests / 2400, 1)})


def demo_plan(*, now: datetime) -> list[PlannedAccount]:
    """The whole demo population and its flags, the same on every run (only the times follow ``now``)."""
    rng = random.Random(SEED)  # noqa: S311 — a reproducible demo, not a secret
    plan: list[PlannedAccount] = []
    for cluster in CLUSTERS:
        for n in range(1, cluster.size + 1):
            account = PlannedAccount(
                external_id=f"acct_{cluster.account_prefix}_{n:04d}",
                organization_id=cluster.organizations[(n - 1) % len(cluster.organizations)],
                contact_email=f"{rng.choice(_HANDLES)}.{rng.choice(_NOUNS)}{rng.randint(10, 99)}@example.com",
                region=rng.choice(cluster.regions),
            )
            active_days = rng.randint(4, 9)
            _flag(account, key="cg", detector="cluster-graph", signal=Signal.ACCOUNT_CLUSTER,
                  score=rng.uniform(0.82, 0.97), start=now - timedelta(days=active_days + 3),
                  end=now - timedelta(days=active_days), cluster_id=cluster.cluster_id,
                  evidence={"cluster_size": cluster.size,
                            "shared": sorted(rng.sample(["payment_instrument", "device_fingerprint",
                                                         "signup_window", "egress_asn"], 2))})
            if rng.random() < 0.85:  # the newest accounts have not sent enough to match a template yet
                for signal in cluster.signals:
                    _template_flag(account, rng, signal=signal, templates=_TEMPLATES_FOR[signal],
                                   score=rng.uniform(0.74, 0.96), days=active_days,
                                   daily=rng.randint(20_000, 60_000), now=now)
            _volume_flags(account, rng, days=rng.randint(2, active_days), daily=(18_000, 95_000),
                          score=(0.6, 0.9), now=now)
            plan.append(account)
    for external_id, organization, contact, region in HEAVY_USERS:
        account = PlannedAccount(external_id, organization, f"{contact}@example.com", region)
        _volume_flags(account, rng, days=rng.randint(2, 4), daily=(6_000, 14_000), score=(0.15, 0.35), now=now)
        plan.append(account)
    for external_id, organization, contact, region, signal in RESEARCHERS:
        account = PlannedAccount(external_id, organization, f"{contact}@example.org", region, researcher_programme=True)
        _template_flag(account, rng, signal=signal, templates=EVALUATION_TEMPLATES + _TEMPLATES_FOR[signal],
                       score=rng.uniform(0.55, 0.72), days=3, daily=rng.randint(3_000, 8_000), now=now)
        _volume_flags(account, rng, days=rng.randint(1, 2), daily=(4_000, 9_000), score=(0.3, 0.5), now=now)
        plan.append(account)
    return plan


def _not_yet_stored(flags: list[dict], detector: Detector) -> Iterator[tuple[int, bytes]]:
    # The keys, not the flags: flags_flag is partitioned by month and has no index on (detector, external_id).
    stored = set(FlagKey.objects.filter(detector_id=detector.pk, external_id__in=[f["external_id"] for f in flags])
                 .values_list("external_id", flat=True))
    for index, flag in enumerate(flags):
        if flag["external_id"] not in stored:
            yield index, msgspec.json.encode({key: value for key, value in flag.items() if value is not None})


@transaction.atomic
def demo_campaign_ensure(*, actor: Actor) -> DemoSummary:
    """Build the synthetic campaign if it is missing (or finish it if part is missing); return what exists.

    One transaction: the flags are grouped before it commits, so the demo is ready without the worker
    (which then finds nothing pending).
    """
    detectors = {slug: detector_ensure(actor=actor, slug=slug, name=name, owner_team=team, description=about)
                 for slug, name, team, about in DETECTORS}
    plan = demo_plan(now=timezone.now().replace(minute=0, second=0, microsecond=0))
    for slug, detector in detectors.items():
        flags = [flag for account in plan for flag in account.flags if flag["detector"] == slug]
        items = list(_not_yet_stored(flags, detector))
        if items:
            result = flags_ingest(items=items, detector=detector, actor=actor, source=FlagBatch.Source.FILE)
            if result.rejected:  # the plan is ours: a rejection is a bug in this module
                raise ValueError(f"demo flags rejected: {result.rejected[:3]}")
    while flags_group(limit=1000).taken:  # a flag grouping cannot attach is set aside, never a stop
        pass
    accounts = {a.external_id: a for a in Account.objects.filter(external_id__in=[p.external_id for p in plan])}
    for planned in plan:
        account = accounts[planned.external_id]
        if account.contact_email or account.region:  # profiled already (by an earlier run or by hand): keep it
            continue
        account_profile_set(actor=actor, account=account, contact_email=planned.contact_email, region=planned.region,
                            researcher_programme=planned.researcher_programme or None)
    return demo_summary(plan)


def demo_summary(plan: list[PlannedAccount]) -> DemoSummary:
    ids = [account.external_id for account in plan]
    accounts = Account.objects.filter(external_id__in=ids)
    return DemoSummary(
        accounts=accounts.count(),
        researchers=accounts.filter(researcher_programme=True).count(),
        heavy_users=accounts.filter(external_id__in=[h[0] for h in HEAVY_USERS]).count(),
        flags=Flag.objects.filter(account_external_id__in=ids, external_id__startswith=ID_PREFIX).count(),
        cases=Case.objects.filter(account__in=accounts).count(),
        campaigns=Campaign.objects.filter(cases__account__in=accounts).distinct().count(),
    )
