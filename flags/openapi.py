"""OpenAPI for the flag contract, generated from the msgspec schema itself (one definition, no drift)."""

from __future__ import annotations

import msgspec
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse

from reviewapp.cases.vocabulary import describe

from .schema import (
    MAX_EVIDENCE_BYTES,
    MAX_EVIDENCE_DEPTH,
    MAX_EXCERPT_CHARS,
    MAX_EXCERPTS,
    MAX_FLAGS_PER_REQUEST,
    MAX_REQUEST_COUNT,
    OBSERVED_MAX,
    OBSERVED_MIN,
    FlagV1,
)

FLAG_REF = {"$ref": "#/components/schemas/FlagV1"}

FLAG_BATCH = {
    "type": "object",
    "properties": {"flags": {"type": "array", "items": FLAG_REF, "minItems": 1, "maxItems": MAX_FLAGS_PER_REQUEST}},
    "required": ["flags"],
    "additionalProperties": False,
}

INGEST_ANSWER = {
    "type": "object",
    "properties": {
        "batch_id": {
            "type": "integer",
            "nullable": True,
            "description": "Receipt of this call (null if nothing valid).",
        },
        "created": {"type": "integer"},
        "duplicates": {
            "type": "integer",
            "description": "Items whose (detector, external_id) was already stored "
            "or appeared earlier in this batch; includes the conflicts.",
        },
        "conflicts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "external_id": {"type": "string"},
                    "note": {"type": "string"},
                },
            },
            "description": "Duplicates whose content differs from the stored flag (which is never overwritten).",
        },
        "rejected": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "external_id": {"type": "string", "nullable": True},
                    "errors": {
                        "type": "object",
                        "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    },
}

DESCRIPTION = f"""
Post one flag object, or a batch `{{"flags": [...]}}` of at most {MAX_FLAGS_PER_REQUEST} (more: **413**).

Authenticate with `Authorization: Bearer <detector token>` (`manage.py detector_token SLUG`); every flag's
`detector` must be the token's detector. A staff session cannot post flags.

Each item is validated on its own: good items are stored even when others are rejected, and each rejection
names its `index`, `external_id` and `errors` per field (every field that is wrong, not only the first).
`(detector, external_id)` is unique: a replay creates nothing and counts `duplicates`; a same-id flag with
different content is a duplicate listed under `conflicts`, never an overwrite. The answer is **201** when
anything was created, else **200**. A body that is not JSON or not an object is **400** with a message
naming the problem; a body that is not `application/json` is **415**.

Rules beyond the types: `score` in [0, 1]; `observed_from` ≤ `observed_to` (RFC 3339 with a time zone), both
from {OBSERVED_MIN:%Y-%m-%d} up to (not including) {OBSERVED_MAX:%Y-%m-%d} UTC once their offset is applied;
`request_count` at most {MAX_REQUEST_COUNT:,}; `evidence` a JSON object of at most {MAX_EVIDENCE_BYTES // 1024} KB,
nested at most {MAX_EVIDENCE_DEPTH} levels deep; `evidence.excerpts` at most {MAX_EXCERPTS}
strings of at most {MAX_EXCERPT_CHARS} characters. Unknown fields are rejected.

Signals (`signal`):

{describe()}
"""

EXAMPLE_FLAG = {
    "external_id": "tmpl-2026-11-26-000042",
    "detector": "template-miner",
    "detector_version": "3.2.0",
    "account_id": "acct_7f3a9c",
    "organization_id": "org_51d2",
    "signal": "templated_prompts",
    "score": 0.93,
    "observed_from": "2026-11-25T00:00:00Z",
    "observed_to": "2026-11-26T00:00:00Z",
    "request_count": 48211,
    "cluster_id": "c-0192",
    "evidence": {
        "template_simhash64": "9f3c0a77e41b2d10",
        "slot_count": 3,
        "excerpts": ["Solve step by step and show all reasoning: {problem}"],
    },
}

EXAMPLES = [
    OpenApiExample("One flag", value=EXAMPLE_FLAG, request_only=True),
    OpenApiExample(
        "A batch",
        value={
            "flags": [
                EXAMPLE_FLAG,
                {**EXAMPLE_FLAG, "external_id": "tmpl-2026-11-26-000043", "account_id": "acct_11b0e2"},
            ]
        },
        request_only=True,
    ),
    OpenApiExample(
        "Mixed answer",
        response_only=True,
        status_codes=["201"],
        value={
            "batch_id": 812,
            "created": 1,
            "duplicates": 1,
            "conflicts": [
                {
                    "index": 1,
                    "external_id": "tmpl-2026-11-26-000041",
                    "note": "same external_id as a flag stored earlier but different content; "
                    "the earlier flag is kept unchanged",
                }
            ],
            "rejected": [
                {"index": 2, "external_id": "tmpl-2026-11-26-000044", "errors": {"score": ["Expected 'float' <= 1.0"]}}
            ],
        },
    ),
]

RESPONSES = {
    201: OpenApiResponse(INGEST_ANSWER, description="At least one flag was created."),
    200: OpenApiResponse(INGEST_ANSWER, description="Nothing new (all duplicates or rejected)."),
    400: OpenApiResponse(description='Not JSON, or not one flag / {"flags": [...]}; the message says which.'),
    401: OpenApiResponse(description="No token, an unknown token, or a revoked one."),
    413: OpenApiResponse(
        description="More flags, or more bytes, than one request may carry; the message says the limit."
    ),
    415: OpenApiResponse(description="The body is not application/json."),
}


def add_flag_components(result, generator, request, public):
    """drf-spectacular postprocessing hook: put the msgspec-generated FlagV1 schema into components."""
    (_,), components = msgspec.json.schema_components([FlagV1], ref_template="#/components/schemas/{name}")
    result.setdefault("components", {}).setdefault("schemas", {}).update(_openapi30(components))
    ingest = result.get("paths", {}).get("/api/v1/flags/", {}).get("post")
    if ingest and "requestBody" in ingest:
        ingest["requestBody"]["required"] = True  # no body is no flag: 415 without a JSON content type, else 400
    return result


def _openapi30(node):
    """msgspec writes JSON Schema 2020-12 (`anyOf: [X, {type: null}]`); OpenAPI 3.0 spells it `nullable`."""
    if isinstance(node, list):
        return [_openapi30(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _openapi30(value) for key, value in node.items()}
    options = node.get("anyOf")
    if options and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        node.pop("anyOf")
        node.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
        node["nullable"] = True
    return node


class DetectorTokenScheme(OpenApiAuthenticationExtension):
    target_class = "flags.auth.DetectorTokenAuthentication"
    name = "detectorToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A detector token from `manage.py detector_token SLUG` (shown once, stored hashed).",
        }
