"""The Forum's API under /api/v1/forum/: the same services and selectors as the pages (views.py), every refusal
mapped the way the other APIs map theirs (reviewapp.cases.api_errors.service_errors): a role that may not → 403,
an object one may not know exists → 404, bad input → 400 naming the field, a share not in the state → 409."""

from __future__ import annotations

import json

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from reviewapp.cases.api import StrictCursorPagination
from reviewapp.cases.api_errors import NO_NUL, NOT_BLANK, RolePermits, service_errors
from reviewapp.cases.models import Account, Campaign, Case

from . import listings
from .content import ShareChoice, ShareError
from .inbound import InboundError, Verdict, feedback_publish, rereview_done
from .models import InboundMatch, InboundObject, InboundReReview, ShareProposal
from .previews import share_preview
from .services import (
    REASON_MAX,
    InvalidShareTransition,
    share_approve,
    share_include_researcher,
    share_narrow,
    share_propose,
    share_reject,
    share_withdraw,
)
from .tlp import DEFAULT_TLP, Tlp
from .trust_groups import UnknownCollection

TAGS = ["forum"]
SOURCES = {"case": Case, "account": Account, "campaign": Campaign}
CONFLICT = OpenApiResponse(description="The share is not in a state that allows this (decided, withdrawn).")
EXCERPT_KEY = r"^[0-9]{1,18}:[0-9]{1,4}$"
SIMHASH = r"^[0-9a-f]{16}$"


class ForumCursor(StrictCursorPagination):
    """Every Forum list: newest first by id (unique and stable, so a page never skips or repeats a row as new ones
    arrive), 50 a page unless ``page_size`` says otherwise (1 to 500)."""

    page_size = 50
    ordering = "-id"


def _errors(call):
    return service_errors(call, conflicts=(InvalidShareTransition,), problems=(ShareError, InboundError))


class ChoiceSerializer(serializers.Serializer):
    campaign_summary = serializers.BooleanField(default=True)
    volume_stats = serializers.BooleanField(default=True)
    account_pseudonyms = serializers.BooleanField(default=False)
    organization_pseudonyms = serializers.BooleanField(default=False)
    fingerprints = serializers.ListField(child=serializers.RegexField(SIMHASH), max_length=500, default=list)
    excerpts = serializers.ListField(child=serializers.RegexField(EXCERPT_KEY), max_length=500, default=list,
                                     help_text='Each ticked excerpt as "<flag id>:<index>"; none by default.')

    def choice(self) -> ShareChoice:
        d = self.validated_data
        return ShareChoice(
            campaign_summary=d["campaign_summary"], volume_stats=d["volume_stats"],
            account_pseudonyms=d["account_pseudonyms"], organization_pseudonyms=d["organization_pseudonyms"],
            fingerprints=frozenset(d["fingerprints"]),
            excerpts=frozenset(tuple(int(x) for x in key.split(":")) for key in d["excerpts"]))


class ProposeSerializer(ChoiceSerializer):
    source = serializers.ChoiceField(choices=sorted(SOURCES))
    source_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    collection_id = serializers.RegexField(NOT_BLANK, max_length=128)
    tlp = serializers.ChoiceField(choices=[t.value for t in Tlp], default=DEFAULT_TLP.value)
    intrusion_set_name = serializers.RegexField(NO_NUL, max_length=200, required=False, allow_blank=True,
                                                default="")


class NarrowSerializer(ChoiceSerializer):
    reason = serializers.RegexField(NOT_BLANK, max_length=REASON_MAX)
    tlp = serializers.ChoiceField(choices=[t.value for t in Tlp], required=False)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.RegexField(NOT_BLANK, max_length=REASON_MAX)


class IncludeSerializer(ReasonSerializer):
    account = serializers.IntegerField(min_value=1, max_value=2**63 - 1, help_text="The account's id here.")


class ApproveSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    bundle_sha256 = serializers.RegexField(r"^[0-9a-f]{64}$", help_text="The SHA-256 the preview showed.")


class FeedbackSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=sorted(Verdict.CHOICES))


class ProposalSerializer(serializers.ModelSerializer):
    proposed_by = serializers.CharField(source="proposed_by.username", read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, allow_null=True, default=None)
    delivery = serializers.SerializerMethodField()

    class Meta:
        model = ShareProposal
        fields = ["id", "source", "case", "account", "campaign", "state", "current_version", "proposed_by",
                  "proposed_at", "decided_by", "decided_at", "rejection_reason", "withdrawn_at",
                  "withdrawal_reason", "delivery"]
        read_only_fields = fields

    def get_delivery(self, proposal) -> str:
        return listings.delivery_state(proposal)


class PreviewSerializer(serializers.Serializer):
    proposal = serializers.IntegerField()
    version = serializers.IntegerField()
    what_leaves = serializers.CharField()
    bundle_sha256 = serializers.CharField()
    canonical = serializers.CharField(help_text="The exact bytes that leave (RFC 8785) as text.")
    bundle = serializers.JSONField()


class RegisterRowSerializer(serializers.Serializer):
    proposal = serializers.IntegerField(source="proposal.pk")
    version = serializers.IntegerField()
    collection_id = serializers.CharField()
    tlp = serializers.CharField()
    proposed_by = serializers.CharField(source="proposed_by.username")
    approved_by = serializers.CharField(source="approved_by.username")
    approved_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    delivery = serializers.CharField()
    bundle_sha256 = serializers.CharField()
    withdrawn_at = serializers.SerializerMethodField()

    def get_withdrawn_at(self, row) -> list[str]:
        return [w.withdrawn_at.isoformat() for w in row["withdrawals"]]


class InboundSerializer(serializers.ModelSerializer):
    body = serializers.SerializerMethodField(help_text="null for TLP:RED objects (not shown).")
    tlp = serializers.CharField(read_only=True, help_text='The TLP 2.0 level of its marking; "" = none.')

    class Meta:
        model = InboundObject
        fields = ["id", "stix_id", "modified", "stix_type", "collection_id", "source_identity", "tlp", "revoked",
                  "received_at", "body"]
        read_only_fields = fields

    def get_body(self, obj) -> dict | None:
        return listings.shown_body(obj)


class MatchSerializer(serializers.ModelSerializer):
    class Meta:
        model = InboundMatch
        fields = ["id", "stix_id", "inbound", "collection_id", "account", "kind", "distance", "flag_external_id",
                  "matched_at", "withdrawn_at", "withdrawal_reason"]
        read_only_fields = fields


def _pk(text) -> int:
    """The id in the path, or 404 for one that is not a bigint (never a 500)."""
    if not (str(text).isascii() and str(text).isdigit()) or int(text) > 2**63 - 1:
        raise Http404
    return int(text)


def _found(obj):
    if obj is None:
        raise Http404
    return obj


def _source(data):
    source = SOURCES[data["source"]].objects.filter(pk=data["source_id"]).first()
    if source is None:
        raise ValidationError({"source_id": [f"no {data['source']} {data['source_id']}"]})
    return source


def _role_holds(permission: str | tuple[str, ...], message: str) -> type[IsAuthenticated]:
    """A permission class for a whole viewset: signed in and holding ``permission`` (one of them, given several),
    else 403 with ``message``."""
    permissions = (permission,) if isinstance(permission, str) else permission

    class Holds(IsAuthenticated):
        def has_permission(self, request, view) -> bool:
            return super().has_permission(request, view) and any(request.user.has_perm(p) for p in permissions)

    Holds.message = message
    return Holds


SharesRole = _role_holds(("forum.propose_share", "forum.approve_share", "forum.view_shareproposal"),
                         "Your role has no part in Forum sharing.")
ReadsShares = _role_holds("forum.view_shareproposal", "Your role does not read the sharing register.")
OfficerOnly = _role_holds("forum.approve_share", "Only a sharing officer gives feedback on inbound intelligence.")
ReadsInbound = _role_holds("forum.view_inboundobject", "Your role does not read inbound intelligence.")
ReadsMatches = _role_holds("forum.view_inboundmatch", "Your role does not read inbound matches.")
ReadsReReviews = _role_holds("forum.view_inboundrereview", "Your role does not read Forum re-reviews.")
SeniorOnly = _role_holds("cases.approve_decision", "Only a senior reviewer looks again at decisions whose Forum "
                                                   "intelligence was withdrawn.")


@extend_schema_view(
    list=extend_schema(tags=TAGS, summary="Forum share proposals you may see (officers and compliance: all; "
                                          "a reviewer: their own)"),
    retrieve=extend_schema(tags=TAGS, summary="One share proposal"),
)
class ProposalViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ProposalSerializer
    # A role with no part in sharing (an admin) is refused the whole viewset, as the pages refuse it
    # (views.share_list), rather than answered an empty list; the rest see what proposals_visible lets them.
    permission_classes = [SharesRole, RolePermits]
    pagination_class = ForumCursor
    role_permissions = {
        "create": ("forum.propose_share", "Your role does not propose Forum shares."),
        **dict.fromkeys(["approve", "reject", "narrow", "include_researcher"],
                        ("forum.approve_share", "Only a sharing officer may do this.")),
        "withdraw": ("forum.withdraw_share", "Only a sharing officer may withdraw a Forum share."),
    }

    def get_queryset(self):
        return listings.with_delivery(listings.proposals_visible(self.request.user))

    def get_object(self):
        return _found(listings.proposal_for(self.request.user, _pk(self.kwargs["pk"])))

    def _detail(self, proposal, status=200):
        proposal.refresh_from_db()
        return Response(ProposalSerializer(proposal).data, status=status)

    @extend_schema(tags=TAGS, request=ProposeSerializer, responses={201: ProposalSerializer},
                   summary="Propose a share of a decided case, an account or a campaign",
                   description="Reviewers and senior reviewers. The service enforces minimisation: accounts with a "
                               "recorded violation decision only, pseudonyms only for a large enough cluster, "
                               "TLP:AMBER/AMBER+STRICT/RED with pseudonyms or excerpts; 400 names the field.")
    def create(self, request):
        data = ProposeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        proposal = _errors(lambda: share_propose(
            proposer=request.user, source=_source(d), choice=data.choice(), collection_id=d["collection_id"],
            tlp=d["tlp"], intrusion_set_name=d["intrusion_set_name"]))
        return self._detail(proposal, status=201)

    @extend_schema(tags=TAGS, responses={200: PreviewSerializer},
                   summary="The exact bundle of the current version, its SHA-256 and the 'what leaves' line",
                   description="An audited evidence opening when the bundle carries prompt excerpts.")
    @action(detail=True, methods=["get"])
    def preview(self, request, pk=None):
        preview = _errors(lambda: share_preview(user=request.user, proposal=self.get_object()))
        return Response({"proposal": preview.proposal.pk, "version": preview.version.number,
                         "what_leaves": preview.what_leaves, "bundle_sha256": preview.sha256,
                         "canonical": preview.canonical_text, "bundle": json.loads(preview.canonical_text)})

    @extend_schema(tags=TAGS, request=ApproveSerializer, responses={200: ProposalSerializer, 409: CONFLICT},
                   summary="Approve the version previewed, by its SHA-256 (a sharing officer, not the proposer)",
                   description="400 when the version is not the current one or the bundle is no longer the one "
                               "previewed; the push is queued for the Forum hub.")
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        proposal = self.get_object()
        data = ApproveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _errors(lambda: share_approve(officer=request.user, proposal=proposal,
                                      version_number=data.validated_data["version"],
                                      bundle_sha256=data.validated_data["bundle_sha256"]))
        return self._detail(proposal)

    @extend_schema(tags=TAGS, request=ReasonSerializer, responses={200: ProposalSerializer, 409: CONFLICT},
                   summary="Reject the share with a reason (a sharing officer, not the proposer)")
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        proposal = self.get_object()
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _errors(lambda: share_reject(officer=request.user, proposal=proposal, reason=data.validated_data["reason"]))
        return self._detail(proposal)

    @extend_schema(tags=TAGS, request=NarrowSerializer, responses={200: ProposalSerializer, 409: CONFLICT},
                   summary="Narrow the share: a new version without some items (needs a new preview)")
    @action(detail=True, methods=["post"])
    def narrow(self, request, pk=None):
        proposal = self.get_object()
        data = NarrowSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _errors(lambda: share_narrow(officer=request.user, proposal=proposal, choice=data.choice(),
                                     reason=data.validated_data["reason"], tlp=data.validated_data.get("tlp")))
        return self._detail(proposal)

    @extend_schema(tags=TAGS, request=IncludeSerializer, responses={200: ProposalSerializer, 409: CONFLICT},
                   summary="Include one researcher-programme account, with a reason (a new version)")
    @action(detail=True, methods=["post"], url_path="include-researcher")
    def include_researcher(self, request, pk=None):
        proposal = self.get_object()
        data = IncludeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account = Account.objects.filter(pk=data.validated_data["account"]).first()
        if account is None:
            raise ValidationError({"account": [f"account {data.validated_data['account']} is not part of this share"]})
        _errors(lambda: share_include_researcher(officer=request.user, proposal=proposal, account=account,
                                                 reason=data.validated_data["reason"]))
        return self._detail(proposal)

    @extend_schema(tags=TAGS, request=ReasonSerializer, responses={200: ProposalSerializer, 409: CONFLICT},
                   summary="Withdraw the share with a reason: every object it sent is revoked at the hub")
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        proposal = self.get_object()
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _errors(lambda: share_withdraw(officer=request.user, proposal=proposal,
                                       reason=data.validated_data["reason"]))
        return self._detail(proposal)


@extend_schema_view(list=extend_schema(tags=TAGS, summary="The sharing register: what left, where, when, by whom, "
                                                          "the bundle hash, withdrawals (officers, compliance)"))
class RegisterViewSet(viewsets.GenericViewSet):
    permission_classes = [ReadsShares]
    serializer_class = RegisterRowSerializer
    pagination_class = ForumCursor
    queryset = ShareProposal.objects.none()

    def get_queryset(self):
        return listings.register_proposals()

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(RegisterRowSerializer(listings.register_rows(page), many=True).data)


@extend_schema_view(list=extend_schema(tags=TAGS, summary="Inbound objects from other labs (TLP:RED content not "
                                                          "shown)"),
                    retrieve=extend_schema(tags=TAGS, summary="One inbound object"))
class InboundViewSet(viewsets.ReadOnlyModelViewSet):
    """Sharing and compliance officers read; only a sharing officer gives feedback."""
    serializer_class = InboundSerializer
    permission_classes = [ReadsInbound]
    pagination_class = ForumCursor
    queryset = InboundObject.objects.none()

    def get_queryset(self):
        return listings.inbound_objects()

    def get_object(self):
        return _found(listings.inbound_objects().filter(pk=_pk(self.kwargs["pk"])).first())

    @extend_schema(tags=TAGS, request=FeedbackSerializer, responses={202: OpenApiResponse(
        description="Feedback queued for the hub (a STIX opinion with counts only).")},
        summary="Feedback to the source lab: confirmed, or false positive: a researcher")
    @action(detail=True, methods=["post"], permission_classes=[OfficerOnly])
    def feedback(self, request, pk=None):
        obj = self.get_object()
        data = FeedbackSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            push = _errors(lambda: feedback_publish(officer=request.user, inbound=obj,
                                                    verdict=data.validated_data["verdict"]))
        except UnknownCollection as exc:
            raise ValidationError({"collection_id": [
                f"The object came from a collection that is no longer configured, so there is no trust group to "
                f"publish feedback to: {exc}."]}) from exc
        return Response({"push": push.pk}, status=202)


@extend_schema_view(list=extend_schema(tags=TAGS, summary="Matches of inbound objects against local accounts"))
class MatchViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = MatchSerializer
    permission_classes = [ReadsMatches]
    pagination_class = ForumCursor
    queryset = InboundMatch.objects.none()

    def get_queryset(self):
        return listings.inbound_matches()




# ── re-reviews: decided cases that relied on intelligence a peer revoked ─────────────────────────────────────

class ReReviewSourceSerializer(serializers.Serializer):
    modified = serializers.CharField(source="source_modified", allow_null=True,
                                     help_text="STIX modified of the peer's newest version: when it revoked it.")
    received_at = serializers.DateTimeField(source="source_received_at", allow_null=True)
    collection_id = serializers.CharField(source="source_collection", allow_null=True)
    identity = serializers.CharField(source="source_identity", allow_null=True, help_text="created_by_ref.")
    revoked = serializers.BooleanField(source="source_revoked", allow_null=True,
                                       help_text="false: a new version that no longer lists the account.")


class ReReviewSerializer(serializers.ModelSerializer):
    account = serializers.CharField(source="case.account.external_id", read_only=True)
    decision_action = serializers.CharField(source="decision.action", read_only=True, allow_null=True,
                                            default=None)
    resolved_by = serializers.CharField(source="resolved_by.username", read_only=True, allow_null=True,
                                        default=None)
    source = serializers.SerializerMethodField()

    class Meta:
        model = InboundReReview
        fields = ["id", "case", "account", "decision", "decision_action", "stix_id", "reason", "state", "opened_at",
                  "resolved_by", "resolved_at", "source"]
        read_only_fields = fields

    @extend_schema_field(ReReviewSourceSerializer)
    def get_source(self, rereview) -> dict:
        return ReReviewSourceSerializer(rereview).data


class ReReviewDoneSerializer(serializers.Serializer):
    note = serializers.RegexField(NOT_BLANK, max_length=2_000, help_text="What you found; recorded in the audit.")


class ReReviewConflict(Exception):
    pass


class ReReviewCursor(StrictCursorPagination):
    page_size = 50
    ordering = ("opened_at", "id")


@extend_schema_view(list=extend_schema(tags=TAGS, summary="Open re-reviews: decided cases that relied on Forum "
                                                          "intelligence a peer revoked (senior reviewers)"))
class ReReviewViewSet(viewsets.GenericViewSet):
    """Seniors and compliance officers read; only a senior marks one done."""
    serializer_class = ReReviewSerializer
    permission_classes = [ReadsReReviews]
    pagination_class = ReReviewCursor
    queryset = InboundReReview.objects.none()

    def get_queryset(self):
        return listings.rereviews_for_page()

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ReReviewSerializer(page, many=True).data)

    def get_object(self):
        return _found(InboundReReview.objects.filter(pk=_pk(self.kwargs["pk"])).first())

    @extend_schema(tags=TAGS, request=ReReviewDoneSerializer, responses={
        200: ReReviewSerializer, 409: OpenApiResponse(description="This re-review is already done.")},
        summary="Mark a re-review done, with a note of what you found (audited)",
        description="A changed decision goes through the case's own services; this records that a senior "
                    "reviewer looked again.")
    @action(detail=True, methods=["post"], permission_classes=[SeniorOnly])
    def done(self, request, pk=None):
        rereview = self.get_object()
        data = ReReviewDoneSerializer(data=request.data)
        data.is_valid(raise_exception=True)

        def mark_done():
            try:
                return rereview_done(senior=request.user, rereview=rereview, note=data.validated_data["note"])
            except InboundError as exc:
                if exc.field == "rereview":  # already done: a conflict with its state, not bad input
                    raise ReReviewConflict(exc.message) from exc
                raise

        service_errors(mark_done, conflicts=(ReReviewConflict,), problems=(InboundError,))
        done = listings.rereviews_with_source(InboundReReview.objects.filter(pk=rereview.pk)).get()
        return Response(ReReviewSerializer(done).data)
