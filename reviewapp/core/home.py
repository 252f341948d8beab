"""The staff home page's reads: each person's work, by what their role does (core is the top layer, so it
composes the selectors of every app). Every list is one query and every count one query, whatever the number
of rows (tests/core/test_home.py caps them); each item links to the page where it is acted on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.urls import reverse
from django.utils import timezone

from appeals import worklist as appeal_work
from appeals.selectors import decisions_taken_part_in
from flags import worklist as detector_work
from reviewapp.audit import worklist as audit_work
from reviewapp.audit.selectors import latest_checkpoint, unsequenced_events
from reviewapp.cases import worklist as case_work
from reviewapp.cases.selectors import decisions_awaiting_approval, queue_overview
from reviewapp.forum import listings as forum_work
from reviewapp.outbox.selectors import state_counts
from reviewapp.people import worklist as staff_work
from reviewapp.people.selectors import locked_sign_ins

ROWS = case_work.HOME_ROWS


@dataclass
class Section:
    """One block of the home page: a heading with its count, the rows to act on, and where the whole list is."""

    key: str
    title: str
    count: int
    rows: list = field(default_factory=list)
    url: str = ""
    empty: str = "Nothing here."
    link_label: str = ""
    glance: str = ""  # the words after the count at the top of the page ("2 claimed by you")


@dataclass
class Attention:
    """One count that needs someone's attention (zero is good), with the page to act on."""

    label: str
    count: int
    url: str


def home_context(user) -> dict:
    now = timezone.now()
    sections: list[Section] = []
    attention: list[Attention] = []
    context: dict = {"sections": sections, "attention": attention, "now": now}

    # A senior reviewer's own job first: second approvals and appeals; then the reviewer's work they share.
    if user.has_perm("cases.approve_decision"):
        awaiting = decisions_awaiting_approval(user)  # never the user's own decisions (invariant 5)
        sections.append(Section("approvals", "Awaiting your approval", awaiting.count(),
                                list(awaiting[:ROWS]), url=reverse("review:approvals"),
                                link_label="All approvals", empty="No decision waits for your approval.",
                                glance="awaiting your approval"))
        rereviews = forum_work.rereviews_for_page()
        sections.append(Section("rereviews", "Decisions to look at again (Forum intelligence withdrawn)",
                                rereviews.count(), list(rereviews[:ROWS]), url=reverse("forum:rereviews"),
                                link_label="All Forum re-reviews", glance="to look at again (Forum withdrawn)",
                                empty="No decision relied on Forum intelligence that was withdrawn."))

    if user.has_perm("appeals.decide_appeal"):
        mine = appeal_work.appeals_of(user)
        sections.append(Section("my-appeals", "Appeals you are reviewing", mine.count(), list(mine[:ROWS]),
                                empty="You are reviewing no appeal.", glance="appeals you are reviewing"))
        unclaimed = appeal_work.appeals_unclaimed()
        rows = list(unclaimed[:ROWS])
        taken = decisions_taken_part_in(user, [appeal.decision for appeal in rows])  # two queries, any number
        for appeal in rows:
            appeal.you_took_part = appeal.decision_id in taken
        sections.append(Section("appeals-due", "Appeals waiting for a reviewer, review due first", unclaimed.count(),
                                rows, url=reverse("appeal-review:queue"), link_label="The appeals queue",
                                empty="No appeal waits for a reviewer.", glance="appeals waiting for a reviewer"))

    if user.has_perm("cases.claim_case"):
        sent_back = case_work.sent_back_to(user, now=now)
        sections.append(Section("sent-back", "Sent back to you", sent_back.count(), list(sent_back[:ROWS]),
                                empty="No decision of yours was sent back.", glance="sent back to you"))
        claims = case_work.claims_of(user, now=now)
        sections.append(Section("claims", "Your claimed cases", claims.count(), list(claims[:ROWS]),
                                url=reverse("review:queues"), link_label="Claim more from the queues",
                                empty="You hold no claim. Claim the next case from a queue.", glance="claimed by you"))
        waiting = case_work.decisions_of_waiting_for_approval(user)
        sections.append(Section("my-pending", "Your decisions waiting for a second approval", waiting.count(),
                                list(waiting[:ROWS]), empty="None of your decisions is waiting.",
                                glance="of your decisions waiting for approval"))

    if user.has_perm("appeals.view_appeal"):
        attention.append(Attention("Appeals past their review date", appeal_work.appeals_review_overdue(now=now)
                                   .count(), reverse("appeal-review:queue")))

    if user.has_perm("cases.view_case"):
        context["queues"] = queue_overview(user, now=now)
    if user.has_perm("cases.view_campaign") and not user.has_perm("cases.claim_case") \
            and not user.has_perm("audit.view_auditevent"):  # the sharing officer: what could be shared
        context["campaigns"] = list(case_work.campaigns_with_open_cases()[:ROWS])

    if user.has_perm("forum.approve_share"):  # the sharing officer: what waits for them in the Forum
        attention.extend(_forum_attention(user, now=now))

    if user.has_perm("people.change_user"):
        attention.append(Attention("Sign-ins locked out (too many failed passwords)", len(locked_sign_ins()),
                                   reverse("people:staff")))
        attention.append(Attention("Staff who have not chosen their password yet",
                                   staff_work.staff_awaiting_first_sign_in_count(), reverse("people:staff")))
    if user.has_perm("flags.change_detector"):
        attention.append(Attention("Flags set aside by grouping", detector_work.set_aside_count(),
                                   reverse("detectors:list")))
        attention.append(Attention("Active detectors without a live token", detector_work
                                   .detectors_without_token_count(), reverse("detectors:list")))
    if user.has_perm("outbox.view_outboxmessage"):
        attention.append(Attention("Deliveries that failed (retry them)", state_counts()["failed"],
                                   f"{reverse('outbox:messages')}?state=failed"))

    if user.has_perm("audit.view_auditevent"):
        checkpoint = latest_checkpoint()
        context["checkpoint"] = checkpoint
        context["unwitnessed"] = audit_work.events_after_checkpoint(checkpoint)
        context["stale"] = unsequenced_events()
        context["recent_events"] = audit_work.events_recent()
    return context


def _forum_attention(user, *, now) -> list[Attention]:
    """A sharing officer's Forum work, each count linking to its list: four queries, whatever the numbers."""
    pushes = forum_work.push_counts()
    pushes_url = reverse("forum:pushes")
    return [
        Attention("Share proposals waiting for your approval", forum_work.proposals_to_review(user).count(),
                  f"{reverse('forum:shares')}#to-review"),
        Attention("Deliveries to the hub pending", pushes["pending"], f"{pushes_url}?state=pending"),
        Attention("Deliveries to the hub failed", pushes["failed"], f"{pushes_url}?state=failed"),
        Attention("Deliveries partially accepted by the hub", pushes["partial"], f"{pushes_url}?state=partial"),
        Attention("Withdrawals sent in the last 7 days",
                  forum_work.withdrawals(since=now - forum_work.RECENT_WITHDRAWALS).count(),
                  f"{reverse('forum:withdrawals')}?days=7"),
        Attention("Inbound matches awaiting review", forum_work.matches(awaiting=True).count(),
                  f"{reverse('forum:matches')}?awaiting=1"),
    ]
