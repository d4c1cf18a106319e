"""The OpenAPI document: bearer security, documented schemas, and the error responses of each route."""

from __future__ import annotations

from typing import Any

from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme, Tag
from litestar.typing import FieldDefinition
# Litestar's own msgspec schema plugin (not exported); tests/integration/api/test_openapi.py fails if it moves.
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin

from api.http.errors import ErrorBody

BEARER = "bearer"
SECURITY: list[dict[str, list[str]]] = [{BEARER: []}]

_DESCRIPTIONS = {
    400: "The request is malformed (code bad_request).",
    401: "No valid API token was sent (code unauthenticated).",
    403: "The token's role does not allow this (code forbidden).",
    404: "No such resource in the caller's tenant (code not_found).",
    409: "The change collides with stored state: a taken name (conflict) or a state that does not allow it "
    "(invalid_transition).",
    422: "A field is invalid; details name each one (code validation_failed).",
    500: "An unexpected error; the server log has the details (code internal).",
    503: "The database is unavailable; retry shortly (code unavailable).",
}

_ALWAYS = (400, 401, 403, 422, 500, 503)


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The error responses of a ``/v1`` route: those every route may give, plus ``statuses``."""
    return {
        status: ResponseSpec(data_container=ErrorBody, description=_DESCRIPTIONS[status], generate_examples=False)
        for status in sorted({*_ALWAYS, *statuses})
    }


class DocumentedStructs(StructSchemaPlugin):
    """Litestar's msgspec schemas, with each Struct's docstring as its description and the tag
    field of a tagged union described."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Any:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        struct = field_definition.type_
        doc = struct.__dict__.get("__doc__")
        if doc:
            schema.description = " ".join(doc.split())
        tag_field = struct.__struct_config__.tag_field
        if tag_field and schema.properties and tag_field in schema.properties:
            schema.properties[tag_field].description = f"Always {struct.__struct_config__.tag!r} for this kind."
        return schema


def openapi_config(version: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Ostinato",
        version=version,
        description=(
            "Jobs and endpoints on schedules, workflows of steps, and a record of every run and event. "
            "Every route under /v1 needs "
            "`Authorization: Bearer <token>`; a token belongs to one tenant and has a role "
            "(viewer, operator or admin). Errors are `{\"error\": {\"code\", \"message\", \"details\"}}`."
        ),
        path="/schema",
        components=Components(
            security_schemes={
                BEARER: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="An API token from `ostinato tokens create` or POST /v1/tokens.",
                )
            }
        ),
        tags=[
            Tag(name="jobs", description="Named groups of endpoints."),
            Tag(name="endpoints", description="Things to run on a schedule, with bounds and hints."),
            Tag(name="runs", description="The record of every execution attempt."),
            Tag(name="workflows", description="Versioned DAGs of steps, their plans and their runs."),
            Tag(name="events", description="Published events; a topic may start workflows."),
            Tag(name="audit", description="Who changed what, and when."),
            Tag(name="tokens", description="API tokens of the caller's tenant (admin)."),
            Tag(name="health", description="Liveness and readiness probes (no token needed)."),
        ],
        use_handler_docstrings=True,
    )
