"""The detection stage on both buses: one worker or two give the same alerts, and a worker
that takes over (after a crash or a hand-over) resumes the windows from the checkpoint."""
from __future__ import annotations

import threading

import pytest

from detectors.runner import DetectionWorker
from detectors.scan import ScanConfig, ScanDetector
from watchkeeper import codec
from watchkeeper.bus import Names
from watchkeeper.documents import FlowRecord, flow_document
from watchkeeper.networks import InternalNetworks
from watchkeeper.store.sqlite import SqliteStore
from watchkeeper.worker import drain

from .grouping import join_group

NETS = InternalNetworks()
SCANNERS = [f"10.9.0.{i}" for i in range(1, 9)]


def _events() -> list[dict]:
    """Eight scanners probing 90 ports each, interleaved in time, plus benign sessions."""
    docs = []
    for step in range(90):
        for n, src in enumerate(SCANNERS):
            t = 1_780_000_000 + step * 0.2 + n * 0.01
            docs.append(_flow(f"{src}-{step}", t, src, "10.8.0.1", 1 + step, "S0"))
        docs.append(_flow(f"benign-{step}", 1_780_000_000 + step * 0.2, "10.7.0.1",
                          "10.8.0.2", 443, "SF", orig_bytes=300))
    return docs


def _flow(uid, t, src, dst, port, state, orig_bytes=0):
    return flow_document(FlowRecord(uid=uid, start=t, end=t + 0.05, proto=6, orig_ip=src,
                                    orig_port=40000, resp_ip=dst, resp_port=port,
                                    orig_bytes=orig_bytes, conn_state=state), "s", NETS)


def _detectors():
    return [ScanDetector(ScanConfig(min_targets=20))]


def _publish(bus, names, docs):
    producer = bus.producer()
    for doc in docs:
        producer.send(names.events, codec.encode(doc), key=doc["source"]["ip"])
    producer.flush()


def _final_alerts(bus, names) -> dict[str, int]:
    """alert id -> highest count raised (the state the store would hold)."""
    consumer = bus.consumer(f"{names.namespace}-reader", [names.alerts_raw])
    final: dict[str, int] = {}
    while batch := consumer.poll(5000, timeout=2.0):
        for msg in batch:
            doc = codec.decode(msg.value)
            final[doc["event"]["id"]] = max(final.get(doc["event"]["id"], 0),
                                            doc["watchkeeper"]["alert"]["count"])
    consumer.close()
    return final


@pytest.fixture
def setup(bus, unique, tmp_path):
    def make(label: str):
        names = Names(f"d{label}{unique}")
        bus.ensure_topics(names.topics)
        return names, SqliteStore(f"sqlite:///{tmp_path}/{label}.db")
    return make


def test_one_or_two_workers_raise_the_same_alerts(bus, setup):
    docs = _events()
    names1, store1 = setup("one")
    _publish(bus, names1, docs)
    worker = DetectionWorker(bus, _detectors, store1, names1)
    drain(worker)
    worker.close()
    expected = _final_alerts(bus, names1)
    assert len(expected) == len(SCANNERS)

    names2, store2 = setup("two")
    workers = [DetectionWorker(bus, _detectors, store2, names2) for _ in range(2)]
    _join_group(workers)
    _publish(bus, names2, docs)
    results: dict[int, int] = {}
    threads = [threading.Thread(target=lambda i, w: results.__setitem__(i, drain(w).consumed),
                                args=(i, w)) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    for w in workers:
        w.close()
    assert sorted(results) == [0, 1] and all(results.values()), "both workers must share"
    assert sum(results.values()) == len(docs)
    assert _final_alerts(bus, names2) == expected


def _join_group(workers) -> None:
    join_group(workers, lambda w: w.step(timeout=0.2), lambda w: w.consumer.lag() is not None)


@pytest.mark.parametrize("checkpoint_before_crash", [True, False])
def test_a_new_worker_resumes_from_the_checkpoint(bus, setup, checkpoint_before_crash):
    docs = _events()
    reference, ref_store = setup("ref")
    _publish(bus, reference, docs)
    drain(DetectionWorker(bus, _detectors, ref_store, reference))
    expected = _final_alerts(bus, reference)

    names, store = setup("crash")
    _publish(bus, names, docs[: len(docs) // 2])
    first = DetectionWorker(bus, _detectors, store, names, checkpoint_every_s=3600)
    while first.consumer.lag() != 0:
        first.step(timeout=0.5)
    if checkpoint_before_crash:
        first.checkpoint()
    first.consumer.close()            # crash: nothing else is saved or committed
    _publish(bus, names, docs[len(docs) // 2:])
    second = DetectionWorker(bus, _detectors, store, names)
    drain(second)
    second.close()
    assert _final_alerts(bus, names) == expected


def test_a_new_embedded_bus_is_not_read_against_an_old_checkpoint(unique, tmp_path):
    """A second `ingest` (or a restarted `run`) on the embedded bus starts offsets at 0 again:
    a checkpoint saved by the first must not make the second skip its first messages."""
    from watchkeeper.bus.embedded import EmbeddedBus
    docs = _events()
    names, store = Names(f"depoch{unique}"), SqliteStore(f"sqlite:///{tmp_path}/epoch.db")
    first_bus, second_bus = EmbeddedBus(), EmbeddedBus()
    expected = {}
    for bus in (first_bus, second_bus):
        bus.ensure_topics(names.topics)
        _publish(bus, names, docs)
        worker = DetectionWorker(bus, _detectors, store, names)
        drain(worker)
        worker.checkpoint()
        worker.close()
        expected = expected or _final_alerts(bus, names)
        assert _final_alerts(bus, names) == expected and expected


def _left_to_read(bus, names) -> list:
    """What a restarted source-keyed worker would read again: past the group's commits."""
    restart = bus.consumer(names.group("detect"), [names.events])
    seen: list = []
    join_group([restart], lambda c: seen.extend(c.poll(100, 0.2)),
               lambda c: c.lag() is not None)
    seen += restart.poll(5000, 1.0)
    restart.close()
    return seen


def test_state_saved_but_not_committed_is_committed_by_the_next_owner(bus, setup):
    """A worker saved its partitions' state, then lost them before committing (a rebalance
    between its write and its commit; seen with two source-keyed processes). The next owner
    restores that state and skips the events it covers; it must commit them too, or the
    partition's lag never falls while no new event arrives."""
    names, store = setup("handover")
    docs = _events()
    _publish(bus, names, docs)
    first = DetectionWorker(bus, _detectors, store, names, checkpoint_every_s=3600)
    while first.consumer.lag() != 0:
        first.step(timeout=0.5)
    first.checkpoints.save({pair: part.checkpoint() for pair, part in first._partitions.items()})
    first.consumer.close()              # its commit never happens
    second = DetectionWorker(bus, _detectors, store, names)
    drain(second)
    second.close()
    assert _left_to_read(bus, names) == []


def test_a_worker_never_saves_or_commits_a_partition_a_rebalance_took(bus, setup):
    """Two source-keyed workers: the first read every partition alone, then a second joined
    and took half of them. The first's unsaved state of those partitions is older than what
    the new owner saves and commits; saved and committed later (its next round), it sent
    their committed offsets back (seen as a stall with two processes: a quiet partition
    committed at 3-4k of 75k)."""
    names, store = setup("revoked")
    docs = _events()
    _publish(bus, names, docs[: len(docs) // 2])
    first = DetectionWorker(bus, _detectors, store, names, checkpoint_every_s=3600)
    first._checkpoint_due = lambda idle: False          # its round has not come yet
    while first.consumer.lag() != 0:
        first.step(timeout=0.5)
    second = DetectionWorker(bus, _detectors, store, names)
    _join_group([first, second])
    assert first.consumer.assigned() and second.consumer.assigned()
    _publish(bus, names, docs[len(docs) // 2:])
    for worker in (second, first):
        while worker.consumer.lag() != 0:
            worker.step(timeout=0.5)
    second.checkpoint()
    first.checkpoint()                                  # must not touch the second's
    first.close()
    second.close()
    assert _left_to_read(bus, names) == []
