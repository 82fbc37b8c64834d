"""Store failures as HTTP answers: bad input -> 400, unreachable or failing store -> 503."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from watchkeeper.store.base import StoreError


@contextmanager
def store_errors() -> Iterator[None]:
    """Wrap a store call: the store raises ValueError for input it refuses (filter, cursor)."""
    try:
        yield
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=503, content={"detail": f"store unavailable: {exc}"})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StoreError, _store_error)
