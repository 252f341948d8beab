"""The retention report as JSON (/api/v1/compliance/retention/): what the next purge would remove, and the last
runs, behind the console permission. GET only: the purge is beat's (compliance officers change nothing)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from reviewapp.compliance.home import CONSOLE_PERMISSION

from .models import PurgeRun
from .selectors import purge_report, runs_newest_first
from .views import RUNS_SHOWN


class ReadsConsole(BasePermission):
    message = "Only compliance officers read the retention report."

    def has_permission(self, request, view) -> bool:
        return request.user.has_perm(CONSOLE_PERMISSION)


class RetentionGroupSerializer(serializers.Serializer):
    cases = serializers.IntegerField()
    flags = serializers.IntegerField()
    excerpts = serializers.IntegerField()
    oldest_due = serializers.DateTimeField(allow_null=True, help_text="When the oldest of it fell due")


class RetentionEmailsSerializer(serializers.Serializer):
    messages = serializers.IntegerField()
    oldest_delivered = serializers.DateTimeField(allow_null=True)


class RetentionTotalsSerializer(serializers.Serializer):
    cases = serializers.IntegerField()
    flags = serializers.IntegerField()
    excerpts = serializers.IntegerField()
    emails = serializers.IntegerField()


class RetentionCountsSerializer(serializers.Serializer):
    evidence = serializers.DictField(child=RetentionGroupSerializer(), help_text=(
        "Per group: a clause reference (evidence of cases decided under it), 'closed without a decision' or "
        "'set aside before grouping'"))
    emails = RetentionEmailsSerializer()
    totals = RetentionTotalsSerializer()


class PurgeRunSerializer(serializers.ModelSerializer):
    counts = RetentionCountsSerializer()

    class Meta:
        model = PurgeRun
        fields = ["id", "key", "source", "dry_run", "started_at", "finished_at", "as_of", "batch_size", "batches",
                  "counts"]


class RetentionReportSerializer(serializers.Serializer):
    as_of = serializers.DateTimeField()
    next_purge = RetentionCountsSerializer(help_text="What a purge now would remove (the dry run, not stored)")
    runs = PurgeRunSerializer(many=True, help_text=f"The last {RUNS_SHOWN} runs, newest first")


class RetentionReportView(APIView):
    permission_classes = [IsAuthenticated, ReadsConsole]

    @extend_schema(tags=["compliance"], responses={200: RetentionReportSerializer},
                   summary="Retention: what the next purge would remove, and the last purge runs")
    def get(self, request):
        now = timezone.now()
        return Response(RetentionReportSerializer({
            "as_of": now, "next_purge": purge_report(now=now), "runs": list(runs_newest_first()[:RUNS_SHOWN]),
        }).data)
