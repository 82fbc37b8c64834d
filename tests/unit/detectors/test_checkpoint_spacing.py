"""A detection stage spaces its state checkpoints by what the last one cost: saving a big
state must not take more than MAX_CHECKPOINT_SHARE of the stage's time (it stalled every
event behind it: the embedded latency tail of issue 13)."""
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
    real_save = CheckpointStore.save

    def timed_save(self, checkpoints):       # the real save, taking `save_cost` seconds
        real_save(self, checkpoints)
        clock.now += clock.save_cost
        clock.saves += 1
    monkeypatch.setattr(CheckpointStore, "save", timed_save)
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
    stage.clock.now += spacing - 1              # neither caught up nor 5 s later: not yet
    stage.worker.step(timeout=0.01)
    assert stage.clock.saves == 1
    stage.clock.now += 1
    stage.worker.step(timeout=0.01)
    assert stage.clock.saves == 2
    assert stage.worker.consumer.lag() == 0     # the offsets went with the state


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
