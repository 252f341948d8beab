import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAuthenticated

from .models import Case
from .selectors import cases_visible_to, recent_flags_of, with_flag_from_detector
from .vocabulary import Queue, Signal

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

    def get_has_evidence(self, flag) -> bool:
        return flag.evidence is not None


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


class CaseDetailSerializer(CaseSerializer):
    flags = serializers.SerializerMethodField(help_text=f"The {RECENT_FLAGS} most recent flags.")

    class Meta(CaseSerializer.Meta):
        fields = [*CaseSerializer.Meta.fields, "flags"]

    @extend_schema(responses=FlagSummarySerializer(many=True))
    def get_flags(self, case) -> list[dict]:
        return FlagSummarySerializer(recent_flags_of(case, RECENT_FLAGS), many=True).data


class CaseFilter(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=Case.State.choices)
    queue = django_filters.ChoiceFilter(choices=Queue.choices)
    priority_min = django_filters.NumberFilter(field_name="priority", lookup_expr="gte")
    priority_max = django_filters.NumberFilter(field_name="priority", lookup_expr="lte")
    account = django_filters.CharFilter(field_name="account__external_id", help_text="platform account id")
    campaign = django_filters.CharFilter(field_name="campaign__key", help_text="campaign key (detector:cluster)")
    signal = django_filters.ChoiceFilter(choices=Signal.choices, method="filter_signal")
    detector = django_filters.CharFilter(method="filter_detector", help_text="detector slug of any of its flags")
    opened_after = django_filters.IsoDateTimeFilter(field_name="opened_at", lookup_expr="gte")
    opened_before = django_filters.IsoDateTimeFilter(field_name="opened_at", lookup_expr="lt")
    observed_after = django_filters.IsoDateTimeFilter(field_name="last_observed_at", lookup_expr="gte")

    class Meta:
        model = Case
        fields = []

    def filter_signal(self, queryset, name, value):
        return queryset.filter(signals__contains=[value])

    def filter_detector(self, queryset, name, value):
        return with_flag_from_detector(queryset, value)


class CaseCursor(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "-id"  # unique and stable: a page never skips or repeats a case as new ones arrive


@extend_schema_view(
    list=extend_schema(tags=["cases"], summary="List cases (newest first, cursor-paginated)"),
    retrieve=extend_schema(tags=["cases"], summary="One case with its most recent flags"),
)
class CaseViewSet(viewsets.ReadOnlyModelViewSet):
    """Case summaries for staff whose role reads cases. Raw evidence is never part of these answers."""

    permission_classes = [IsAuthenticated]
    filterset_class = CaseFilter
    pagination_class = CaseCursor

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Case.objects.none()
        return cases_visible_to(self.request.user)

    def get_serializer_class(self):
        return CaseDetailSerializer if self.action == "retrieve" else CaseSerializer
