"""Collector counters published as metric events for the screen, and as /metrics gauges."""
from __future__ import annotations

import threading
from dataclasses import dataclass

from prometheus_client import generate_latest

from watchkeeper import codec, schema
from watchkeeper.bus import Names
from watchkeeper.bus.embedded import EmbeddedBus
from watchkeeper.publish import EventPublisher
from watchkeeper.status import DATASET, StatusReporter, counters_of, status_document


@dataclass
class _Stats:
    received: int = 0
    malformed: int = 0
    ratio: float = 0.5          # not a counter: left out
    healthy: bool = True        # not a counter either


def test_counters_of_takes_integer_fields_only():
    assert counters_of(_Stats(3, 1), _Stats(7)) == {"received": 7, "malformed": 0}


def test_status_document_is_a_valid_metric_event_with_a_stable_id():
    doc = status_document("syslog", {"received": 5}, "sensor-1", 100.0, 125.0, 10.0, "city-a")
    assert schema.validate(doc)["event"]["kind"] == "metric"
    assert doc["event"]["dataset"] == DATASET and doc["labels"] == {"site": "city-a"}
    same_interval = status_document("syslog", {"received": 9}, "sensor-1", 100.0, 129.9, 10.0)
    next_interval = status_document("syslog", {"received": 9}, "sensor-1", 100.0, 130.0, 10.0)
    restarted = status_document("syslog", {"received": 9}, "sensor-1", 101.0, 125.0, 10.0)
    assert doc["event"]["id"] == same_interval["event"]["id"]
    assert len({doc["event"]["id"], next_interval["event"]["id"],
                restarted["event"]["id"]}) == 3


def test_reporter_publishes_until_stopped_and_once_more_at_stop():
    bus = EmbeddedBus(partitions=1)
    names = Names()
    consumer = bus.consumer("t", [names.events])
    stats, stop = _Stats(), threading.Event()
    reporter = StatusReporter(EventPublisher(bus.producer(), "status", names), "capture:eth9",
                              lambda: counters_of(stats), "sensor-1", stop, every=0.05)
    reporter.start()
    stats.received = 42
    stop.wait(0.3)
    stats.received = 43
    stop.set()
    reporter.thread.join(timeout=5)
    docs = [codec.decode(m.value) for m in consumer.poll(1000, 0.5)]
    counts = [d["watchkeeper"]["collector"]["counters"]["received"] for d in docs]
    assert len(docs) >= 2 and counts[-1] == 43 and counts == sorted(counts)
    exported = generate_latest().decode()
    assert 'watchkeeper_collector_counter{collector="capture:eth9",counter="received"} 43.0' \
        in exported
