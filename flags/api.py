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
        body = _body(request._request, limit)
        if body is None:
            return Response({"detail": f"The body is larger than {limit} bytes; split the batch."},
                            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        try:
            items = split_body(body)
        except BodyError as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        result = flags_ingest(items=enumerate(items), detector=request.user.detector, actor=request.user.actor)
        return Response(result.as_dict(), status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


READ_CHUNK = 1024 * 1024


def _body(request, limit: int) -> bytes | None:
    """The raw body, or None when it is over ``limit`` bytes (Django's form-size limit is for forms).

    A detector that streams its body sends ``Transfer-Encoding: chunked`` and no Content-Length: gunicorn
    de-chunks it, but Django reads only CONTENT_LENGTH bytes (none), so such a body is read from the WSGI
    stream until its end, the limit enforced as it arrives.
    """
    declared = request.META.get("CONTENT_LENGTH")
    if declared or "chunked" not in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        if int(declared or 0) > limit:
            return None
        body = request.read(limit + 1)
        return None if len(body) > limit else body
    stream, parts, size = request.META["wsgi.input"], [], 0
    while size <= limit:
        part = stream.read(min(READ_CHUNK, limit + 1 - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return None if size > limit else b"".join(parts)
