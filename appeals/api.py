"""The account holder's API: own decisions, filing and following appeals, answering the reviewer.

Authenticated by the holder's portal session (``appeals.session``), never a staff login; CSRF is enforced
for unsafe methods as for any session. Every read goes through the holder-scoped selectors, so another
account's decision or appeal answers 404. Writes call the same services as the portal pages.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import authentication, permissions, serializers, status
from rest_framework.exceptions import Throttled
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from reviewapp.audit.services import Actor
from reviewapp.cases.api_errors import service_errors
from reviewapp.cases.holders import holder_actor
from reviewapp.cases.models import Account, Decision
from reviewapp.limits import max_chars
from reviewapp.policy.enforcement import Action

from . import services
from .forms import uploads_from
from .models import Appeal, AppealAttachment, AppealMessage
from .selectors import (
    holder_appeal_or_404,
    holder_appeal_window,
    holder_appeals,
    holder_decision_or_404,
    holder_decisions,
)
from .session import holder_account
from .views import holder_write_limited


@dataclass(frozen=True)
class HolderPrincipal:
    """``request.user`` for a signed-in account holder: not staff, holds no model permissions."""

    account: Account
    is_authenticated: bool = True
    is_staff: bool = False
    is_superuser: bool = False

    @property
    def actor(self) -> Actor:
        return holder_actor(self.account)

    def has_perm(self, perm, obj=None) -> bool:
        return False


class HolderSessionAuthentication(authentication.SessionAuthentication):
    """The portal session's account as the principal; CSRF checked for unsafe methods (as DRF's session
    authentication does). A staff session without a holder sign-in is not authenticated here."""

    def authenticate(self, request):
        account = holder_account(request._request)
        if account is None:
            return None
        self.enforce_csrf(request)
        return HolderPrincipal(account=account), None


class IsHolder(permissions.BasePermission):
    message = "Sign in to the appeals portal with the link we emailed you."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, HolderPrincipal)


class HolderSessionScheme(OpenApiAuthenticationExtension):
    target_class = "appeals.api.HolderSessionAuthentication"
    name = "holderSession"
    priority = 1

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME,
            "description": "The appeals portal session, started by following a sign-in link (POST "
                           "/appeals/signin/{token}/). Unsafe methods also need the CSRF token (X-CSRFToken).",
        }


# --- Serializers ---------------------------------------------------------------------------------------

class HolderStatementSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    issued_at = serializers.DateTimeField()
    appeal_deadline = serializers.DateTimeField()
    content = serializers.JSONField(help_text="The statement of reasons as issued (DSA Art. 17): restriction, "
                                              "facts, automated_detection, automated_decision, ground with the "
                                              "clause texts, redress.")


class HolderDecisionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    action = serializers.ChoiceField(choices=Action.choices)
    state = serializers.ChoiceField(choices=Decision.State.choices)
    effective_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)
    statement = HolderStatementSerializer()
    appeal_deadline = serializers.SerializerMethodField()
    can_appeal = serializers.SerializerMethodField(
        help_text="Within the window, no open appeal against it, and not already reversed.")
    open_appeal = serializers.SerializerMethodField(help_text="The id of the open appeal against it, if any.")

    def get_appeal_deadline(self, decision) -> str:
        return serializers.DateTimeField().to_representation(decision.statement.appeal_deadline)

    def get_can_appeal(self, decision) -> bool:
        return holder_appeal_window(decision).can_appeal

    def get_open_appeal(self, decision) -> int | None:
        appeal = holder_appeal_window(decision).open_appeal
        return appeal.pk if appeal else None


class HolderAttachmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = AppealAttachment
        fields = ["id", "name", "content_type", "size", "uploaded_at"]


class HolderMessageSerializer(serializers.ModelSerializer):
    """A message as the holder sees it: who wrote it (``holder``: you, ``staff``: the appeal's reviewer),
    never the reviewer's name."""

    class Meta:
        model = AppealMessage
        fields = ["id", "author_type", "text", "created_at"]


class HolderAppealSerializer(serializers.ModelSerializer):
    replacement = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True,
                                                     help_text="A modified outcome's new decision.")

    class Meta:
        model = Appeal
        fields = ["id", "decision", "state", "outcome", "outcome_reason", "grounds", "researcher_claim",
                  "affiliation", "filed_at", "deadline", "claimed_at", "decided_at", "replacement"]


class HolderAppealDetailSerializer(HolderAppealSerializer):
    attachments = HolderAttachmentSerializer(many=True, read_only=True)
    messages = HolderMessageSerializer(many=True, read_only=True)

    class Meta(HolderAppealSerializer.Meta):
        fields = [*HolderAppealSerializer.Meta.fields, "attachments", "messages"]


class AppealFileSerializer(serializers.Serializer):
    decision = serializers.IntegerField(help_text="The id of one of your decisions.")
    grounds = serializers.CharField(max_length=max_chars(Appeal, "grounds"),
                                    help_text="Why you think the decision is wrong.")
    researcher_claim = serializers.BooleanField(default=False,
                                                help_text="You claim membership of the researcher access programme.")
    affiliation = serializers.CharField(max_length=max_chars(Appeal, "affiliation"), required=False, allow_blank=True,
                                        default="")
    attachments = serializers.ListField(
        child=serializers.FileField(), required=False, default=list,
        help_text=f"multipart/form-data only: up to {settings.APPEAL_ATTACHMENT_MAX_FILES} files (PDF, PNG, JPEG or "
                  f"UTF-8 text), each at most {settings.APPEAL_ATTACHMENT_MAX_BYTES // (1024 * 1024)} MB.")


class MessageInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=max_chars(AppealMessage, "text"))


# --- Views -----------------------------------------------------------------------------------------------

REFUSED = OpenApiResponse(description='The service refused; {"detail": "…"} says why, written for the holder.')
NOT_SIGNED_IN = OpenApiResponse(description="No holder session (a staff session does not count), or no CSRF token.")
NOT_YOURS = OpenApiResponse(description="No such decision or appeal of your account.")
CONFLICT = OpenApiResponse(description='Conflicts with the appeal as it stands (an open appeal against this decision '
                                      'already; the appeal is decided); {"detail": "…"} says which.')
TOO_MANY = OpenApiResponse(description="Too many writes in a short time; try again later.")


class HolderAPIView(APIView):
    authentication_classes = [HolderSessionAuthentication]
    permission_classes = [IsHolder]

    def account(self) -> Account:
        return self.request.user.account

    def limit(self, group: str) -> None:
        if holder_write_limited(self.request._request, group):
            raise Throttled(detail="Too many requests in a short time; try again later.")


def _refused(call):
    """The staff appeals API's mapping: a conflict with the appeal's state (an open appeal already, a decided
    appeal) is 409, any other refusal 400."""
    return service_errors(call, conflicts=(services.AppealConflict,), problems=(services.AppealError,))


class HolderDecisionList(HolderAPIView):
    @extend_schema(tags=["holder"], operation_id="holder_decisions_list",
                   summary="Your decisions, with their statements of reasons and appeal deadlines",
                   responses={200: HolderDecisionSerializer(many=True), 403: NOT_SIGNED_IN})
    def get(self, request):
        return Response(HolderDecisionSerializer(holder_decisions(self.account()), many=True).data)


class HolderAppealList(HolderAPIView):
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(tags=["holder"], operation_id="holder_appeals_list", summary="Your appeals, newest first",
                   responses={200: HolderAppealSerializer(many=True), 403: NOT_SIGNED_IN})
    def get(self, request):
        return Response(HolderAppealSerializer(holder_appeals(self.account()), many=True).data)

    @extend_schema(tags=["holder"], operation_id="holder_appeals_create",
                   summary="Appeal one of your decisions",
                   description="Within the decision's appeal window, one open appeal per decision. Attachments go "
                               "in a multipart/form-data body; if any file is refused, nothing is filed. A receipt "
                               "is emailed to the account's contact address.",
                   request={"multipart/form-data": AppealFileSerializer, "application/json": AppealFileSerializer},
                   responses={201: HolderAppealDetailSerializer, 400: REFUSED, 403: NOT_SIGNED_IN, 404: NOT_YOURS,
                              409: CONFLICT, 429: TOO_MANY})
    def post(self, request):
        self.limit("appeals.file")
        data = AppealFileSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        account = self.account()
        decision = holder_decision_or_404(account, fields["decision"])
        appeal = _refused(lambda: services.appeal_file(
            account=account, decision=decision, grounds=fields["grounds"],
            researcher_claim=fields["researcher_claim"], affiliation=fields["affiliation"],
            uploads=uploads_from(fields["attachments"])))
        return Response(HolderAppealDetailSerializer(holder_appeal_or_404(account, appeal.pk)).data,
                        status=status.HTTP_201_CREATED)


class HolderAppealDetail(HolderAPIView):
    @extend_schema(tags=["holder"], operation_id="holder_appeals_retrieve",
                   summary="One of your appeals, with its attachments and messages",
                   responses={200: HolderAppealDetailSerializer, 403: NOT_SIGNED_IN, 404: NOT_YOURS})
    def get(self, request, pk: int):
        return Response(HolderAppealDetailSerializer(holder_appeal_or_404(self.account(), pk)).data)


class HolderAppealMessages(HolderAPIView):
    @extend_schema(tags=["holder"], operation_id="holder_appeals_messages_create",
                   summary="Write to the reviewer of your open appeal (answers a request for information)",
                   request=MessageInputSerializer,
                   responses={201: HolderMessageSerializer, 400: REFUSED, 403: NOT_SIGNED_IN, 404: NOT_YOURS,
                              409: CONFLICT, 429: TOO_MANY})
    def post(self, request, pk: int):
        account = self.account()
        appeal = holder_appeal_or_404(account, pk)
        self.limit("appeals.message")
        data = MessageInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message = _refused(lambda: services.appeal_message_add(appeal=appeal, text=data.validated_data["text"],
                                                               holder=account))
        return Response(HolderMessageSerializer(message).data, status=status.HTTP_201_CREATED)
