"""The liveness watchdog: stalls are noticed, answered with a rejoin, then with an exit.

Real stages on the embedded bus and SQLite; the Kafka session-timeout case is in
tests/integration/test_worker_stall.py."""
from __future__ import annotations

import threading
import warnings

from api import create_app
from watchkeeper import codec
from watchkeeper.bus import BusError, Names
from watchkeeper.bus.embedded import EmbeddedBus
from watchkeeper.documents import FlowRecord, flow_document
from watchkeeper.indexer import Indexer
from watchkeeper.networks import InternalNetworks
from watchkeeper.liveness import Heartbeat, LivenessConfig, StageRegistry, Watchdog
from watchkeeper.store import open_store
from watchkeeper.worker import StepResult, drain, run_forever

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

NAMES = Names("live")
T0 = 1_767_225_600.0
CONFIG = LivenessConfig(stall_seconds=10, max_rejoins=2)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_stage_owing_work_without_progress_is_asked_to_rejoin_then_declared_stuck():
    clock = Clock()
    beat = Heartbeat("index", clock)
    beat.step(consumed=0, lag=50)
    clock.now += 5
    assert beat.check(CONFIG) is None and not beat.rejoin_wanted()
    for restarts in (1, 2):
        clock.now += 11
        beat.step(consumed=0, lag=50)                  # steps complete, nothing consumed
        assert beat.check(CONFIG) is None and beat.rejoin_wanted()
        assert beat.status().state == "rejoining"
        beat.rejoined(ok=True)
        beat.step(consumed=0, lag=50)                  # the new member is no better
        assert beat.status().restarts == restarts and beat.status().state == "stalled"
    clock.now += 11
    beat.step(consumed=0, lag=50)
    assert "no progress for 11s with lag 50 after 2 rejoins" in beat.check(CONFIG)


def test_progress_resets_the_count_and_an_idle_stage_is_never_stalled():
    clock = Clock()
    beat = Heartbeat("correlate", clock)
    clock.now += 11
    beat.step(consumed=0, lag=7)
    beat.check(CONFIG)
    beat.rejoined(ok=True)
    beat.step(consumed=7, lag=0)
    assert beat.status().state == "ok" and beat.status().lag == 0
    for _ in range(10):                                # nothing owed: quiet is fine
        clock.now += 30
        beat.step(consumed=0, lag=0)
        assert beat.check(CONFIG) is None and not beat.rejoin_wanted()


def test_a_loop_that_never_comes_back_to_rejoin_is_fatal():
    clock = Clock()
    beat = Heartbeat("detect", clock)
    clock.now += 11                                    # no step at all: stuck inside a call
    assert beat.check(CONFIG) is None and beat.rejoin_wanted()
    clock.now += 11
    assert "did not come back to rejoin" in beat.check(CONFIG)


class Hanging:
    """A stage whose step blocks until released, as kafka-python's poll did."""
    name = "index"

    def __init__(self, bus: EmbeddedBus) -> None:
        self.consumer = bus.consumer(NAMES.group("hang"), [NAMES.events])
        self.release = threading.Event()

    def step(self, max_records: int = 2000, timeout: float = 0.5) -> StepResult:
        self.release.wait()
        return StepResult()

    def close(self) -> None:
        self.consumer.close()


def test_the_watchdog_thread_ends_a_process_whose_stage_hangs_inside_a_call():
    bus = EmbeddedBus(partitions=2)
    stage, stop = Hanging(bus), threading.Event()
    registry = StageRegistry()
    beat = registry.add("index")
    fatal: list[str] = []
    declared = threading.Event()
    watchdog = Watchdog(registry, LivenessConfig(stall_seconds=0.3, check_seconds=0.05),
                        on_fatal=lambda msg: (fatal.append(msg), declared.set()))
    loop = threading.Thread(target=run_forever, args=(stage, stop), kwargs={"heartbeat": beat})
    loop.start()
    watchdog.start()
    try:
        assert declared.wait(30), "the watchdog never declared the hanging stage stuck"
    finally:
        watchdog.stop()
        stop.set()
        stage.release.set()
        loop.join(10)
    assert fatal[0].startswith("index: did not come back to rejoin")


def _publish(bus: EmbeddedBus, n: int) -> None:
    producer = bus.producer()
    for i in range(n):
        record = FlowRecord(uid=f"C{i}", start=T0 + i, end=T0 + i + 1, proto=6,
                            orig_ip=f"10.0.{i // 250}.{i % 250}", orig_port=40000,
                            resp_ip="10.9.0.1", resp_port=443, orig_pkts=3, resp_pkts=2,
                            conn_state="SF")
        producer.send(NAMES.events, codec.encode(flow_document(record, "t", InternalNetworks())),
                      key=record.orig_ip)
    producer.flush()


def test_run_forever_rejoins_when_asked_and_still_stores_everything_once(tmp_path):
    bus = EmbeddedBus(partitions=4)
    bus.ensure_topics(NAMES.topics)
    store = open_store(f"sqlite:///{tmp_path}/wk.db")
    indexer = Indexer(bus, store, NAMES)
    registry = StageRegistry()
    beat = registry.add("index")
    clock_start = beat.status()
    _publish(bus, 300)
    beat._rejoin_asked = 0.0                  # as Watchdog.check does on a stall
    stop = threading.Event()
    loop = threading.Thread(target=run_forever, args=(indexer, stop), kwargs={"heartbeat": beat})
    loop.start()
    try:
        for _ in range(200):
            if store._db.execute("SELECT count(*) FROM events").fetchone()[0] == 300:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        loop.join(30)
    status = registry.statuses()[0]
    assert clock_start.restarts == 0 and status.restarts == 1 and status.lag == 0
    assert store._db.execute("SELECT count(*) FROM events").fetchone()[0] == 300
    store.close()


class Starved:
    """Owes work it never gets (its lag never falls): drain must not wait for ever."""
    name = "starved"

    def __init__(self) -> None:
        self.rejoins = 0
        outer = self

        class _Consumer:
            def lag(self) -> int:
                return 5

            def rejoin(self) -> None:
                outer.rejoins += 1
        self.consumer = _Consumer()

    def step(self, max_records: int = 2000, timeout: float = 0.5) -> StepResult:
        return StepResult()


def test_drain_rejoins_before_it_gives_up():
    stage = Starved()
    try:
        drain(stage, stall_s=0.2, max_rejoins=2)
    except TimeoutError as exc:
        assert "starved: no progress" in str(exc) and "lag 5" in str(exc)
    else:
        raise AssertionError("drain returned although work was still owed")
    assert stage.rejoins == 2


def test_health_and_metrics_show_each_stage(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/wk.db")
    registry = StageRegistry()
    index, detect = registry.add("index"), registry.add("detect-destination-ip")
    index.step(consumed=10, lag=0)
    detect.step(consumed=0, lag=3)
    with TestClient(create_app(store, stages=registry)) as client:
        body = client.get("/health").json()
        assert body["status"] == "ok"
        assert [(s["name"], s["lag"], s["state"]) for s in body["stages"]] == [
            ("index", 0, "ok"), ("detect-destination-ip", 3, "ok")]
        assert body["stages"][0]["last_progress"].endswith("Z")
        assert "unowned_partitions" not in body["stages"][0]    # the group was not asked yet
        index.watch_group(lambda: 2)
        index.ask_group()                               # the watchdog asks the group
        body = client.get("/health").json()
        assert [s.get("unowned_partitions") for s in body["stages"]] == [2, None]
        assert body["status"] == "ok"                   # a gap is a stall only once it lasts
        detect._rejoin_asked = 0.0                      # the watchdog asked for a rejoin
        response = client.get("/health")
        assert response.status_code == 503
        assert response.json()["reason"] == "stalled: detect-destination-ip"
        detect.rejoined(ok=True)
        text = client.get("/metrics/").text
    assert 'watchkeeper_stage_lag{stage="detect-destination-ip"} 3.0' in text
    assert 'watchkeeper_stage_restarts_total{stage="detect-destination-ip"}' in text
    assert 'watchkeeper_stage_last_progress_seconds{stage="index"}' in text
    store.close()


def test_a_serve_process_reports_no_stages(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/wk.db")
    with TestClient(create_app(store)) as client:
        assert "stages" not in client.get("/health").json()
    store.close()


def test_drain_goes_on_while_the_lag_cannot_be_read(tmp_path):
    """Kafka restarting mid-`ingest`: listing offsets times out for a while (KafkaTimeoutError
    -> BusError). The stage keeps reading and drain ends when the lag is readable again."""
    bus = EmbeddedBus(partitions=4)
    bus.ensure_topics(NAMES.topics)
    store = open_store(f"sqlite:///{tmp_path}/wk.db")
    indexer = Indexer(bus, store, NAMES)
    real_lag, failures = indexer.consumer.lag, []

    def lag_while_the_broker_is_away() -> int:
        if len(failures) < 3:
            failures.append(1)
            raise BusError("lag: KafkaTimeoutError: Failed to get offsets by timestamps")
        return real_lag()
    indexer.consumer.lag = lag_while_the_broker_is_away
    _publish(bus, 300)
    try:
        drain(indexer, stall_s=30)
        indexer.close()
        assert len(failures) == 3
        assert store._db.execute("SELECT count(*) FROM events").fetchone()[0] == 300
    finally:
        store.close()
