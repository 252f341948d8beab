"""The evidence-access API: the same reads as the pages, as JSON, behind the console permission (GET only)."""

from __future__ import annotations

from urllib.parse import urlencode

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from reviewapp.compliance.home import CONSOLE_PERMISSION

from .forms import AccessFilterForm, WeeklyForm
from .selectors import OWN_RULE, openings_page, weekly_counts

TAGS = ["compliance"]


class ConsolePermission(BasePermission):
    message = "Only compliance officers read the evidence-access log."

    def has_permission(self, request, view) -> bool:
        return request.user.has_perm(CONSOLE_PERMISSION)


class OpeningSerializer(serializers.Serializer):
    event = serializers.IntegerField(source="pk", help_text="The audit event's id")
    at = serializers.DateTimeField(source="created_at")
    person_id = serializers.CharField(source="actor_id")
    person = serializers.CharField(source="actor_display")
    role = serializers.CharField(help_text="The role held at the time (from the last role change before it)")
    role_is_current = serializers.BooleanField(
        help_text="True when the trail has no role change for the person and their role now is given")
    account = serializers.CharField(allow_null=True)
    case = serializers.IntegerField(source="case_pk", allow_null=True)
    context = serializers.SerializerMethodField()
    flags = serializers.SerializerMethodField()
    own_case_as = serializers.ListField(source="own_as", child=serializers.ChoiceField(
        choices=["assignee", "approver", "appeal reviewer"]), help_text="Empty: outside own assigned cases")

    def get_context(self, row) -> str:
        return str(row.data.get("context", "")) if isinstance(row.data, dict) else ""

    def get_flags(self, row) -> list[int]:
        flags = row.data.get("flags", []) if isinstance(row.data, dict) else []
        return [f for f in flags if isinstance(f, int)]


class OpeningPageSerializer(serializers.Serializer):
    results = OpeningSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="The URL of the next (older) page, or null")
    own_rule = serializers.CharField(help_text="What counts as the opener's own assigned case")


class PersonWeeksSerializer(serializers.Serializer):
    person_id = serializers.CharField()
    person = serializers.CharField(source="name")
    counts = serializers.ListField(child=serializers.IntegerField(), help_text="Openings per week, as `weeks`")
    outside = serializers.ListField(child=serializers.IntegerField(),
                                    help_text="Of those, outside own assigned cases, per week")
    total = serializers.IntegerField()
    outside_total = serializers.IntegerField()


class WeeklySerializer(serializers.Serializer):
    weeks = serializers.ListField(child=serializers.DateField(), help_text="The Monday of each ISO week (UTC)")
    people = PersonWeeksSerializer(many=True)


_DATES = [
    OpenApiParameter("person", OpenApiTypes.STR, description="The opener's username"),
    OpenApiParameter("since", OpenApiTypes.DATE, description="From this day (UTC), inclusive"),
    OpenApiParameter("until", OpenApiTypes.DATE, description="To this day (UTC), inclusive"),
]
_FILTERS = [
    *_DATES,
    OpenApiParameter("account", OpenApiTypes.STR, description="The platform account id"),
    OpenApiParameter("case", OpenApiTypes.INT, description="The case number"),
    OpenApiParameter("before", OpenApiTypes.INT, description="Openings older than this event id (the `next` link)"),
]


def _valid(form):
    if not form.is_valid():
        raise ValidationError({field: [str(e) for e in errors] for field, errors in form.errors.items()})
    return form


class _Openings(APIView):
    permission_classes = [IsAuthenticated, ConsolePermission]
    outside_only = False

    def get(self, request):
        form = _valid(AccessFilterForm(request.query_params))
        page = openings_page(form.filters(outside_only=self.outside_only), before=form.cleaned_data["before"])
        next_url = None
        if page.next_before is not None:
            query = {k: v for k, v in request.query_params.items() if k != "before"}
            next_url = request.build_absolute_uri(f"{request.path}?{urlencode({**query, 'before': page.next_before})}")
        return Response({"results": OpeningSerializer(page.openings, many=True).data, "next": next_url,
                         "own_rule": OWN_RULE})


class EvidenceAccessView(_Openings):
    @extend_schema(tags=TAGS, parameters=_FILTERS, responses={200: OpeningPageSerializer},
                   summary="Who opened which account's raw evidence, when, in which case and role (newest first)")
    def get(self, request):
        return super().get(request)


class EvidenceAccessOutsideView(_Openings):
    outside_only = True

    @extend_schema(tags=TAGS, parameters=_FILTERS, responses={200: OpeningPageSerializer},
                   summary="Openings of raw evidence outside the opener's own assigned cases (see own_rule)")
    def get(self, request):
        return super().get(request)


class EvidenceAccessWeeklyView(APIView):
    permission_classes = [IsAuthenticated, ConsolePermission]

    @extend_schema(tags=TAGS, parameters=_DATES, responses={200: WeeklySerializer},
                   summary="Openings of raw evidence per person per ISO week (default: the last 12 weeks)")
    def get(self, request):
        form = _valid(WeeklyForm(request.query_params))
        data = weekly_counts(since=form.cleaned_data["since"], until=form.cleaned_data["until"],
                             person=form.person_pk())
        return Response(WeeklySerializer(data).data)
