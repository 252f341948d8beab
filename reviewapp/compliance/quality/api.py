"""The API twins of the quality pages, under /api/v1/compliance/: the same selectors and services.

Compliance (the console permission) lists and draws samples, reads agreement, disagreements and calibration;
senior reviewers read the sampled cases blind and post their verdicts. Refusals: not allowed 403, a second
look given already 409, a problem with what was sent 400 naming the field.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from reviewapp.cases.api import StrictCursorPagination
from reviewapp.cases.api_errors import RolePermits, service_errors
from reviewapp.compliance.home import CONSOLE_PERMISSION
from reviewapp.policy.enforcement import Action
from reviewapp.policy.models import Clause

from . import selectors
from .calibration import calibration_by_version, crosses
from .models import SecondLook, SecondLookSample
from .services import (
    MAX_PER_STRATUM,
    MAX_SEED,
    SampleError,
    SecondLookConflict,
    SecondLookError,
    sample_draw,
    second_look_record,
)

TAGS = ["compliance"]


class ReadsConsole(BasePermission):
    message = "Only compliance officers read the console."

    def has_permission(self, request, view) -> bool:
        return request.user.has_perm(CONSOLE_PERMISSION)


class ReviewsSecondLooks(BasePermission):
    message = "Only senior reviewers give second looks."

    def has_permission(self, request, view) -> bool:
        return request.user.has_perm(selectors.REVIEW_PERMISSION)


class SamplePagination(StrictCursorPagination):
    page_size = 50
    ordering = ("-drawn_at", "-id")


class BlindPagination(StrictCursorPagination):
    page_size = 50
    ordering = ("sample_id", "id")


class DisagreementPagination(StrictCursorPagination):
    page_size = 50
    ordering = ("-reviewed_at", "-id")


# ── Samples (compliance) ───────────────────────────────────────────────────────────────────────────


class SampleSerializer(serializers.ModelSerializer):
    drawn_by = serializers.CharField(source="drawn_by.username")
    decisions = serializers.SerializerMethodField(help_text="The sampled decisions' ids, with their strata.")

    class Meta:
        model = SecondLookSample
        fields = ["id", "drawn_by", "drawn_at", "seed", "strata", "per_stratum", "clause_refs", "reviewer_ids",
                  "decided_from", "decided_to", "population", "decisions"]

    def get_decisions(self, sample) -> list[dict]:
        return [{"decision": look.decision_id, "stratum": look.stratum, "reviewed": look.reviewed_at is not None}
                for look in sample.second_looks.all()]


class SampleDrawSerializer(serializers.Serializer):
    strata = serializers.ChoiceField(choices=SecondLookSample.Strata.choices)
    per_stratum = serializers.IntegerField(min_value=1, max_value=MAX_PER_STRATUM,
                                           help_text="Decisions per stratum (without strata: the sample's size).")
    clause_refs = serializers.ListField(child=serializers.CharField(max_length=32), required=False, default=list,
                                        help_text="Only decisions citing one of these clauses.")
    reviewer_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, default=list,
                                         help_text="Only decisions taken by these staff members.")
    decided_from = serializers.DateField(required=False, allow_null=True, default=None)
    decided_to = serializers.DateField(required=False, allow_null=True, default=None)
    seed = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0, max_value=MAX_SEED,
                                    help_text="Empty: a random seed, recorded. The same seed over the same decisions "
                                              "draws the same ones.")


@extend_schema_view(
    list=extend_schema(tags=TAGS, summary="Samples drawn for a second look, newest first"),
    retrieve=extend_schema(tags=TAGS, summary="One sample: its parameters, seed and decisions"),
    create=extend_schema(tags=TAGS, summary="Draw a sample of decided cases (compliance officers; audited)",
                         request=SampleDrawSerializer, responses={201: SampleSerializer}),
)
class SampleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                    viewsets.GenericViewSet):
    permission_classes = [IsAuthenticated, ReadsConsole, RolePermits]
    role_permissions = {"create": (selectors.DRAW_PERMISSION, "Your role does not draw samples.")}
    serializer_class = SampleSerializer
    pagination_class = SamplePagination
    queryset = SecondLookSample.objects.select_related("drawn_by").prefetch_related("second_looks")

    def create(self, request, *args, **kwargs):
        body = SampleDrawSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            sample = service_errors(lambda: sample_draw(actor=request.user, **body.validated_data),
                                    conflicts=(), problems=())
        except SampleError as exc:
            raise ValidationError({exc.field: [str(exc)]}) from exc
        sample = self.get_queryset().get(pk=sample.pk)
        return Response(SampleSerializer(sample).data, status=201)


# ── Agreement and disagreements (compliance) ───────────────────────────────────────────────────────


class AgreementRowSerializer(serializers.Serializer):
    key = serializers.CharField(allow_null=True, help_text="The first reviewer's username, or the clause ref.")
    reviewed = serializers.IntegerField(help_text="Second looks given.")
    agreed = serializers.IntegerField(help_text="Of them, the same action as the first decision.")
    same_clauses = serializers.IntegerField(help_text="Of them, exactly the same set of clauses.")
    action_rate = serializers.FloatField(allow_null=True, help_text="Agreement: agreed ÷ reviewed.")
    clause_rate = serializers.FloatField(allow_null=True, help_text="same_clauses ÷ reviewed.")


class AgreementSerializer(serializers.Serializer):
    overall = AgreementRowSerializer()
    by_reviewer = AgreementRowSerializer(many=True)
    by_clause = AgreementRowSerializer(many=True, help_text="A decision citing two clauses counts under each.")


class AgreementView(APIView):
    permission_classes = [IsAuthenticated, ReadsConsole]

    @extend_schema(tags=TAGS, summary="Agreement of second looks (same action), per reviewer and per clause",
                   responses=AgreementSerializer)
    def get(self, request):
        overall = selectors.agreement_overall()
        return Response(AgreementSerializer({"overall": {"key": None, **overall},
                                             "by_reviewer": selectors.agreement_by_reviewer(),
                                             "by_clause": selectors.agreement_by_clause()}).data)


class _VerdictSide(serializers.Serializer):
    action = serializers.ChoiceField(choices=Action.choices)
    clauses = serializers.ListField(child=serializers.CharField())
    by = serializers.CharField()
    at = serializers.DateTimeField()
    rationale = serializers.CharField()


class DisagreementSerializer(serializers.ModelSerializer):
    case = serializers.IntegerField(source="decision.case_id")
    first = serializers.SerializerMethodField()
    second = serializers.SerializerMethodField()

    class Meta:
        model = SecondLook
        fields = ["id", "sample", "decision", "case", "first", "second"]

    @extend_schema_field(_VerdictSide)
    def get_first(self, look) -> dict:
        d = look.decision
        return {"action": d.action, "clauses": sorted(c.ref for c in d.clauses.all()), "by": d.decided_by.username,
                "at": d.decided_at, "rationale": d.rationale}

    @extend_schema_field(_VerdictSide)
    def get_second(self, look) -> dict:
        return {"action": look.action, "clauses": sorted(c.ref for c in look.clauses.all()),
                "by": look.reviewed_by.username, "at": look.reviewed_at, "rationale": look.rationale}


@extend_schema_view(list=extend_schema(
    tags=TAGS, summary="Second looks that chose another action than the first decision, side by side (compliance)"))
class DisagreementViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsAuthenticated, ReadsConsole]
    serializer_class = DisagreementSerializer
    pagination_class = DisagreementPagination

    def get_queryset(self):
        return selectors.disagreements()


# ── The blind side (senior reviewers) ──────────────────────────────────────────────────────────────


class BlindFlagSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    detector = serializers.CharField(source="detector__slug")
    detector_version = serializers.CharField()
    signal = serializers.CharField()
    score = serializers.FloatField()
    observed_from = serializers.DateTimeField()
    observed_to = serializers.DateTimeField()
    request_count = serializers.IntegerField(allow_null=True)


class BlindClauseSerializer(serializers.ModelSerializer):
    permitted_actions = serializers.ListField(child=serializers.CharField(), help_text="Action codes it permits.")

    class Meta:
        model = Clause
        fields = ["ref", "title", "text", "permitted_actions"]


class BlindListSerializer(serializers.ModelSerializer):
    """A sampled case waiting for its second look: nothing of the decision, not even its id."""

    case = serializers.IntegerField(source="decision.case_id")
    account = serializers.CharField(source="decision.case.account.external_id")
    flag_count = serializers.IntegerField(source="decision.case.flag_count")
    took_part = serializers.SerializerMethodField(help_text="You took part in the case: another senior reviews it.")

    class Meta:
        model = SecondLook
        fields = ["id", "sample", "case", "account", "flag_count", "took_part"]

    def get_took_part(self, look) -> bool:
        return look.decision_id in self.context["taken"]


class BlindCaseSerializer(serializers.Serializer):
    """What the second reviewer sees: the case, its flags and the policy; nothing of the first decision."""

    id = serializers.IntegerField(source="look_id")
    case = serializers.IntegerField(source="case_id")
    account = serializers.CharField()
    queue = serializers.CharField()
    opened_at = serializers.DateTimeField()
    signals = serializers.ListField(child=serializers.CharField())
    flag_count = serializers.IntegerField()
    total_requests = serializers.IntegerField()
    max_score = serializers.FloatField()
    flags = BlindFlagSerializer(many=True, help_text=f"The first {selectors.BLIND_FLAGS_SHOWN} flags.")
    policy_version = serializers.CharField(help_text="The policy version the case is judged under.")
    clauses = BlindClauseSerializer(many=True)
    reviewed = serializers.BooleanField(help_text="The second look was given.")


class VerdictSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=Action.choices)
    clauses = serializers.ListField(child=serializers.CharField(max_length=32), min_length=1,
                                    help_text="Clause refs of the policy version shown with the case.")
    rationale = serializers.CharField(max_length=SecondLook._meta.get_field("rationale").max_length)


class VerdictRecordedSerializer(serializers.ModelSerializer):
    clauses = serializers.SlugRelatedField(many=True, read_only=True, slug_field="ref")

    class Meta:
        model = SecondLook
        fields = ["id", "action", "clauses", "rationale", "reviewed_at"]


@extend_schema_view(
    list=extend_schema(tags=TAGS, summary="Sampled cases waiting for a blind second look (senior reviewers)"),
    retrieve=extend_schema(tags=TAGS, summary="One sampled case, blind: no first decision in it",
                           responses=BlindCaseSerializer),
    verdict=extend_schema(tags=TAGS, summary="Record your blind verdict on a sampled case (audited)",
                          request=VerdictSerializer, responses={201: VerdictRecordedSerializer}),
)
class SecondLookViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsAuthenticated, ReviewsSecondLooks]
    serializer_class = BlindListSerializer
    pagination_class = BlindPagination

    def get_queryset(self):
        return selectors.pending_second_looks()

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        taken = selectors.took_part(request.user, [look.decision for look in page])
        return self.get_paginated_response(BlindListSerializer(page, many=True, context={"taken": taken}).data)

    def retrieve(self, request, *args, **kwargs):
        look = service_errors(lambda: selectors.second_look_for_senior(request.user, int(kwargs["pk"])),
                              conflicts=(), problems=())
        blind = selectors.blind_case(request.user, look)
        return Response(BlindCaseSerializer(blind).data)

    @action(detail=True, methods=["post"])
    def verdict(self, request, pk=None):
        body = VerdictSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        look = service_errors(lambda: selectors.second_look_for_senior(request.user, int(pk)),
                              conflicts=(), problems=())
        clauses = list(Clause.objects.filter(version_id=look.decision.policy_version_id,
                                             ref__in=body.validated_data["clauses"]))
        unknown = sorted(set(body.validated_data["clauses"]) - {c.ref for c in clauses})
        if unknown:
            raise ValidationError({"clauses": [f"not clauses of the policy version shown: {', '.join(unknown)}"]})
        look = service_errors(lambda: second_look_record(
            reviewer=request.user, look=look, action=body.validated_data["action"], clauses=clauses,
            rationale=body.validated_data["rationale"]), conflicts=(SecondLookConflict,), problems=(SecondLookError,))
        return Response(VerdictRecordedSerializer(look).data, status=201)


# ── Calibration (compliance) ───────────────────────────────────────────────────────────────────────


class CalibrationRowSerializer(serializers.Serializer):
    detector = serializers.CharField()
    version = serializers.CharField()
    flags = serializers.IntegerField()
    cases = serializers.IntegerField(help_text="Distinct cases holding a flag of this version.")
    decisions = serializers.IntegerField(help_text="Reviewers' decisions on those cases (not sent back, not "
                                                   "awaiting approval, not an appeal's replacement).")
    by_action = serializers.DictField(child=serializers.IntegerField())
    cases_decided = serializers.IntegerField()
    violation_decisions = serializers.IntegerField(help_text="Decisions with an action other than no_violation.")
    appealed = serializers.IntegerField(help_text="Decisions with an appeal.")
    appeals_decided = serializers.IntegerField(help_text="Decisions whose appeal is decided.")
    overturned = serializers.IntegerField()
    modified = serializers.IntegerField(help_text="Replaced by a lesser action on appeal (not overturned).")
    overturn_rate = serializers.FloatField(allow_null=True, help_text="overturned ÷ appeals_decided.")
    share_overturned = serializers.FloatField(allow_null=True, help_text="overturned ÷ violation_decisions.")
    precision = serializers.FloatField(allow_null=True, help_text="violation_decisions ÷ cases_decided.")
    over_threshold = serializers.BooleanField(help_text="At or above the alert line, with enough decided appeals.")
    alert_open = serializers.BooleanField(help_text="An alert is raised and not cleared.")


class CalibrationSerializer(serializers.Serializer):
    threshold = serializers.FloatField(help_text="COMPLIANCE_OVERTURN_ALERT.")
    min_appeals = serializers.IntegerField(help_text="COMPLIANCE_OVERTURN_ALERT_MIN_APPEALS.")
    rows = CalibrationRowSerializer(many=True)


class CalibrationView(APIView):
    permission_classes = [IsAuthenticated, ReadsConsole]

    @extend_schema(tags=TAGS, summary="Calibration per detector and detector version", responses=CalibrationSerializer)
    def get(self, request):
        threshold, min_appeals = settings.COMPLIANCE_OVERTURN_ALERT, settings.COMPLIANCE_OVERTURN_ALERT_MIN_APPEALS
        alerted = {(a.detector_id, a.detector_version) for a in selectors.open_alerts()}
        rows = [{**vars(row), "overturn_rate": row.overturn_rate, "share_overturned": row.share_overturned,
                 "precision": row.precision,
                 "over_threshold": crosses(row, threshold=threshold, min_appeals=min_appeals),
                 "alert_open": (row.detector_id, row.version) in alerted} for row in calibration_by_version()]
        return Response(CalibrationSerializer({"threshold": threshold, "min_appeals": min_appeals, "rows": rows}).data)
