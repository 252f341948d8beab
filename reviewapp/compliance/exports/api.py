"""The exports on the API, for compliance tooling without a browser: /api/v1/compliance/exports/ lists the datasets,
their columns and download URLs; /api/v1/compliance/exports/<dataset>.<csv|jsonl>?from=&to= streams one, the same
response as the console's download (``views.export_response``: audited before the first row, X-Export-Rows).

Behind the console permission, with a session or a staff API token (``Authorization: Token …``). A request with
no credentials is answered 401 with ``WWW-Authenticate: Token`` (not DRF's 403 for session APIs): a script that
forgot its token is told which credential to send. The download's media type is the URL's, whatever ``Accept``
says (``IgnoreAccept``): a client that sends ``Accept: application/json`` by habit still gets its CSV, not a 406.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from reviewapp.compliance.home import CONSOLE_PERMISSION
from reviewapp.people.auth import REALM

from .formats import MEDIA_TYPES
from .forms import DEFAULT_DAYS, ExportRangeForm
from .selectors import DATASETS, FORMATS, KIND_HELP, Column, Dataset
from .views import export_response

TAGS = ["compliance"]


class ReadsConsole(BasePermission):
    message = "Only compliance officers export."

    def has_permission(self, request, view) -> bool:
        return request.user.has_perm(CONSOLE_PERMISSION)


class IgnoreAccept(BaseContentNegotiation):
    """The first renderer (JSON, for refusals) whatever ``Accept`` says: a download's media type is its URL's."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ExportsApiView(APIView):
    permission_classes = [IsAuthenticated, ReadsConsole]

    def get_authenticate_header(self, request) -> str:
        return REALM  # no credentials: 401 asking for a token, as a refused token is


def _column_line(column: Column) -> str:
    return f"- `{column.name}`: {column.kind_help}" + (f". {column.help}" if column.help else "")


def columns_markdown(dataset: Dataset) -> str:
    return "\n".join(_column_line(column) for column in dataset.columns)


_RANGE = [
    OpenApiParameter("from", OpenApiTypes.DATE, description=f"The first UTC date included, YYYY-MM-DD; by default "
                                                            f"{DEFAULT_DAYS - 1} days before `to`"),
    OpenApiParameter("to", OpenApiTypes.DATE, description="The last UTC date included, YYYY-MM-DD (the range ends "
                                                          "at 24:00 UTC that day); by default today"),
]
_NO_CREDENTIALS = OpenApiResponse(description="No credentials (WWW-Authenticate: Token), or a staff API token was "
                                              "refused: unknown, revoked, expired, or its person is deactivated or "
                                              "holds a one-time password.")
_FORMAT_TEXT = {"csv": "CSV: a header row of the column names, then one RFC 4180 row per record; an empty cell is "
                       "null; a text cell starting with =, +, -, @, tab or CR is prefixed with an apostrophe (a "
                       "spreadsheet would run it as a formula)",
                "jsonl": "JSONL: one JSON object per line, keys in column order, null for no value, text exactly "
                         "as stored"}
_ROWS_HEADER = OpenApiParameter("X-Export-Rows", OpenApiTypes.INT, location=OpenApiParameter.HEADER, response=[200],
                                description="Rows in the export, counted as it started (the audit event's count)")


class ExportDownloadView(ExportsApiView):
    """One export; ``download_view`` makes a subclass per dataset and format, each its own operation."""

    content_negotiation_class = IgnoreAccept
    dataset: Dataset | None = None
    fmt = ""

    def download(self, request):
        form = ExportRangeForm(request.query_params)
        if not form.is_valid():
            raise ValidationError(form.errors_by_field())
        return export_response(actor=request.user, dataset=self.dataset, fmt=self.fmt, export_range=form.range)


def download_view(dataset: Dataset, fmt: str):
    media_type = MEDIA_TYPES[fmt].split(";")[0]

    @extend_schema(
        operation_id=f"compliance_export_{dataset.slug}_{fmt}", tags=TAGS, parameters=[*_RANGE, _ROWS_HEADER],
        summary=f"Export {dataset.title.lower()} as {fmt.upper()} (streamed; audited)",
        description=(f"{dataset.description}\n\nRows with {dataset.time_label} time (`{dataset.time_field}`) in "
                     f"the range, ordered by it then id. {_FORMAT_TEXT[fmt]}. The response streams in constant "
                     "memory; `X-Export-Rows` is the row count when it started, which the `compliance.exported` "
                     "audit event (committed before the first row) records. The media type is this URL's "
                     f"whatever `Accept` says.\n\nColumns:\n\n{columns_markdown(dataset)}"),
        responses={(200, media_type): OpenApiResponse(OpenApiTypes.STR, description=f"The {fmt.upper()} export"),
                   401: _NO_CREDENTIALS},
    )
    def get(self, request):
        return self.download(request)

    name = f"{dataset.slug.title()}{fmt.title()}ExportView"
    return type(name, (ExportDownloadView,), {"get": get, "dataset": dataset, "fmt": fmt,
                                              "__module__": __name__}).as_view()


# ── the index ──────────────────────────────────────────────────────────────────────────────────────────────────

class ExportColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=sorted(KIND_HELP), help_text="How the value is written: "
                                   + "; ".join(f"{kind}: {text}" for kind, text in KIND_HELP.items()))
    help = serializers.CharField(allow_blank=True)


class ExportFormatSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=FORMATS)
    media_type = serializers.CharField()
    url = serializers.URLField(help_text="Add ?from=YYYY-MM-DD&to=YYYY-MM-DD (UTC dates, inclusive)")


class ExportDatasetSerializer(serializers.Serializer):
    slug = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    time_field = serializers.CharField(help_text="The timestamp the date range bounds")
    columns = ExportColumnSerializer(many=True)
    formats = ExportFormatSerializer(many=True)


class ExportIndexSerializer(serializers.Serializer):
    default_days = serializers.IntegerField(help_text="The range when neither from nor to is given, ending today")
    datasets = ExportDatasetSerializer(many=True)


class ExportIndexView(ExportsApiView):
    @extend_schema(tags=TAGS, responses={200: ExportIndexSerializer, 401: _NO_CREDENTIALS},
                   summary="The exports: each dataset's columns and its CSV and JSONL download URLs")
    def get(self, request):
        datasets = [
            {"slug": dataset.slug, "title": dataset.title, "description": dataset.description,
             "time_field": dataset.time_field,
             "columns": [{"name": c.name, "kind": c.kind, "help": c.help} for c in dataset.columns],
             "formats": [{"format": fmt, "media_type": MEDIA_TYPES[fmt],
                          "url": reverse(f"export-api-{dataset.slug}-{fmt}", request=request)} for fmt in FORMATS]}
            for dataset in DATASETS.values()
        ]
        return Response(ExportIndexSerializer({"default_days": DEFAULT_DAYS, "datasets": datasets}).data)
