"""Typed dependency aliases shared by the routers (FastAPI-template style)."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from watchkeeper.store.base import Store


def get_store(request: Request) -> Store:
    """The store `create_app` was given; handlers reach data only through it."""
    return request.app.state.store


def get_current_actor() -> str:
    """Who is acting on the API. Authentication replaces this body; routes stay unchanged."""
    return "anonymous"


StoreDep = Annotated[Store, Depends(get_store)]
CurrentActor = Annotated[str, Depends(get_current_actor)]
