"""A detector keyed on the destination sees every flow to its target, whichever partition
the sources' events landed on: the detect stage re-publishes events keyed by destination."""
from __future__ import annotations

import pytest
from pydantic import Field

from detectors import registry
from detectors.base import Detector, DetectorConfig
from app import pipeline
from watchkeeper import codec
from watchkeeper.bus import Names
from watchkeeper.config import load_settings
from watchkeeper.documents import AlertSpec, FlowRecord, flow_document
from watchkeeper.networks import InternalNetworks
from watchkeeper.publish import EventPublisher
from watchkeeper.store.sqlite import SqliteStore
from watchkeeper.worker import drain


class FanInConfig(DetectorConfig):
    min_sources: int = Field(30, ge=2, le=10_000, description="distinct sources per target")


class FanIn(Detector):
    """Test detector: many distinct sources reaching one target."""
    name, version, category = "fan_in_test", "1", "dos"
    datasets = frozenset({"watchkeeper.flow"})
    key_field = "destination.ip"
    Config = FanInConfig

    def __init__(self, config=None):
        super().__init__(config)
        self.sources: dict[str, set] = {}

    def on_event(self, event, event_time):
        target = event["destination"]["ip"]
        seen = self.sources.setdefault(target, set())
        seen.add(event["source"]["ip"])
        if len(seen) == self.config.min_sources:
            return [AlertSpec("fan_in_test", "1", "dos", "test.fanin", "fan-in", 3,
                              f"{len(seen)} sources", target, event_time, event_time,
                              destination_ip=target)]
        return []

    def snapshot(self):
        return {t: sorted(s) for t, s in self.sources.items()}

    def restore(self, state):
        self.sources = {t: set(s) for t, s in state.items()}


def test_destination_keyed_detector_sees_all_sources(bus, unique, tmp_path, monkeypatch):
    monkeypatch.setitem(registry.BUILTIN, FanIn.name, FanIn)
    settings, names, backends = _pipeline(bus, f"rk{unique}", f"sqlite:///{tmp_path}/wk.db")
    producer = bus.producer()
    for i in range(40):   # 40 sources: spread over every partition of wk.events
        t = 1_780_000_000 + i
        doc = flow_document(FlowRecord(uid=f"F{i}", start=t, end=t + 1, proto=6,
                                       orig_ip=f"10.50.{i}.1", orig_port=1000, resp_ip="10.60.0.1",
                                       resp_port=80, conn_state="S0"), "s", InternalNetworks())
        producer.send(names.events, codec.encode(doc), key=doc["source"]["ip"])
    producer.flush()
    workers = pipeline.detection_workers(settings, backends)
    other_keys = {cls.key_field for cls in registry.available().values()} - {"source.ip"}
    assert len(workers) == 1 + len(other_keys)     # the source stage + one per other key
    for worker in workers:
        drain(worker)
        worker.close()
    reader = bus.consumer(f"rk{unique}-reader", [names.alerts_raw])
    alerts = [codec.decode(m.value) for m in reader.poll(1000, timeout=5.0)]
    fan_in = [a for a in alerts if a["watchkeeper"]["alert"]["detector"] == "fan_in_test"]
    assert [a["destination"]["ip"] for a in fan_in] == ["10.60.0.1"]


def test_only_events_a_rekeyed_detector_reads_are_republished(bus, unique, tmp_path):
    settings, names, backends = _pipeline(bus, f"rd{unique}", f"sqlite:///{tmp_path}/wk.db")
    producer = bus.producer()
    t = 1_780_000_000
    flow = flow_document(FlowRecord(uid="F1", start=t, end=t + 1, proto=17, orig_ip="10.50.0.1",
                                    orig_port=1000, resp_ip="10.60.0.1", resp_port=53,
                                    conn_state="SF"), "s", InternalNetworks())
    dns = {"@timestamp": flow["@timestamp"],
           "event": {"id": "dns-1", "kind": "event", "dataset": "watchkeeper.dns"},
           "source": {"ip": "10.50.0.1", "port": 1000},
           "destination": {"ip": "10.60.0.1", "port": 53},
           "dns": {"question": {"name": "example.org", "type": "A"}}}
    for doc in (flow, dns):
        producer.send(names.events, codec.encode(doc), key=doc["source"]["ip"])
    producer.flush()
    rekeyed = names.rekeyed("destination.ip")
    reader = bus.consumer(f"rd{unique}-reader", [rekeyed])
    source_stage = pipeline.detection_workers(settings, backends)[0]
    drain(source_stage)
    source_stage.close()
    copied = [doc for m in reader.poll(1000, timeout=5.0) for _, _, doc in codec.decode(m.value)]
    # dos and slow_dos read flows only: the DNS event is not copied to their topic
    assert [d["event"]["dataset"] for d in copied] == ["watchkeeper.flow"]


def _pipeline(bus, namespace: str, store_url: str):
    """Settings, topic names and backends of a namespace of its own on `bus`."""
    settings = load_settings(namespace=namespace)
    names = Names(settings.namespace)
    bus.ensure_topics(names.topics)
    return settings, names, pipeline.Backends(bus, SqliteStore(store_url))


def _flow(i: int, source: str, target: str) -> dict:
    t = 1_780_000_000 + i
    return flow_document(FlowRecord(uid=f"F{i}", start=t, end=t + 1, proto=6, orig_ip=source,
                                    orig_port=1000 + i, resp_ip=target, resp_port=80,
                                    conn_state="S0"), "s", InternalNetworks())


def test_copies_travel_in_batches_that_keep_each_targets_copies_in_one_partition_in_order(
        bus, unique, tmp_path):
    settings, names, backends = _pipeline(bus, f"rb{unique}", f"sqlite:///{tmp_path}/wk.db")
    producer = bus.producer()
    for i in range(200):    # 20 sources (every partition of wk.events) x 10 targets
        doc = _flow(i, f"10.52.{i % 20}.1", f"10.62.0.{i % 10}")
        producer.send(names.events, codec.encode(doc), key=doc["source"]["ip"])
    producer.flush()
    reader = bus.consumer(f"rb{unique}-reader", [names.rekeyed("destination.ip")])
    source_stage = pipeline.detection_workers(settings, backends)[0]
    drain(source_stage)
    source_stage.close()
    messages, batch = [], reader.poll(1000, timeout=5.0)
    while batch:
        messages += batch
        batch = reader.poll(1000, timeout=1.0)
    # each copy: [source partition, source offset, the event as it was read]
    copies = [(m.partition, (p, o), doc) for m in messages for p, o, doc in codec.decode(m.value)]
    assert len(copies) == 200 and len(messages) < 200      # many copies per message
    partitions: dict[str, set[int]] = {}
    seen: dict[tuple[str, int], int] = {}
    for partition, origin, doc in copies:
        target = doc["destination"]["ip"]
        partitions.setdefault(target, set()).add(partition)
        assert "rekeyed_from" not in doc.get("watchkeeper", {})
        # per target, copies from one source partition arrive in source order
        assert origin[1] > seen.get((target, origin[0]), -1), (target, origin)
        seen[(target, origin[0])] = origin[1]
    assert all(len(found) == 1 for found in partitions.values()), partitions


def test_a_bad_copy_in_a_batch_is_dead_lettered_alone(bus, unique, tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "BUILTIN", {FlowCount.name: FlowCount})
    settings, names, backends = _pipeline(bus, f"rx{unique}", f"sqlite:///{tmp_path}/wk.db")
    good = [b"[0,%d,%s]" % (i, codec.encode(_flow(i, f"10.53.{i}.1", "10.63.0.1")))
            for i in range(9)]
    older = codec.encode(_flow(9, "10.53.9.1", "10.63.0.1"))  # no origin: as a test may send
    bad = [b'"not an event"', b'[0,"nine",{}]']
    producer = bus.producer()
    producer.send(names.rekeyed("destination.ip"),
                  b"[" + b",".join(good[:4] + bad + good[4:] + [older]) + b"]",
                  key="10.63.0.1")
    producer.flush()
    rekeyed_stage = pipeline.detection_workers(settings, backends, stages="rekeyed")[0]
    result = drain(rekeyed_stage)
    rekeyed_stage.close()
    assert (result.consumed, result.deadlettered) == (1, 2)
    assert _counted(bus, names, f"{names.namespace}-reader") == ["10 flows"]
    letters = bus.consumer(f"rx{unique}-letters", [names.deadletter]).poll(100, timeout=5.0)
    assert [(d["reason"], d["raw"]) for d in
            (codec.decode(m.value)["watchkeeper"]["deadletter"] for m in letters)] == [
        ("ValidationError: event is not a JSON object", '"not an event"'),
        ("ValidationError: a re-keyed copy is [source partition, source offset, (index,) "
         "event]", '[0,"nine",{}]')]


def test_a_bad_line_in_a_batch_of_events_is_dead_lettered_alone(bus, unique, tmp_path,
                                                                 monkeypatch):
    """A collector's batch (JSON lines, watchkeeper/batches.py) with a line that is not an
    event: the source-keyed stage dead-letters that line and copies the other 20."""
    monkeypatch.setattr(registry, "BUILTIN", {FlowCount.name: FlowCount})
    settings, names, backends = _pipeline(bus, f"rl{unique}", f"sqlite:///{tmp_path}/wk.db")
    lines = [codec.encode(_flow(i, "10.54.0.1", "10.64.0.1")) for i in range(20)]
    producer = bus.producer()
    producer.send(names.events, b"\n".join(lines[:7] + [b"{not json"] + lines[7:]),
                  key="10.54.0.1")
    producer.flush()
    results = []
    for worker in pipeline.detection_workers(settings, backends):
        results.append(drain(worker))
        worker.close()
    assert (results[0].consumed, results[0].deadlettered) == (1, 1)
    assert _counted(bus, names, f"{names.namespace}-reader") == ["10 flows", "20 flows"]
    letters = bus.consumer(f"rl{unique}-letters", [names.deadletter]).poll(100, timeout=5.0)
    assert [codec.decode(m.value)["watchkeeper"]["deadletter"]["raw"] for m in letters] == [
        "{not json"]


class FlowCount(Detector):
    """Test detector: counts flows per target, alerting at every 10th (a flow counted twice
    shows as alerts past the real total)."""
    name, version, category = "flow_count_test", "1", "dos"
    datasets = frozenset({"watchkeeper.flow"})
    key_field = "destination.ip"
    Config = FanInConfig

    def __init__(self, config=None):
        super().__init__(config)
        self.counts: dict[str, int] = {}

    def on_event(self, event, event_time):
        target = event["destination"]["ip"]
        self.counts[target] = n = self.counts.get(target, 0) + 1
        if n % 10:
            return []
        return [AlertSpec("flow_count_test", "1", "dos", "test.count", "count", 3, f"{n} flows",
                          f"{target}/{n}", event_time, event_time, destination_ip=target)]

    def snapshot(self):
        return dict(self.counts)

    def restore(self, state):
        self.counts = dict(state)


def _counted(bus, names, group: str) -> list[str]:
    """The counts alerted (which flow reached them depends on arrival order: not compared)."""
    reader = bus.consumer(group, [names.alerts_raw])
    # Until a poll brings nothing more: one poll returns what has arrived, and a client may
    # hand over a new group's partitions one fetch at a time (librdkafka does).
    alerts, batch = [], reader.poll(1000, timeout=5.0)
    while batch:
        alerts += [codec.decode(m.value) for m in batch]
        batch = reader.poll(1000, timeout=1.0)
    reader.close()
    return sorted({a["message"] for a in alerts
                   if a["watchkeeper"]["alert"]["detector"] == "flow_count_test"})


def test_an_origin_on_an_event_is_not_taken_for_a_copys(bus, unique, tmp_path, monkeypatch):
    """Only copies carry origins: an event on the events topic that names one (the schema is
    open under `watchkeeper`) is detected like any other, not skipped as already counted."""
    monkeypatch.setattr(registry, "BUILTIN", {FlowCount.name: FlowCount})
    settings, names, backends = _pipeline(bus, f"ro{unique}", f"sqlite:///{tmp_path}/wk.db")
    producer = bus.producer()
    for i in range(10):
        doc = _flow(i, "10.54.0.1", "10.64.0.1")        # one source: one partition
        doc["watchkeeper"]["rekeyed_from"] = [0, 10**9]
        producer.send(names.events, codec.encode(doc), key=doc["source"]["ip"])
    producer.flush()
    for worker in pipeline.detection_workers(settings, backends):
        drain(worker)
        worker.close()
    assert _counted(bus, names, f"{names.namespace}-reader") == ["10 flows"]


@pytest.mark.parametrize("batched", [False, True], ids=["single", "batched"])
def test_copies_republished_after_a_source_worker_crash_are_counted_once(
        bus, unique, tmp_path, monkeypatch, batched):
    """Batched: the collectors' framing (watchkeeper/batches.py); the copies of one source
    message then share its offset and differ by their index in the batch."""
    monkeypatch.setattr(registry, "BUILTIN", {FlowCount.name: FlowCount})
    results = []
    for crash in (False, True):
        settings, names, backends = _pipeline(bus, f"rc{int(crash)}{int(batched)}{unique}",
                                              f"sqlite:///{tmp_path}/{crash}.db")
        producer = bus.producer()
        publisher = EventPublisher(producer, "test", names, partitions=bus.partitions)
        for i in range(40):
            t = 1_780_000_000 + i
            doc = flow_document(FlowRecord(uid=f"F{i}", start=t, end=t + 1, proto=6,
                                           orig_ip=f"10.51.{i}.1", orig_port=1000,
                                           resp_ip="10.61.0.1", resp_port=80, conn_state="S0"),
                                "s", InternalNetworks())
            if batched:
                publisher.publish(doc)
            else:
                producer.send(names.events, codec.encode(doc), key=doc["source"]["ip"])
        publisher.flush()
        if crash:   # copies published, then killed before its checkpoint: nothing committed
            first = pipeline.detection_workers(settings, backends)[0]
            first.checkpoint_every_s = 3600
            while first.consumer.lag() != 0:
                first.step(timeout=0.5)
            first.producer.flush()
            first.consumer.close()
        for worker in pipeline.detection_workers(settings, backends):
            drain(worker)
            worker.close()
        results.append(_counted(bus, names, f"{names.namespace}-reader"))
    assert results[0] == ["10 flows", "20 flows", "30 flows", "40 flows"]
    assert results[1] == results[0]
