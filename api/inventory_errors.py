"""Inventory edit refusals as problem details: 404 outside/unknown, 409 taken or in use,
422 a tree that would be broken (every problem listed)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException

from watchkeeper.assets import InventoryError
from watchkeeper.store import inventory_edit as edit


@contextmanager
def edit_errors() -> Iterator[None]:
    try:
        yield
    except edit.NotVisible as exc:
        raise HTTPException(404, str(exc.args[0])) from None
    except (edit.Conflict, edit.InUse) as exc:
        raise HTTPException(409, str(exc)) from None
    except InventoryError as exc:
        raise HTTPException(422, [{"type": "value_error", "loc": ["body", "inventory"],
                                   "msg": message, "input": None}
                                  for message in exc.errors]) from None
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
