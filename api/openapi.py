"""The OpenAPI document says what the errors look like: RFC 9457 problems on every route."""
from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.schemas.common import FieldError, Problem

# Every guarded route may answer these; routes add their own (409, 429) in `responses=`.
COMMON = (400, 401, 403, 404, 422, 503)
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def install_openapi(app: FastAPI) -> None:
    def build() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(title=app.title, version=app.version, description=app.description,
                           routes=app.routes)
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas["Problem"].pop("$defs", None)
        schemas["FieldError"] = FieldError.model_json_schema()
        for path, operations in spec.get("paths", {}).items():
            for operation in operations.values():
                _document_problems(operation, guarded=path != "/health")
        app.openapi_schema = spec
        return spec
    app.openapi = build


def _document_problems(operation: dict, guarded: bool) -> None:
    responses = operation.setdefault("responses", {})
    codes = {int(c) for c in responses if c.isdigit() and int(c) >= 400}
    if guarded:
        codes |= set(COMMON)
    for code in sorted(codes):
        entry = responses.setdefault(str(code), {})
        if code == 503 and not guarded:
            continue                      # /health's 503 is its own JSON body
        entry["description"] = entry.get("description") or HTTPStatus(code).phrase
        if entry["description"] == "Validation Error":
            entry["description"] = "A field is wrong: `errors` names each"
        entry["content"] = PROBLEM
