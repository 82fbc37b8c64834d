"""`ingest`'s Kafka consumers wait less at the broker than a long-running stage's (open_bus's
docstring): each lag question of a drained stage queues behind that wait."""
from __future__ import annotations

from app import pipeline
from app.settings import Settings
from watchkeeper.bus import Names


def _fetch_wait(settings: Settings, for_ingest: bool) -> int:
    bus = pipeline.open_bus_only(settings, for_ingest=for_ingest)
    topic = Names(settings.namespace).events
    consumer = bus.consumer(f"wktest.fetch-wait.{settings.namespace}", [topic])
    try:
        return consumer._live().config["fetch_max_wait_ms"]
    finally:
        consumer.close()


def test_only_ingest_consumers_wait_less_for_a_fetch(kafka_url, unique):
    settings = Settings(bus=kafka_url, store="sqlite:///:memory:", namespace=f"fw{unique}")
    assert _fetch_wait(settings, for_ingest=True) == pipeline.INGEST_FETCH_WAIT_MS
    assert _fetch_wait(settings, for_ingest=False) == 500      # kafka-python's default
