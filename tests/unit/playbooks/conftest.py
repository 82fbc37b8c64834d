"""The playbook tests' store: SQLite in the test's folder. The shared helpers (receiver,
alerts, runs, engine) are in tests/playbooks_support.py; the `receiver` fixture in
tests/conftest.py."""
from __future__ import annotations

import pytest

from tests.playbooks_support import (T0, Clock, Receiver, engine_for,  # noqa: F401 (re-exported)
                                     make_alert, write_playbook)
from watchkeeper.store.sqlite import SqliteStore


@pytest.fixture
def store(tmp_path):
    made = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
    yield made
    made.close()
