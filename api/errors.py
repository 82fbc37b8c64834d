"""Errors as RFC 9457 problem details (application/problem+json), never a bare 500.

400 bad input the store refuses, 401 no or bad credentials, 403 a role that may not, 404 not
found (also: outside your site subtree), 422 field-level validation (`errors`), 503 store down.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from watchkeeper.store.base import StoreError

log = logging.getLogger("watchkeeper.api")
MEDIA_TYPE = "application/problem+json"


@contextmanager
def store_errors() -> Iterator[None]:
    """Wrap a store call: the store raises ValueError for input it refuses (filter, cursor)."""
    try:
        yield
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


def problem(request: Request, status: int, detail: str, errors: list | None = None,
            headers: dict | None = None) -> JSONResponse:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
            "detail": detail, "instance": request.url.path}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def field_errors(raw: list) -> list[dict]:
    """Pydantic's errors as {field, message, type}: `field` is the dotted location."""
    return [{"field": ".".join(str(p) for p in err.get("loc", ())),
             "message": str(err.get("msg", "")), "type": str(err.get("type", "")),
             **({"input": _shown(err["input"])} if "input" in err else {})}
            for err in raw]


def _shown(value: object) -> object:
    """The refused input, echoed if small (a 5000-character cursor is not worth repeating)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("utf-8", "replace").decode("utf-8")   # a lone surrogate: shown as ?
    return text if len(text) <= 200 else text[:200] + "…"


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if isinstance(exc.detail, list):      # a handler's own field-level refusal (TimeRange)
        errors = field_errors(exc.detail)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(request, exc.status_code, detail, errors, exc.headers)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem(request, exc.status_code, detail, headers=getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = field_errors(exc.errors())
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(request, 422, detail, errors)


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    return problem(request, 503, f"store unavailable: {exc}")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(request, 500, f"internal error ({type(exc).__name__}); it was logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(Exception, _unexpected)
