"""The one rule for something a test needs from the machine (a service, root, a tool): in CI
and `make test` its absence fails the test; on a developer's machine it skips, saying why."""
from __future__ import annotations

import os

import pytest


def required() -> bool:
    return os.environ.get("CI", "").lower() == "true" or \
        bool(os.environ.get("WATCHKEEPER_REQUIRE_SERVICES"))


def unavailable(why: str) -> None:
    """Fail under CI / WATCHKEEPER_REQUIRE_SERVICES, else skip (never returns)."""
    (pytest.fail if required() else pytest.skip)(why)
