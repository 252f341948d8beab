"""The transparency report as JSON (/api/v1/compliance/transparency/): the same selectors as the page, behind the
console permission (GET only); a bad period is a 400 naming the field."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from reviewapp.compliance.home import CONSOLE_PERMISSION
from reviewapp.policy.enforcement import Action

from .forms import MAX_MONTHS, MONTHS_SHOWN, PeriodForm
from .selectors import RESEARCHER_OUTCOMES, transparency_report

TAGS = ["compliance"]


class ReadsConsole(BasePermission):
    message = "Only compliance officers read the transparency report."

    def has_permission(self, request, view) -> bool:
        return request.user.has_perm(CONSOLE_PERMISSION)


@extend_schema_field({"type": "string", "pattern": r"^\d{4}-\d{2}$", "example": "2026-01"})
class MonthField(serializers.Field):
    """A month as YYYY-MM (UTC)."""

    def to_representation(self, value) -> str:
        return f"{value:%Y-%m}"


def _counts(keys, help_text: str) -> serializers.DictField:
    return serializers.DictField(child=serializers.IntegerField(), help_text=f"{help_text}: {', '.join(keys)}")


class TransparencyPeriodSerializer(serializers.Serializer):
    first = MonthField(help_text="The first month (YYYY-MM, UTC)")
    last = MonthField(help_text="The last month, inclusive")
    months = serializers.ListField(child=MonthField(), help_text="Every month of the period, oldest first")


class TransparencyDecisionMonthSerializer(serializers.Serializer):
    month = MonthField()
    total = serializers.IntegerField(help_text="Decisions taken in the month (one per decision)")
    by_action = _counts(Action.values, "Decisions per action")
    median_hours = serializers.FloatField(allow_null=True, help_text="Median hours from case opening to decision")


class TransparencyClauseRowSerializer(serializers.Serializer):
    month = MonthField()
    clause = serializers.CharField(help_text="The clause's stable reference")
    titles = serializers.CharField(help_text="The clause's title (every title it had, '/'-separated)")
    action = serializers.ChoiceField(choices=Action.choices)
    decisions = serializers.IntegerField()


class TransparencyDecisionsSerializer(serializers.Serializer):
    months = TransparencyDecisionMonthSerializer(many=True)
    by_clause = TransparencyClauseRowSerializer(many=True,
                                                help_text="Month × clause × action, only combinations that occurred")
    clause_totals = serializers.DictField(child=serializers.IntegerField(), help_text="Decisions per clause")
    total = serializers.IntegerField()


class TransparencyAppealMonthSerializer(serializers.Serializer):
    month = MonthField()
    filed = serializers.IntegerField(help_text="Appeals filed in the month")
    decided = serializers.IntegerField(help_text="Appeals decided in the month")
    upheld = serializers.IntegerField()
    overturned = serializers.IntegerField()
    modified = serializers.IntegerField()
    overturn_rate = serializers.FloatField(allow_null=True, help_text="overturned ÷ decided; null when none decided")
    median_hours = serializers.FloatField(allow_null=True, help_text="Median hours from filing to outcome")


class TransparencyForumMonthSerializer(serializers.Serializer):
    month = MonthField()
    shares_approved = serializers.IntegerField()
    withdrawn_by_officer = serializers.IntegerField(help_text="Whole shares withdrawn by a sharing officer")
    withdrawn_after_appeal = serializers.IntegerField(help_text="Accounts withdrawn after an overturned decision")


class TransparencyResearcherMonthSerializer(serializers.Serializer):
    month = MonthField(help_text="The month the cases were opened")
    accounts = serializers.IntegerField(help_text="Distinct researcher-programme accounts with a case opened")
    cases = serializers.IntegerField()
    by_outcome = _counts([k for k, _ in RESEARCHER_OUTCOMES], "Cases per outcome")


class TransparencyResearchersSerializer(serializers.Serializer):
    months = TransparencyResearcherMonthSerializer(many=True)
    accounts = serializers.IntegerField(help_text="Distinct accounts over the whole period")
    cases = serializers.IntegerField()
    totals = _counts([k for k, _ in RESEARCHER_OUTCOMES], "Cases per outcome over the period")


class TransparencyReportSerializer(serializers.Serializer):
    period = TransparencyPeriodSerializer()
    decisions = TransparencyDecisionsSerializer()
    appeals = TransparencyAppealMonthSerializer(many=True)
    forum = TransparencyForumMonthSerializer(many=True)
    researchers = TransparencyResearchersSerializer()


_PERIOD = [
    OpenApiParameter("from", OpenApiTypes.STR, pattern=r"^\d{4}-\d{2}$",
                     description=f"First month, YYYY-MM (UTC); by default {MONTHS_SHOWN - 1} months before `to`"),
    OpenApiParameter("to", OpenApiTypes.STR, pattern=r"^\d{4}-\d{2}$",
                     description=f"Last month, inclusive, YYYY-MM; by default this month. At most {MAX_MONTHS} "
                                 "months at once"),
]


class TransparencyReportView(APIView):
    permission_classes = [IsAuthenticated, ReadsConsole]

    @extend_schema(tags=TAGS, parameters=_PERIOD, responses={200: TransparencyReportSerializer},
                   summary="The transparency report: decisions by clause, action and month; appeals and overturn "
                           "rates; median times to decision and appeal outcome; Forum shares and withdrawals; "
                           "researcher-programme accounts and how their cases ended")
    def get(self, request):
        form = PeriodForm(request.query_params)
        if not form.is_valid():
            raise ValidationError(form.errors_by_field())
        return Response(TransparencyReportSerializer(transparency_report(form.period)).data)
