"""Shared fixtures: the real services, and the rule that CI never skips them."""
from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlparse

import pytest

KAFKA_URL = os.environ.get("WATCHKEEPER_TEST_KAFKA", "kafka://127.0.0.1:9092")
ES_URL = os.environ.get("WATCHKEEPER_TEST_ES", "http://127.0.0.1:9200")


def _reachable(url: str) -> bool:
    first = urlparse(url).netloc.split(",")[0]
    host, _, port = first.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


def require_service(url: str, what: str) -> None:
    """In CI and `make test` a missing service fails the test; elsewhere it skips with the fix."""
    if _reachable(url):
        return
    message = f"{what} not reachable at {url}: run `deploy/local/services start`"
    if os.environ.get("CI", "").lower() == "true" or os.environ.get("WATCHKEEPER_REQUIRE_SERVICES"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def kafka_url() -> str:
    require_service(KAFKA_URL, "Kafka")
    return KAFKA_URL


@pytest.fixture
def es_url() -> str:
    require_service(ES_URL, "Elasticsearch")
    return ES_URL


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topics, groups and index names so tests never collide."""
    return uuid.uuid4().hex[:10]
