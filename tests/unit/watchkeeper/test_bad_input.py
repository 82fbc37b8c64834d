"""Bad input never kills a worker: it is dead-lettered with its reason and raw bytes, counted,
and the good records around it are still processed."""
from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from detectors.runner import DetectionWorker
from detectors.scan import ScanDetector
from watchkeeper import codec
from watchkeeper.bus import Names
from watchkeeper.bus.embedded import EmbeddedBus
from watchkeeper.documents import FlowRecord, flow_document
from watchkeeper.indexer import Indexer
from watchkeeper.networks import InternalNetworks
from watchkeeper.publish import EventPublisher
from watchkeeper.store import Query
from watchkeeper.store.sqlite import SqliteStore
from watchkeeper.worker import drain

NAMES = Names()
BAD = [b"not json", b"[1,2]", b'{"@timestamp": "x"}',
       codec.encode({"@timestamp": "2026-01-01T00:00:00Z",
                     "event": {"id": "abcdefgh12", "kind": "event", "dataset": "d"},
                     "source": {"ip": "300.1.1.1"}})]


def _good(i: int) -> dict:
    return flow_document(FlowRecord(uid=f"C{i}", start=1.7e9 + i, end=1.7e9 + i + 1, proto=6,
                                    orig_ip="10.0.0.1", orig_port=1000 + i, resp_ip="10.0.0.2",
                                    resp_port=80, conn_state="SF"), "s", InternalNetworks())


def _counter(stage: str) -> float:
    return REGISTRY.get_sample_value("watchkeeper_records_total",
                                     {"stage": stage, "outcome": "deadlettered"}) or 0.0


def _bus_with_bad_records() -> EmbeddedBus:
    bus = EmbeddedBus(partitions=2)
    producer = bus.producer()
    for i, raw in enumerate(BAD):
        producer.send(NAMES.events, codec.encode(_good(i)), key="10.0.0.1")
        producer.send(NAMES.events, raw, key="10.0.0.1")
    return bus


@pytest.fixture
def loaded(tmp_path):
    return _bus_with_bad_records(), SqliteStore(f"sqlite:///{tmp_path}/wk.db")


def test_detector_and_indexer_survive_and_deadletter_bad_records(loaded):
    bus, store = loaded
    before = _counter("index")
    drain(DetectionWorker(bus, lambda: [ScanDetector()], store, NAMES))
    result = drain(Indexer(bus, store, NAMES, trusted=()))   # input from anyone: validated
    assert result.deadlettered == len(BAD)
    assert store.search("events", Query()).total == len(BAD)          # every good one stored
    letters = store.search("deadletter", Query(limit=100)).items
    stages = {d["watchkeeper"]["deadletter"]["stage"] for d in letters}
    assert stages == {"detect", "index"}
    raws = {d["watchkeeper"]["deadletter"]["raw"] for d in letters}
    assert "not json" in raws
    assert all(d["message"] for d in letters)
    assert _counter("index") - before == len(BAD)


def test_replaying_the_same_bad_records_adds_no_duplicate_dead_letters(tmp_path):
    store = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
    for _ in range(2):   # a replay: same records at the same positions
        drain(Indexer(_bus_with_bad_records(), store, NAMES, trusted=()))
    assert store.search("deadletter", Query()).total == len(BAD)
    assert store.search("events", Query()).total == len(BAD)


def test_a_trusted_topic_dead_letters_what_has_no_id_or_time_and_stores_the_bytes(tmp_path):
    """Trusted (the default for wk.events): our publisher validated it, so the indexer only
    reads each record's id and time; a record without them is still dead-lettered."""
    store = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
    bus = _bus_with_bad_records()
    result = drain(Indexer(bus, store, NAMES))
    assert result.deadlettered == 3          # all but the well-formed one with a bad address
    stored = {d["event"]["id"]: d for d in store.search("events", Query(limit=100)).items}
    assert len(stored) == len(BAD) + 1
    good = _good(2)
    assert codec.encode(stored[good["event"]["id"]]) == codec.encode(good)


def test_publisher_rejects_invalid_events_without_raising():
    bus = EmbeddedBus(partitions=1)
    publisher = EventPublisher(bus.producer(), "test", NAMES)
    assert publisher.publish(_good(1)) is True
    assert publisher.publish({"event": "nope"}) is False
    letters = bus.consumer("g", [NAMES.deadletter]).poll(10, timeout=0)
    assert len(letters) == 1 and b"nope" in letters[0].value
    assert (publisher.published, publisher.rejected) == (1, 1)


class _Brittle(ScanDetector):
    """A detector with a bug on some shape of input (an AttributeError, like those the
    detector contract test found in 11 detectors last round)."""
    name = "brittle"

    def on_event(self, event, event_time):
        if event["source"].get("port") == 1001:
            raise AttributeError("'str' object has no attribute 'get'")
        return super().on_event(event, event_time)


def test_a_detector_bug_on_one_event_dead_letters_it_and_the_stage_goes_on(tmp_path):
    """Not a poison pill: a failed step is retried from the last commit, so an exception that
    escapes would fail the same message for ever and stall the stage."""
    bus, store = EmbeddedBus(partitions=1), SqliteStore(f"sqlite:///{tmp_path}/wk.db")
    producer = bus.producer()
    for i in range(3):
        producer.send(NAMES.events, codec.encode(_good(i)), key="10.0.0.1")
    result = drain(DetectionWorker(bus, lambda: [_Brittle()], store, NAMES), stall_s=10)
    assert result.consumed == 3 and result.deadlettered == 1
    drain(Indexer(bus, store, NAMES))
    assert store.search("events", Query()).total == 3       # the event itself is still stored
    letters = store.search("deadletter", Query(limit=10)).items
    assert [d["message"] for d in letters] == ["AttributeError: 'str' object has no attribute 'get'"]
