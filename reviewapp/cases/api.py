from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from reviewapp.limits import max_chars
from reviewapp.policy.enforcement import Action

from .api_errors import RolePermits, service_errors
from .models import Case, Decision
from .selectors import (
    cases_visible_to,
    clauses_in_force_by_ref,
    pending_decision_of,
)
from .services.claims import ClaimError, case_claim, case_claim_next, case_release
from .services.decisions import (
    DecisionNotAwaitingApproval,
    PolicyViolation,
    decision_approve,
    decision_record,
    decision_send_back,
)
from .vocabulary import Queue, Signal


class CaseSerializer(serializers.ModelSerializer):
    account = serializers.CharField(source="account.external_id")
    organization = serializers.CharField(source="account.organization_id")
    researcher_programme = serializers.BooleanField(source="account.researcher_programme")
    campaign = serializers.CharField(source="campaign.key", allow_null=True, default=None)
    signals = serializers.ListField(child=serializers.ChoiceField(choices=Signal.choices))

    class Meta:
        model = Case
        fields = ["id", "state", "queue", "priority", "sla_due_at", "account", "organization",
                  "researcher_programme", "campaign", "signals", "flag_count", "total_requests", "max_score",
                  "last_observed_at", "opened_at", "updated_at"]


class UTCDateTimeField(IsoDateTimeField):
    """An RFC 3339 time, turned into UTC here: an offset PostgreSQL refuses (+21:21) or an instant outside
    years 1-9999 once the offset is applied (9999-12-31T23:59:59-23:00) is the sender's mistake (400, naming
    the parameter), not a DataError from the database."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Outside the years 1-9999 once its UTC offset is applied.",
                                        code="invalid") from None


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCDateTimeField


class CaseFilter(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=Case.State.choices)
    queue = django_filters.ChoiceFilter(choices=Queue.choices)
    priority_min = django_filters.NumberFilter(field_name="priority", lookup_expr="gte")
    priority_max = django_filters.NumberFilter(field_name="priority", lookup_expr="lte")
    account = django_filters.CharFilter(field_name="account__external_id", help_text="platform account id")
    campaign = django_filters.CharFilter(field_name="campaign__key", help_text="campaign key (detector:cluster)")
    signal = django_filters.ChoiceFilter(choices=Signal.choices, method="filter_signal")
    opened_after = UTCDateTimeFilter(field_name="opened_at", lookup_expr="gte")
    opened_before = UTCDateTimeFilter(field_name="opened_at", lookup_expr="lt")
    observed_after = UTCDateTimeFilter(field_name="last_observed_at", lookup_expr="gte")

    class Meta:
        model = Case
        fields = []

    def filter_signal(self, queryset, name, value):
        return queryset.filter(signals__contains=[value])


class StrictCursorPagination(CursorPagination):
    """A ``page_size`` that is not a whole number from 1 to ``max_page_size`` is refused (400, naming it), not
    silently replaced by the default; the schema says the bounds."""

    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            raise ValidationError({self.page_size_query_param: [
                f"A whole number from 1 to {self.max_page_size}."]})
        return int(raw)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters


class CaseCursor(StrictCursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "-id"  # unique and stable: a page never skips or repeats a case as new ones arrive


# --- Review actions: the same services the pages call ------------------------------------------------

class ClauseRefsField(serializers.ListField):
    """Clause refs in, the clauses of the policy in force out; names the refs that are not among them."""

    child = serializers.CharField()

    def to_internal_value(self, data) -> list:
        refs = super().to_internal_value(data)
        clauses = clauses_in_force_by_ref(refs)
        unknown = sorted(set(refs) - {clause.ref for clause in clauses})
        if unknown:
            raise serializers.ValidationError(f"not clauses of the policy in force: {', '.join(unknown)}")
        return clauses


class DecisionInputSerializer(serializers.Serializer):
    clauses = ClauseRefsField(min_length=1, help_text="Clause refs of the policy version in force, e.g. [\"UP-2.1\"].")
    action = serializers.ChoiceField(choices=Action.choices)
    duration_days = serializers.IntegerField(required=False, allow_null=True, min_value=1,
                                             help_text="Required for rate_limit and suspend.")
    rationale = serializers.CharField(max_length=max_chars(Decision, "rationale"),
                                      help_text="Internal: why (reviewers, approvers, auditors).")
    facts_for_holder = serializers.CharField(required=False, allow_blank=True, default="",
                                             max_length=max_chars(Decision, "facts_for_holder"),
                                             help_text="What the account holder is told was relied on.")


class DecisionSerializer(serializers.ModelSerializer):
    clauses = serializers.SlugRelatedField(many=True, read_only=True, slug_field="ref")
    decided_by = serializers.CharField(source="decided_by.username")
    approved_by = serializers.CharField(source="approved_by.username", allow_null=True, default=None)
    policy_version = serializers.CharField()
    statement = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True, default=None)

    class Meta:
        model = Decision
        fields = ["id", "case", "state", "action", "duration_days", "clauses", "policy_version", "rationale",
                  "facts_for_holder", "decided_by", "decided_at", "approved_by", "approved_at", "sent_back_reason",
                  "effective_at", "ends_at", "statement"]


class SendBackSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=max_chars(Decision, "sent_back_reason"))


def _service_errors(call):
    return service_errors(call, conflicts=(ClaimError, DecisionNotAwaitingApproval), problems=(PolicyViolation,))


# The services' own refusals, checked first (RolePermits) so that the body is judged only for those who may send it.
CLAIMS = ("cases.claim_case", "Your role does not claim cases.")
DECIDES = ("cases.claim_case", "Your role does not decide cases.")
APPROVES = ("cases.approve_decision", "Only senior reviewers give second approval.")


class CaseReviewMixin:
    role_permissions = {"claim": CLAIMS, "release": CLAIMS, "decisions": DECIDES, "approve": APPROVES,
                        "send_back": APPROVES}

    @extend_schema(tags=["review"], request=None, responses={200: CaseSerializer},
                   summary="Claim this case (or renew your claim)")
    @action(detail=True, methods=["post"])
    def claim(self, request, pk=None):
        case = _service_errors(lambda: case_claim(reviewer=request.user, case=self.get_object()))
        return Response(CaseSerializer(case).data)

    @extend_schema(tags=["review"], request=None, responses={200: CaseSerializer}, summary="Release your claim")
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        case = _service_errors(lambda: case_release(reviewer=request.user, case=self.get_object()))
        return Response(CaseSerializer(case).data)

    @extend_schema(tags=["review"], request=DecisionInputSerializer, responses={201: DecisionSerializer},
                   summary="Decide a case you have claimed",
                   description="Cites clauses of the policy version in force; the action must be one a cited clause "
                               "permits. Any terminate, or a clause marked for second approval, waits for a senior "
                               "reviewer; anything else is enforced at once (outbox) with a statement of reasons.")
    @action(detail=True, methods=["post"])
    def decisions(self, request, pk=None):
        case = self.get_object()
        data = DecisionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decision = _service_errors(lambda: decision_record(reviewer=request.user, case=case, **data.validated_data))
        return Response(DecisionSerializer(decision).data, status=201)

    @extend_schema(tags=["review"], request=None, responses={200: DecisionSerializer},
                   summary="Second approval of the decision awaiting it (senior reviewer, not the decider)",
                   description="409 when the decision no longer awaits approval: another senior approved it or "
                               "sent it back first.")
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        decision = pending_decision_of(self.get_object())
        decision = _service_errors(lambda: decision_approve(approver=request.user, decision=decision))
        return Response(DecisionSerializer(decision).data)

    @extend_schema(tags=["review"], request=SendBackSerializer, responses={200: DecisionSerializer},
                   summary="Send the decision awaiting approval back to its reviewer, with a reason",
                   description="409 when the decision no longer awaits approval: another senior approved it or "
                               "sent it back first.")
    @action(detail=True, methods=["post"], url_path="send-back")
    def send_back(self, request, pk=None):
        decision = pending_decision_of(self.get_object())
        data = SendBackSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decision = _service_errors(lambda: decision_send_back(approver=request.user, decision=decision,
                                                              reason=data.validated_data["reason"]))
        return Response(DecisionSerializer(decision).data)


class ClaimNextView(APIView):
    permission_classes = [IsAuthenticated, RolePermits]
    role_permissions = {"post": CLAIMS}

    @extend_schema(tags=["review"], request=None, responses={200: CaseSerializer, 204: None},
                   summary="Claim the best unclaimed case of a queue (204 when the queue is empty)")
    def post(self, request, queue: str):
        if queue not in Queue.values:
            raise NotFound(f"no queue '{queue}'")
        case = _service_errors(lambda: case_claim_next(reviewer=request.user, queue=queue))
        if case is None:
            return Response(status=204)
        return Response(CaseSerializer(case).data)


@extend_schema_view(
    list=extend_schema(tags=["cases"], summary="List cases (newest first, cursor-paginated)"),
    retrieve=extend_schema(tags=["cases"], summary="One case"),
)
class CaseViewSet(CaseReviewMixin, viewsets.ReadOnlyModelViewSet):
    """Case summaries for staff whose role reads cases. Raw evidence is never part of these answers.

    Served as ``flags.case_api.CaseViewSet``, which adds what only flags know (each case's recent flags, the
    ``detector`` filter): cases never read the flags table (DESIGN.md: dependencies run one way).
    """

    detail_serializer_class = CaseSerializer

    permission_classes = [IsAuthenticated, RolePermits]
    filterset_class = CaseFilter
    pagination_class = CaseCursor

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Case.objects.none()
        return cases_visible_to(self.request.user)

    def get_serializer_class(self):
        return self.detail_serializer_class if self.action == "retrieve" else CaseSerializer
