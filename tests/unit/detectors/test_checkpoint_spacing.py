"""A detection stage spaces its state checkpoints by what the last one cost: saving a big
state must not take more than MAX_CHECKPOINT_SHARE of the stage's time (it stalled every
event behind it: the embedded latency tail of issue 13). The cost that counts is the encoding
on the stage's path plus the write to the store, which runs in the background (a 20 MB state
written every 1.5 s sent Elasticsearch more bytes than the events did)."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

import detectors.runner as runner
from detectors.checkpoint import CheckpointStore
from detectors.scan import ScanDetector
from watchkeeper import codec
from watchkeeper.bus import Names
from watchkeeper.bus.embedded import EmbeddedBus
from watchkeeper.documents import FlowRecord, flow_document
from watchkeeper.networks import InternalNetworks
from watchkeeper.store.sqlite import SqliteStore
from watchkeeper.worker import drain


@pytest.fixture
def stage(monkeypatch, tmp_path):
    clock = SimpleNamespace(now=1000.0, save_cost=0.0, saves=0)
    monkeypatch.setattr(runner, "time", SimpleNamespace(monotonic=lambda: clock.now,
                                                        time=time.time))
    real_encode = CheckpointStore.encode

    def timed_encode(self, checkpoints):     # the real encoding, taking `save_cost` seconds
        docs = real_encode(self, checkpoints)
        clock.now += clock.save_cost
        clock.saves += 1
        return docs
    monkeypatch.setattr(CheckpointStore, "encode", timed_encode)
    bus, names = EmbeddedBus(partitions=1), Names("spacing")
    bus.ensure_topics(names.topics)
    store = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
    worker = runner.DetectionWorker(bus, lambda: [ScanDetector()], store, names)
    producer = bus.producer()
    sent = [0]

    def publish(n: int = 5) -> None:
        for _ in range(n):
            sent[0] += 1
            doc = flow_document(FlowRecord(uid=f"u{sent[0]}", start=1_780_000_000 + sent[0],
                                           end=1_780_000_001 + sent[0], proto=6,
                                           orig_ip="10.0.0.1", orig_port=40000,
                                           resp_ip="10.0.0.2", resp_port=443, conn_state="SF"),
                                "s", InternalNetworks())
            producer.send(names.events, codec.encode(doc), key="10.0.0.1")
        producer.flush()

    def read_then_idle() -> None:
        assert worker.step(timeout=0.01).consumed
        assert worker.step(timeout=0.01).consumed == 0    # caught up: a checkpoint is due
    yield SimpleNamespace(clock=clock, worker=worker, publish=publish, step=read_then_idle)
    worker.close()
    store.close()
    bus.close()


def test_a_cheap_checkpoint_is_taken_as_soon_as_the_stage_catches_up(stage):
    for expected in (1, 2, 3):
        stage.publish()
        stage.step()
        assert stage.clock.saves == expected


def test_an_expensive_checkpoint_is_spaced_by_its_cost(stage):
    stage.clock.save_cost = 2.0
    stage.publish()
    stage.step()
    assert stage.clock.saves == 1
    spacing = 2.0 * (1 / runner.MAX_CHECKPOINT_SHARE - 1)          # 38 s for a 2 s save
    stage.publish()
    stage.step()
    for _ in range(int(spacing) - 1):           # a stream that goes on, a second apart
        stage.clock.now += 1
        stage.publish(1)
        stage.worker.step(timeout=0.01)
    assert stage.clock.saves == 1               # caught up and 5 s later, but not yet
    stage.clock.now += 1
    stage.publish(1)
    stage.worker.step(timeout=0.01)
    assert stage.clock.saves == 2
    assert stage.worker.consumer.lag() == 0


def test_a_partition_whose_stream_stopped_is_saved_without_waiting_out_the_spacing(stage):
    """Saved once, it is clean: the store's load stays bounded, and the offsets are committed
    seconds after the stream stops, not a spacing later (minutes with big states)."""
    stage.clock.save_cost = 2.0
    stage.publish()
    stage.step()
    stage.publish()
    stage.step()                                # the spacing (38 s) puts this one off
    assert stage.clock.saves == 1
    stage.clock.now += stage.worker.checkpoint_every_s - 0.5
    stage.worker.step(timeout=0.01)
    assert stage.clock.saves == 1               # not quiet long enough yet
    stage.clock.now += 0.5
    stage.worker.step(timeout=0.01)
    assert stage.clock.saves == 2
    stage.worker._writes._pending[0][0].result(10)
    stage.worker.step(timeout=0.01)
    topic = stage.worker.names.events
    assert stage.worker.consumer._bus._committed[(stage.worker.group, topic, 0)] == 10
    stage.clock.now += 3600
    stage.worker.step(timeout=0.01)
    assert stage.clock.saves == 2               # clean: not saved again


def test_a_slow_store_write_spaces_the_next_checkpoint_and_none_is_queued_behind_it(
        stage, monkeypatch):
    """The store's share counts: a write that took 3 s puts the next checkpoint 57 s later
    (with a 0 s encoding), and no checkpoint starts while a write is still going."""
    import threading
    release = threading.Event()
    real_write = CheckpointStore.write

    def slow_write(self, docs):
        release.wait(10)
        stage.clock.now += 3.0              # the store took 3 s of the stage's clock
        real_write(self, docs)
    monkeypatch.setattr(CheckpointStore, "write", slow_write)
    stage.publish()
    stage.step()
    assert stage.clock.saves == 1 and stage.worker._writes
    stage.publish()
    stage.step()          # caught up with a free (0 s) last encoding: due, but still writing
    assert stage.clock.saves == 1
    release.set()
    stage.worker._writes._pending[0][0].result(10)
    stage.worker.step(timeout=0.01)             # commits the write; its 3 s now count
    assert not stage.worker._writes and stage.clock.saves == 1
    spacing = 3.0 * (1 / runner.MAX_CHECKPOINT_SHARE - 1)
    stage.clock.now = stage.worker._last_checkpoint + spacing - 1
    stage.publish(1)                            # the stream goes on: not a quiet partition
    stage.worker.step(timeout=0.01)
    assert stage.clock.saves == 1
    stage.clock.now += 1
    stage.publish(1)
    stage.worker.step(timeout=0.01)
    assert stage.clock.saves == 2


def test_offsets_are_committed_once_the_background_write_is_stored(stage, monkeypatch):
    """The stage goes on while its state is written; the commit waits for the write, and a
    failed write raises in the stage (which then rewinds to the last commit)."""
    import threading
    release = threading.Event()
    real_write = CheckpointStore.write

    def slow_write(self, docs):
        release.wait(10)
        real_write(self, docs)
    monkeypatch.setattr(CheckpointStore, "write", slow_write)
    stage.publish()
    stage.step()                                # checkpoint taken, its write held back
    assert stage.clock.saves == 1 and stage.worker._writes
    topic = stage.worker.names.events
    assert stage.worker.checkpoints.load(topic, 0) is None     # nothing stored yet
    assert stage.worker.consumer._bus._committed.get((stage.worker.group, topic, 0), 0) == 0
    release.set()
    stage.worker._writes._pending[0][0].result(10)
    stage.worker.step(timeout=0.01)             # the next step commits
    assert not stage.worker._writes
    assert stage.worker.checkpoints.load(topic, 0).next_offset == 5
    assert stage.worker.consumer._bus._committed[(stage.worker.group, topic, 0)] == 5

    def failing_write(self, docs):
        raise OSError("store down")
    monkeypatch.setattr(CheckpointStore, "write", failing_write)
    stage.publish()
    assert stage.worker.step(timeout=0.01).consumed == 5
    stage.clock.now += 3600
    stage.worker.step(timeout=0.01)             # idle and due: the write starts, and fails
    stage.worker._writes._pending[0][0].exception(10)
    with pytest.raises(OSError, match="store down"):
        stage.worker.step(timeout=0.01)
    assert stage.worker.consumer._bus._committed[(stage.worker.group, topic, 0)] == 5


def test_a_round_saves_one_partition_per_checkpoint(tmp_path, monkeypatch):
    """With several dirty partitions a running stage encodes one at a time (its stall is one
    partition's), each committed on its own; `checkpoint()` still saves all at once."""
    bus, names = EmbeddedBus(partitions=3), Names("rounds")
    bus.ensure_topics(names.topics)
    store = SqliteStore(f"sqlite:///{tmp_path}/r.db")
    encoded = []
    real_encode = CheckpointStore.encode

    def counting_encode(self, checkpoints):
        encoded.append(sorted(p for _, p in checkpoints))
        return real_encode(self, checkpoints)
    monkeypatch.setattr(CheckpointStore, "encode", counting_encode)
    worker = runner.DetectionWorker(bus, lambda: [ScanDetector()], store, names)
    producer = bus.producer()
    for i in range(30):
        doc = flow_document(FlowRecord(uid=f"r{i}", start=1_780_000_000 + i, end=1_780_000_001 + i,
                                       proto=6, orig_ip=f"10.0.0.{i}", orig_port=40000,
                                       resp_ip="10.0.0.200", resp_port=443, conn_state="SF"),
                            "s", InternalNetworks())
        producer.send(names.events, codec.encode(doc), key=f"10.0.0.{i}")
    producer.flush()
    while worker.step(timeout=0.01).consumed:
        pass
    for _ in range(1000):                   # spaced by the real clock: a few ms each
        worker.step(timeout=0.01)
        worker._writes and worker._writes._pending[-1][0].result(10)
        if not worker._dirty:
            break
    assert encoded[:3] == [[0], [1], [2]] and not worker._dirty
    worker.close()
    for p in range(3):
        assert bus._committed[(worker.group, names.events, p)] > 0
    store.close()
    bus.close()


def test_a_drained_stage_takes_the_checkpoint_it_put_off(stage):
    """`ingest` rounds and a stopping `run` drain their stages: what was read is then saved and
    committed, however recent the last checkpoint (the embedded bus trims on commits)."""
    stage.clock.save_cost = 2.0
    stage.publish()
    stage.step()
    stage.publish()
    assert drain(stage.worker).consumed == 5
    assert stage.clock.saves == 2 and not stage.worker._dirty
    assert drain(stage.worker).consumed == 0 and stage.clock.saves == 2    # nothing new: none
