"""A stage whose group leaves every partition to nobody is noticed, not left looking idle.

The group's members owe no work by their own counts (nobody holds the partitions, so nobody
has a lag), so the per-member checks see a healthy, idle stage. The cause reproduced here is
the one a CI run met (tests/integration/test_kafka_metadata_refresh.py): kafka-python's group
leader assigns before it has the topic's metadata, and every refresh it asks for is lost.
With the bus's 10 s metadata age taken away, the partitions would sit unread for kafka-python's
default 5 minutes. The watchdog must ask the group's coordinator, rejoin, and when that does
not help, end the process (EXIT_STALLED) so a supervisor starts a fresh one.
"""
from __future__ import annotations

import threading

import pytest
from kafka.cluster import ClusterMetadata

import watchkeeper.bus.kafka as kafka_bus
from watchkeeper import liveness
from watchkeeper.bus import Names
from watchkeeper.bus.kafka import KafkaBus
from watchkeeper.indexer import Indexer
from watchkeeper.liveness import LivenessConfig, StageRegistry, Watchdog
from watchkeeper.store import open_store
from watchkeeper.worker import run_forever

from .test_kafka_metadata_refresh import _dropped_request

pytestmark = pytest.mark.kafka

DEADLINE_S = 90


def test_partitions_left_to_nobody_make_the_watchdog_rejoin_then_exit(
        kafka_url, unique, tmp_path, monkeypatch):
    names = Names(f"gap{unique}")
    bus = KafkaBus(kafka_url, partitions=2)
    bus.ensure_topics(names.topics)
    producer = bus.producer()
    for i in range(20):                       # work that nobody will read
        producer.send(names.events, b'{"not": "read"}', key=f"k{i}")
    producer.close()

    monkeypatch.setattr(ClusterMetadata, "request_update", _dropped_request)
    monkeypatch.setattr(kafka_bus, "_CONSUMER",
                        dict(kafka_bus._CONSUMER, metadata_max_age_ms=300_000))
    monkeypatch.setattr(liveness, "GROUP_CHECK_S", 1.0)
    store = open_store(f"sqlite:///{tmp_path}/wk.db")
    indexer = Indexer(bus, store, names)
    registry = StageRegistry()
    beat = registry.add("index")
    fatal: list[str] = []
    declared, stop = threading.Event(), threading.Event()
    watchdog = Watchdog(registry, LivenessConfig(stall_seconds=5, max_rejoins=1,
                                                 check_seconds=0.2),
                        on_fatal=lambda message: (fatal.append(message), declared.set()))
    loop = threading.Thread(target=run_forever, args=(indexer, stop), kwargs={"heartbeat": beat})
    loop.start()
    watchdog.start()
    try:
        assert declared.wait(DEADLINE_S), \
            f"after {DEADLINE_S}s the stage still looks healthy: {registry.statuses()}"
    finally:
        watchdog.stop()
        stop.set()
        loop.join(60)
        store.close()
    status = registry.statuses()[0]
    assert status.lag is None, "the member held partitions: the leak was not reproduced"
    assert status.restarts == 1, status
    assert fatal[0].startswith("index: ") and "held by no member of the group" in fatal[0]
    assert fatal[0].endswith("after 1 rejoins"), fatal
