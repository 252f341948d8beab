"""Reads for the Forum's pages and API (F4): proposals to review, a share's pushes and withdrawals, the sharing
register, inbound objects and their matches (TLP honoured: a RED object's content is not shown in lists)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery

from flags.models import Detector, Flag, FlagKey
from reviewapp.cases.models import open_case

from .inbound import FORUM_DETECTOR, rereviews_open
from .models import (
    ForumPush,
    InboundMatch,
    InboundObject,
    InboundReReview,
    ShareProposal,
    ShareState,
    ShareWithdrawal,
)
from .previews import can_preview
from .tlp import Tlp


def proposals_visible(user) -> QuerySet[ShareProposal]:
    """What ``user`` may know exists: every share for an officer or a reader of shares, one's own otherwise."""
    qs = (ShareProposal.objects.select_related("proposed_by", "decided_by", "withdrawn_by")
          .order_by("-proposed_at", "-pk"))
    if user.has_perm("forum.approve_share") or user.has_perm("forum.view_shareproposal"):
        return qs
    if user.has_perm("forum.propose_share"):
        return qs.filter(proposed_by=user)
    return qs.none()


def proposal_for(user, pk: int) -> ShareProposal | None:
    proposal = proposals_visible(user).filter(pk=pk).first()
    return proposal if proposal is not None and can_preview(user, proposal) else None


def proposals_to_review(user) -> QuerySet[ShareProposal]:
    """Waiting shares a sharing officer may decide (not the ones they proposed)."""
    if not user.has_perm("forum.approve_share"):
        return ShareProposal.objects.none()
    return (proposals_visible(user).filter(state=ShareState.AWAITING_APPROVAL).exclude(proposed_by=user)
            .order_by("proposed_at", "pk"))


def share_pushes(proposal: ShareProposal) -> list[ForumPush]:
    return list(proposal.pushes.order_by("created_at", "pk"))


def share_withdrawals(proposal: ShareProposal) -> list[ShareWithdrawal]:
    return list(proposal.withdrawals.select_related("withdrawn_by", "account").order_by("withdrawn_at", "pk"))


def _share_push():
    return ForumPush.objects.filter(proposal=OuterRef("pk"), purpose=ForumPush.Purpose.SHARE).order_by("-pk")


def with_delivery(proposals: QuerySet[ShareProposal]) -> QuerySet[ShareProposal]:
    """Each proposal with the state and sent time of its (latest) share push, in the same query."""
    return proposals.annotate(delivery_code=Subquery(_share_push().values("state")[:1]),
                              delivery_sent_at=Subquery(_share_push().values("sent_at")[:1]))


def delivery_label(code: str | None) -> str:
    """A share's delivery in words: pending / sent / partially accepted / failed / refused, "—" before approval."""
    return ForumPush.State(code).label if code else "—"


def delivery_state(proposal: ShareProposal) -> str:
    """The share's delivery in words (one proposal; lists use ``with_delivery``)."""
    if hasattr(proposal, "delivery_code"):
        return delivery_label(proposal.delivery_code)
    push = ForumPush.objects.filter(proposal=proposal, purpose=ForumPush.Purpose.SHARE).order_by("-pk").first()
    return delivery_label(push.state if push else None)


def register_proposals() -> QuerySet[ShareProposal]:
    """The approved shares, newest approval first, each with its approval, version, delivery and withdrawals: a
    constant number of queries for any page of them."""
    return with_delivery(
        ShareProposal.objects.filter(approval__isnull=False)
        .select_related("proposed_by", "approval", "approval__approved_by", "approval__version", "withdrawn_by")
        .prefetch_related("withdrawals").order_by("-approval__approved_at", "-pk"))


def register_rows(proposals) -> list[dict]:
    """What left, to which collection, when, proposed and approved by whom, the bundle hash, withdrawals."""
    rows = []
    for proposal in proposals:
        approval = proposal.approval
        rows.append({
            "proposal": proposal, "collection_id": approval.version.collection_id,
            "tlp": approval.version.get_tlp_display(),
            "summary": approval.version.summary, "version": approval.version.number,
            "proposed_by": proposal.proposed_by, "approved_by": approval.approved_by,
            "approved_at": approval.approved_at, "sent_at": proposal.delivery_sent_at,
            "delivery": delivery_label(proposal.delivery_code), "bundle_sha256": approval.bundle_sha256,
            "withdrawals": list(proposal.withdrawals.all()),
        })
    return rows


def shares_register() -> list[dict]:
    return register_rows(register_proposals())


def inbound_objects(*, collection_id: str = "") -> QuerySet[InboundObject]:
    """Newest first, each with its matches and their accounts (prefetched: two more queries for any page)."""
    qs = InboundObject.objects.order_by("-received_at", "-pk").prefetch_related(
        Prefetch("matches", queryset=InboundMatch.objects.select_related("account").order_by("-matched_at", "-pk")))
    if collection_id:
        qs = qs.filter(collection_id=collection_id)
    return qs


def shown_body(obj: InboundObject) -> dict | None:
    """The content a page may show: none for TLP:RED (named recipients only: the officer sees that it exists and
    its matches, not its content)."""
    return None if obj.tlp == Tlp.RED else obj.body


def inbound_matches(*, inbound: InboundObject | None = None) -> QuerySet[InboundMatch]:
    qs = InboundMatch.objects.select_related("inbound", "account").order_by("-matched_at", "-pk")
    return qs.filter(inbound=inbound) if inbound is not None else qs


def feedback_given(inbound: InboundObject) -> list[ForumPush]:
    return list(ForumPush.objects.filter(purpose=ForumPush.Purpose.FEEDBACK,
                                         bundle__objects__contains=[{"object_refs": [inbound.stix_id]}])
                .order_by("created_at"))



def rereviews_with_source(rereviews: QuerySet[InboundReReview]) -> QuerySet[InboundReReview]:
    """Re-reviews with their case, account and decision, and the peer's version of the object that withdrew what
    the decision relied on (its newest version: ``revoked`` true, or a narrowed one): its collection, source, STIX
    ``modified`` (when the peer revoked it) and when we received it. One query, whatever the number of rows."""
    newest = InboundObject.objects.filter(stix_id=OuterRef("stix_id")).order_by("-modified", "-pk")
    return (rereviews.select_related("case__account", "decision__decided_by", "resolved_by")
            .annotate(source_modified=Subquery(newest.values("modified")[:1]),
                      source_received_at=Subquery(newest.values("received_at")[:1]),
                      source_collection=Subquery(newest.values("collection_id")[:1]),
                      source_identity=Subquery(newest.values("source_identity")[:1]),
                      source_revoked=Subquery(newest.values("revoked")[:1])))


def rereviews_for_page() -> QuerySet[InboundReReview]:
    """Open re-reviews, oldest first (inbound.rereviews_open), with their source object."""
    return rereviews_with_source(rereviews_open()).order_by("opened_at", "pk")


# ── the sharing officer's lists (and the counts on their home page) ─────────────────────────────────────────

RECENT_WITHDRAWALS = timedelta(days=7)
PUSH_ATTENTION = (ForumPush.State.PENDING, ForumPush.State.FAILED, ForumPush.State.PARTIAL)


def pushes(*, state: str = "", purpose: str = "") -> QuerySet[ForumPush]:
    """Every push to the hub (shares, withdrawals, feedback), newest first, optionally of one state / purpose."""
    qs = ForumPush.objects.select_related("proposal").order_by("-created_at", "-pk")
    if state:
        qs = qs.filter(state=state)
    if purpose:
        qs = qs.filter(purpose=purpose)
    return qs


def push_counts() -> dict[str, int]:
    """How many pushes are pending, failed and partially accepted: one query."""
    counted = ForumPush.objects.aggregate(**{s.value: Count("pk", filter=Q(state=s)) for s in PUSH_ATTENTION})
    return {key: value or 0 for key, value in counted.items()}


def withdrawals(*, since=None) -> QuerySet[ShareWithdrawal]:
    """What we withdrew from our shares (an officer's withdrawal, or an overturned decision), newest first."""
    qs = (ShareWithdrawal.objects.select_related("proposal", "account", "withdrawn_by", "push")
          .order_by("-withdrawn_at", "-pk"))
    return qs.filter(withdrawn_at__gte=since) if since is not None else qs


def _forum_flags():
    """The match's flag, found through its key (flags_flagkey's primary key): flags_flag is partitioned by month
    and has no index on (detector, external_id) (docs/flags-indexes.md)."""
    key = FlagKey.objects.filter(detector_id=Subquery(Detector.objects.filter(slug=FORUM_DETECTOR).values("pk")),
                                 external_id=OuterRef(OuterRef("flag_external_id")))
    return Flag.objects.filter(pk__in=key.values("flag_id"))


def matches(*, awaiting: bool = False, collection_id: str = "") -> QuerySet[InboundMatch]:
    """Inbound matches, newest first, with the flag's case and its state. ``awaiting``: the live ones whose flag
    no person has reviewed yet (not grouped into a case yet, or its case still open)."""
    qs = (InboundMatch.objects.select_related("account", "inbound").order_by("-matched_at", "-pk")
          .annotate(case_id=Subquery(_forum_flags().values("case_id")[:1]),
                    case_state=Subquery(_forum_flags().values("case__state")[:1])))
    if collection_id:
        qs = qs.filter(collection_id=collection_id)
    if awaiting:
        qs = qs.filter(Q(withdrawn_at__isnull=True),
                       Exists(_forum_flags().filter(Q(case__isnull=True) | open_case("case__"))))
    return qs
