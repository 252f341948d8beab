"""What the OpenAPI schema says beyond what drf-spectacular infers: every refusal an operation can answer, and
text fields as the serializers judge them. (A response not in the schema is a client surprise; schemathesis
checks both, tests/api/test_schemathesis.py.)"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers

from reviewapp.cases.api_errors import NO_NUL, NOT_BLANK
from reviewapp.people.openapi import StaffTokenScheme


class AutoSchema(SpectacularAutoSchema):
    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction == "request" and type(field) in TEXT_FIELDS and field.allow_blank and field.min_length:
            # allow_blank with min_length: blank gets past the serializer only to be refused by the service,
            # so the schema does not offer the blank alternative drf-spectacular adds (oneOf …, maxLength 0).
            options = schema.pop("oneOf", None)
            if options:
                schema.update(options[0])
        if direction == "request" and type(field) in TEXT_FIELDS and schema.get("type") == "string":
            # DRF refuses NUL characters; a field that is not allow_blank, or whose service refuses blank text
            # (min_length=1 with allow_blank=True keeps the service's own message), refuses whitespace too.
            if not field.allow_blank or field.min_length:
                schema["minLength"] = max(1, schema.get("minLength", 0))
                schema["pattern"] = NOT_BLANK if field.trim_whitespace else r"^[^\x00]*[^\x00][^\x00]*$"
            else:
                schema["pattern"] = NO_NUL
        return schema


TEXT_FIELDS = {serializers.CharField}

ERROR = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"],
         "description": "What went wrong, written for the caller."}
INVALID = {"type": "object", "additionalProperties": {},
           "description": 'Each refused field (or query parameter) with its messages, or {"detail": "…"} for a '
                          "refusal of the request as a whole."}

SESSION_SCHEMES = {"cookieAuth", "holderSession"}
STATEFUL_PREFIXES = ("/api/v1/cases/", "/api/v1/appeals/", "/api/v1/queues/", "/api/v1/holder/appeals/")
DESCRIPTIONS = {
    "400": "The body or a query parameter was refused, or the service refused the request; the answer says why.",
    "403": "Not signed in (a session API answers 403, not 401), no CSRF token on an unsafe method, or your role "
           "or your part in the case may not do this.",
    "401": "A staff API token was refused: unknown, revoked, expired, or its person is deactivated or holds a "
           "one-time password (WWW-Authenticate: Token).",
    "404": "No such object, or none you may see (a list: the cursor is not one we gave).",
    "409": "Conflicts with the object as it stands (claimed by someone else, already decided).",
    "413": "The body is larger than the limit (DATA_UPLOAD_MAX_MEMORY_SIZE; the flags API: FLAGS_MAX_BODY_BYTES); "
           "the answer names it.",
    "415": "The body is not in a media type this operation reads.",
    "429": "Too many refused staff API tokens from this address (API_TOKEN_FAILURE_RATE_LIMIT); try again later.",
}


def document_refusals(result, generator, request, public):
    """drf-spectacular postprocessing hook: add the refusals each operation can answer, each with a body."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR)
    schemas.setdefault("Invalid", INVALID)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            schemes = {name for requirement in operation.get("security", []) for name in requirement}
            wanted = set()
            if schemes & SESSION_SCHEMES:
                wanted.add("403")
            if StaffTokenScheme.name in schemes:  # reviewapp/people/auth.py
                wanted.update({"401", "429"})
            if "{" in path or any(p.get("name") == "cursor" for p in operation.get("parameters", [])):
                wanted.add("404")
            if any(p.get("in") == "query" for p in operation.get("parameters", [])) or method != "get":
                wanted.add("400")
            if operation.get("requestBody"):
                wanted.update({"413", "415"})
            if method == "post" and path.startswith(STATEFUL_PREFIXES):
                wanted.add("409")
            for code in sorted(wanted):
                responses.setdefault(code, {"description": DESCRIPTIONS[code]})
            for code, response in responses.items():
                if code.startswith(("4", "5")) and "content" not in response:
                    body = "Invalid" if code == "400" else "Error"
                    response["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}
    return result
