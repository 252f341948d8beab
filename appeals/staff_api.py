"""The staff appeals API: the queue, one appeal, claim, ask the holder, outcome. The same services as the
pages (appeals/staff_views.py); refusals map onto HTTP like the case API's: not allowed 403, a conflict
with the appeal's state 409, a problem with what was sent 400.
"""

from __future__ import annotations

import re

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response

from reviewapp.cases.api import ClauseRefsField, DecisionSerializer, StrictCursorPagination
from reviewapp.cases.api_errors import RolePermits, service_errors
from reviewapp.cases.models import Decision
from reviewapp.cases.services.decisions import MAX_DURATION_DAYS
from reviewapp.limits import max_chars
from reviewapp.policy.enforcement import Action

from .models import Appeal, AppealAttachment, AppealMessage
from .selectors import APPEALS_QUEUE_ORDER, appeal_for_staff_or_404, appeals_queue, decisions_taken_part_in
from .services import AppealConflict, AppealError, appeal_claim, appeal_decide, appeal_message_add

TAGS = ["appeals"]


class ReadsAppeals(BasePermission):
    """Senior reviewers and compliance officers read appeals; what they may change is the services' call."""

    def has_permission(self, request, view) -> bool:
        return request.user.has_perm("appeals.view_appeal")


def _service_errors(call):
    return service_errors(call, conflicts=(AppealConflict,), problems=(AppealError,))


class AppealMessageSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", allow_null=True, default=None,
                                   help_text="The staff member; empty for the holder.")

    class Meta:
        model = AppealMessage
        fields = ["id", "author_type", "author", "text", "created_at"]


class AppealAttachmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = AppealAttachment
        fields = ["id", "name", "content_type", "size", "sha256", "uploaded_at"]


class AppealSerializer(serializers.ModelSerializer):
    account = serializers.CharField(source="account.external_id")
    action = serializers.ChoiceField(source="decision.action", choices=Action.choices,
                                     help_text="The action of the decision appealed.")
    clauses = serializers.SlugRelatedField(source="decision.clauses", many=True, read_only=True, slug_field="ref")
    reviewer = serializers.CharField(source="reviewer.username", allow_null=True, default=None)
    review_due_at = serializers.DateTimeField(
        read_only=True, help_text="When the review is due (14 days after filing); the queue is in this order.")
    took_part = serializers.SerializerMethodField(
        help_text="Whether you took part in the decision appealed (then you may not claim the appeal).")

    class Meta:
        model = Appeal
        fields = ["id", "state", "account", "decision", "action", "clauses", "filed_at", "review_due_at", "deadline",
                  "reviewer", "claimed_at", "researcher_claim", "outcome", "decided_at", "took_part"]

    def get_took_part(self, appeal) -> bool:
        taken = self.context.get("taken_part")
        if taken is None:
            taken = decisions_taken_part_in(self.context["request"].user, [appeal.decision])
        return appeal.decision_id in taken


class AppealDetailSerializer(AppealSerializer):
    decision = DecisionSerializer(read_only=True)
    messages = AppealMessageSerializer(many=True, read_only=True)
    attachments = AppealAttachmentSerializer(many=True, read_only=True)
    replacement = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True,
                                                     help_text="The decision that replaced it (modified).")

    class Meta(AppealSerializer.Meta):
        fields = [*AppealSerializer.Meta.fields, "grounds", "affiliation", "messages", "attachments",
                  "outcome_reason", "replacement"]


class InformationRequestSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=max_chars(AppealMessage, "text"),
                                 help_text="The question; the holder is emailed to answer it.")


class OutcomeSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Appeal.Outcome.choices)
    reason = serializers.CharField(allow_blank=True, min_length=1,  # blank: the service says why
                                   max_length=max_chars(Appeal, "outcome_reason"),
                                   help_text="The reasoned outcome, written for the holder (required).")
    clauses = ClauseRefsField(required=False, default=list,
                              help_text="modified: clause refs of the policy in force, e.g. [\"UP-2.1\"].")
    action = serializers.ChoiceField(choices=Action.choices, required=False, allow_blank=True, default="",
                                     help_text="modified: the lesser action that replaces the decision.")
    duration_days = serializers.IntegerField(required=False, allow_null=True, min_value=1,
                                             max_value=MAX_DURATION_DAYS,
                                             help_text="modified: for a rate limit or a suspension.")
    facts_for_holder = serializers.CharField(required=False, allow_blank=True, default="",
                                             max_length=max_chars(Decision, "facts_for_holder"),
                                             help_text="modified: the facts of the new statement (else the reason).")


class AppealQueueCursor(StrictCursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = APPEALS_QUEUE_ORDER  # the queue page's order: the review due soonest first


@extend_schema_view(
    list=extend_schema(tags=TAGS, summary="The appeals queue: open appeals, the review due soonest first"),
    retrieve=extend_schema(tags=TAGS, summary="One appeal with its decision, grounds, messages and attachments"),
)
class AppealReviewViewSet(viewsets.ReadOnlyModelViewSet):
    """Appeals for senior reviewers (who decide them) and compliance officers (who read them).

    Attachments are listed, not served here: staff open them on the appeal page, each opening audited.
    """

    permission_classes = [IsAuthenticated, ReadsAppeals, RolePermits]
    # The services' own first refusal, checked before the body is read (a compliance officer gets 403, not 400).
    role_permissions = dict.fromkeys(["claim", "messages", "outcome"],
                                     ("appeals.decide_appeal", "Only senior reviewers handle appeals."))
    pagination_class = AppealQueueCursor
    filter_backends = []

    def get_queryset(self):
        if self.action == "list":
            return appeals_queue()
        return Appeal.objects.none()  # one appeal: get_object reads it through the staff selector

    def get_object(self):
        pk = self.kwargs["pk"]
        if not re.fullmatch(r"[0-9]{1,18}", pk):  # /appeals/AAA/ is no appeal (not a ValueError); nor past bigint
            raise NotFound("No such appeal.")
        return appeal_for_staff_or_404(int(pk))

    def get_serializer_class(self):
        return AppealSerializer if self.action == "list" else AppealDetailSerializer

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        taken = decisions_taken_part_in(request.user, [appeal.decision for appeal in page])
        data = AppealSerializer(page, many=True, context={"request": request, "taken_part": taken}).data
        return self.get_paginated_response(data)

    def _detail(self, appeal, status: int = 200) -> Response:
        appeal = appeal_for_staff_or_404(appeal.pk)  # as it is now, with everything the answer shows
        return Response(AppealDetailSerializer(appeal, context={"request": self.request}).data, status=status)

    @extend_schema(tags=TAGS, request=None, responses={200: AppealDetailSerializer},
                   summary="Claim the appeal (a senior reviewer who took no part in the decision)",
                   description="403 for anyone who decided or approved the decision, claimed its case or sent a "
                               "decision of it back, and for anyone but senior reviewers; 409 when the appeal is "
                               "decided or someone else holds it.")
    @action(detail=True, methods=["post"])
    def claim(self, request, pk=None):
        appeal = _service_errors(lambda: appeal_claim(reviewer=request.user, appeal=self.get_object()))
        return self._detail(appeal)

    @extend_schema(tags=TAGS, request=InformationRequestSerializer, responses={201: AppealMessageSerializer},
                   summary="Ask the holder for information (the appeal waits for their reply)",
                   description="Only the appeal's reviewer. The holder is emailed a fresh sign-in link to answer "
                               "in the portal.")
    @action(detail=True, methods=["post"])
    def messages(self, request, pk=None):
        appeal = self.get_object()
        data = InformationRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message = _service_errors(lambda: appeal_message_add(appeal=appeal, text=data.validated_data["text"],
                                                             staff=request.user))
        return Response(AppealMessageSerializer(message).data, status=201)

    @extend_schema(tags=TAGS, request=OutcomeSerializer, responses={200: AppealDetailSerializer},
                   summary="Decide the appeal: upheld, overturned or modified, with reasons for the holder",
                   description="Only the appeal's reviewer. overturned: the decision is reversed and its "
                               "enforcement lifted through the outbox. modified: a lesser action, permitted by "
                               "every cited clause in force, replaces it with a new statement of reasons. The "
                               "holder is emailed the outcome, the reasons and the DSA Art. 21 options.")
    @action(detail=True, methods=["post"])
    def outcome(self, request, pk=None):
        appeal = self.get_object()
        data = OutcomeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        appeal = _service_errors(lambda: appeal_decide(reviewer=request.user, appeal=appeal, **data.validated_data))
        return self._detail(appeal)
