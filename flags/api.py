from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from . import openapi
from .auth import DetectorTokenAuthentication, IsDetector
from .schema import BodyError, split_body
from .services import flags_ingest


class FlagIngestView(APIView):
    authentication_classes = [DetectorTokenAuthentication]
    permission_classes = [IsDetector]
    parser_classes = []  # the body is read raw and validated by msgspec (flags.schema)

    @extend_schema(
        operation_id="flags_create", tags=["flags"], summary="Post detector flags (one or a batch)",
        description=openapi.DESCRIPTION,
        request={"application/json": {"oneOf": [openapi.FLAG_REF, openapi.FLAG_BATCH]}},
        responses=openapi.RESPONSES, examples=openapi.EXAMPLES,
    )
    def post(self, request):
        if request.content_type.split(";")[0].strip() != "application/json":
            return Response({"detail": "Send the flags as application/json."},
                            status=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE)
        limit = settings.FLAGS_MAX_BODY_BYTES
        if int(request.META.get("CONTENT_LENGTH") or 0) > limit:
            return Response({"detail": f"The body is larger than {limit} bytes; split the batch."},
                            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        body = request._request.read(limit + 1)  # raw bytes; Django's form-size limit is for forms
        if len(body) > limit:
            return Response({"detail": f"The body is larger than {limit} bytes; split the batch."},
                            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        try:
            items = split_body(body)
        except BodyError as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        result = flags_ingest(items=enumerate(items), detector=request.user.detector, actor=request.user.actor)
        return Response(result.as_dict(), status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)
