"""The case API as staff read it: reviewapp.cases' case answers plus what only flags know, each case's most
recent flags and the ``detector`` filter. Composed here, above cases (DESIGN.md: dependencies run one way;
cases never read the flags table), and routed from flags/urls.py.
"""

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers

from reviewapp.cases import api as case_api
from reviewapp.cases.vocabulary import Signal

from .selectors import cases_with_flag_from_detector, flags_of_case
from .withdrawals import ref_of, withdrawals_of

RECENT_FLAGS = 200


class FlagSummarySerializer(serializers.Serializer):
    """A flag as staff see it in a case: what, who detected it, when. No raw evidence."""

    id = serializers.IntegerField()
    external_id = serializers.CharField()
    detector = serializers.CharField(source="detector.slug")
    detector_version = serializers.CharField()
    signal = serializers.ChoiceField(choices=Signal.choices)
    score = serializers.FloatField()
    observed_from = serializers.DateTimeField()
    observed_to = serializers.DateTimeField()
    request_count = serializers.IntegerField(allow_null=True)
    cluster_id = serializers.CharField()
    received_at = serializers.DateTimeField()
    has_evidence = serializers.SerializerMethodField()
    withdrawn = serializers.SerializerMethodField(
        help_text='null, or why its source withdrew it: "withdrawn by the source (peer revoked object X at T)".')

    def get_has_evidence(self, flag) -> bool:
        return flag.has_evidence  # annotated by the selector: the evidence itself is never loaded here

    def get_withdrawn(self, flag) -> str | None:
        withdrawal = self.context.get("withdrawals", {}).get(flag.pk)
        return str(withdrawal) if withdrawal else None


class CaseDetailSerializer(case_api.CaseSerializer):
    flags = serializers.SerializerMethodField(help_text=f"The {RECENT_FLAGS} most recent flags.")

    class Meta(case_api.CaseSerializer.Meta):
        fields = [*case_api.CaseSerializer.Meta.fields, "flags"]

    @extend_schema(responses=FlagSummarySerializer(many=True))
    def get_flags(self, case) -> list[dict]:
        flags = list(flags_of_case(case, RECENT_FLAGS))
        withdrawals = withdrawals_of(ref_of(flag) for flag in flags)  # one provider call for the whole list
        return FlagSummarySerializer(flags, many=True, context={"withdrawals": withdrawals}).data


class CaseFilter(case_api.CaseFilter):
    detector = django_filters.CharFilter(method="filter_detector", help_text="detector slug of any of its flags")

    def filter_detector(self, queryset, name, value):
        return cases_with_flag_from_detector(queryset, value)


@extend_schema_view(
    list=extend_schema(tags=["cases"], summary="List cases (newest first, cursor-paginated)"),
    retrieve=extend_schema(tags=["cases"], summary="One case with its most recent flags"),
)
class CaseViewSet(case_api.CaseViewSet):
    """Case summaries for staff whose role reads cases. Raw evidence is never part of these answers."""

    filterset_class = CaseFilter
    detail_serializer_class = CaseDetailSerializer
