"""Issue 9 item 5: kill -9 of a detect worker mid-stream; the restarted worker raises exactly
the alerts an uninterrupted run raises (same ids, same final content).

Real Kafka, the real `watchkeeper detect` process with every registered detector (so the
source-keyed stage and the stages re-keyed by destination run), checkpoints in SQLite. The
same mixed stream (benign traffic, port scans, beacons, SSH guessing, a flood) is read once
by an uninterrupted worker and once by a worker killed as soon as it has copied events to a
re-keyed topic, restarted, killed again right after its first checkpoint, and restarted
(60 % of the stream published before the kills, the rest after them).
(tests/integration/test_crash_recovery.py does the same for the indexer.)"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from detectors import registry
from watchkeeper import codec
from watchkeeper.bus import Names
from watchkeeper.bus.kafka import KafkaBus
from watchkeeper.documents import FlowRecord, flow_document
from watchkeeper.networks import InternalNetworks

from .conftest import ROOT, WATCHKEEPER

pytestmark = pytest.mark.kafka

T0 = 1_780_000_000.0
SPAN_S = 3600.0


class Flows:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.records: list[FlowRecord] = []

    def add(self, t: float, src: str, dst: str, dport: int, state: str = "SF", ob: int = 300,
            rb: int = 2000, op: int = 4, rp: int = 4, dur: float = 0.5) -> None:
        self.records.append(FlowRecord(
            uid=f"K{len(self.records)}", start=t, end=t + dur, proto=6, orig_ip=src,
            orig_port=self.rng.randrange(1024, 65000), resp_ip=dst, resp_port=dport,
            orig_pkts=op, resp_pkts=rp, orig_bytes=ob, resp_bytes=rb,
            orig_ip_bytes=ob + 40 * op, resp_ip_bytes=rb + 40 * rp, conn_state=state))


def _stream(benign: int = 4_500) -> list[bytes]:
    """An hour of event time: alerts from several detectors, spread through the stream."""
    f = Flows(seed=9)
    rng = f.rng
    for _ in range(benign):
        f.add(T0 + rng.random() * SPAN_S, f"10.20.{rng.randrange(4)}.{rng.randrange(1, 60)}",
              f"93.184.{rng.randrange(8)}.{rng.randrange(1, 30)}", rng.choice([443, 80, 53]),
              ob=rng.randrange(200, 3000), rb=rng.randrange(500, 90_000))
    for s in range(12):                           # port scans, one slice of the hour each
        for p in range(150):
            f.add(T0 + 60 + s * 280 + p * 0.5, f"10.9.1.{s + 1}", f"10.30.0.{1 + p % 40}",
                  1 + p, state="S0", ob=0, rb=0, op=1, rp=0, dur=0)
    for b in range(6):                            # beacons every 30 s
        for k in range(110):
            f.add(T0 + 5 + b + k * 30, f"10.20.9.{b + 1}", "203.0.113.7", 443, ob=420, rb=1300)
    for s in range(5):                            # SSH password guessing
        for k in range(40):
            f.add(T0 + 600 + s * 500 + k * 1.2, f"198.51.100.{s + 1}", "10.40.0.1", 22,
                  ob=1100, rb=2300, op=12, rp=11, dur=1.0)
    for k in range(900):                          # ordinary load on a web server...
        f.add(T0 + k * 2, f"10.20.5.{1 + k % 50}", "10.50.0.1", 80, ob=400, rb=4000)
    for k in range(2000):                         # ...then a flood from many sources
        f.add(T0 + 2000 + k * 0.008, f"172.16.{k % 200}.{1 + k % 250}", "10.50.0.1", 80,
              state="S0", ob=0, rb=0, op=300, rp=0, dur=0.1)
    f.records.sort(key=lambda r: r.start)
    nets = InternalNetworks()
    return [codec.encode(flow_document(r, "kill-test", nets)) for r in f.records]


def _publish(bus: KafkaBus, names: Names, events: list[bytes]) -> None:
    producer = bus.producer()
    for value in events:
        producer.send(names.events, value, key=codec.decode(value)["source"]["ip"])
    producer.close()


class Progress:
    """Committed offsets of every detection group of a namespace against its input topics."""

    def __init__(self, kafka_url: str, names: Names) -> None:
        servers = kafka_url.removeprefix("kafka://")
        self.prefix = names.group("detect")
        # the stages `detect` runs: source-keyed, then one per other entity (pipeline.py)
        fields = {cls.key_field for cls in registry.available().values()} - {"source.ip"}
        self.groups_ = [self.prefix] + [names.group(f"detect-{f.replace('.', '-')}")
                                        for f in sorted(fields)]
        self.admin = KafkaAdminClient(bootstrap_servers=servers)
        self.ends = KafkaConsumer(bootstrap_servers=servers)

    def groups(self) -> dict[str, tuple[int, int]]:
        """group -> (committed, end) summed over the partitions it committed."""
        out = {}
        for group, committed in self.admin.list_group_offsets(self.groups_).items():
            committed = {tp: o for tp, o in committed.items() if o.offset >= 0}
            ends = self.ends.end_offsets(list(committed)) if committed else {}
            out[group] = (sum(o.offset for o in committed.values()), sum(ends.values()))
        return out

    def close(self) -> None:
        self.admin.close()
        self.ends.close()


def _detect(kafka_url: str, db: str, names: Names, log) -> subprocess.Popen:
    env = {**os.environ, "WATCHKEEPER_NAMESPACE": names.namespace}
    return subprocess.Popen([*WATCHKEEPER, "detect", "--bus", kafka_url, "--store",
                             f"sqlite:///{db}"], cwd=ROOT, env=env, stdout=log, stderr=log)


def _wait(predicate, deadline_s: float, what: str, proc: subprocess.Popen):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"watchkeeper detect exited with {proc.returncode} waiting for {what}")
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _finished(progress: Progress, events: int, stable: list) -> bool:
    """Every group has committed everything, and nothing moved since the last look."""
    groups = progress.groups()
    done = (groups.get(progress.prefix, (0, 0))[0] == events and len(groups) > 1
            and all(c == e for c, e in groups.values()))
    stable.append(groups if done else None)
    return done and len(stable) >= 3 and stable[-3] == stable[-2] == groups


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _final_alerts(kafka_url: str, names: Names) -> dict[str, dict]:
    """alert id -> the last version raised (alerts are keyed by entity: one partition each),
    without the wall-clock `event.created`."""
    consumer = KafkaConsumer(names.alerts_raw, bootstrap_servers=kafka_url.removeprefix("kafka://"),
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=5000)
    final: dict[str, dict] = {}
    for record in consumer:
        doc = codec.decode(record.value)
        doc["event"].pop("created", None)
        final[doc["event"]["id"]] = doc
    consumer.close()
    return final


def _size(kafka_url: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=kafka_url.removeprefix("kafka://"))
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()


def _kill_when(kafka_url, db, names, log, ready, what: str) -> dict:
    """Start `watchkeeper detect`, kill -9 it once `ready(progress)`; the commits then."""
    progress = Progress(kafka_url, names)
    proc = _detect(kafka_url, db, names, log)
    try:
        _wait(lambda: ready(progress), 600, what, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        return progress.groups()
    finally:
        _stop(proc)
        progress.close()


def _run_to_end(kafka_url, db, names, events, log) -> None:
    progress = Progress(kafka_url, names)
    proc = _detect(kafka_url, db, names, log)
    try:
        stable: list = []
        _wait(lambda: _finished(progress, events, stable), 600, "detection to finish", proc)
    finally:
        _stop(proc)
        progress.close()


def test_kill_9_detect_worker_mid_stream_raises_exactly_the_uninterrupted_alerts(
        kafka_url, unique, tmp_path):
    events = _stream()
    bus = KafkaBus(kafka_url, partitions=4)
    reference, crashed = Names(f"kref{unique}"), Names(f"kcut{unique}")
    for names in (reference, crashed):
        bus.ensure_topics(names.topics)
    _publish(bus, reference, events)
    # the killed worker gets the stream in two parts, so the kill is mid-stream by
    # construction however fast it reads (the order within each partition is the same)
    cut = len(events) * 6 // 10
    _publish(bus, crashed, events[:cut])
    log = open(tmp_path / "detect.log", "w")   # noqa: SIM115 - closed at the end

    _run_to_end(kafka_url, str(tmp_path / "ref.db"), reference, len(events), log)
    expected = _final_alerts(kafka_url, reference)
    detectors = {a["watchkeeper"]["alert"]["detector"] for a in expected.values()}
    assert {"scan", "beaconing", "brute_force", "dos"} <= detectors, detectors

    # kill 1: as soon as it has copied events to a re-keyed topic (before or just after a
    # first checkpoint); kill 2: the restarted worker, right after it stored a checkpoint
    db = str(tmp_path / "cut.db")
    rekeyed_topic = crashed.rekeyed("destination.ip")
    at_kill = [_kill_when(kafka_url, db, crashed, log,
                          lambda p: _size(kafka_url, rekeyed_topic) > 0, "copies"),
               _kill_when(kafka_url, db, crashed, log,
                          lambda p: p.groups().get(p.prefix, (0, 0))[0] > 0, "a checkpoint")]
    _publish(bus, crashed, events[cut:])
    _run_to_end(kafka_url, db, crashed, len(events), log)
    log.close()
    got = _final_alerts(kafka_url, crashed)
    copies = [_size(kafka_url, names.rekeyed("destination.ip")) for names in (reference, crashed)]

    print(f"committed at the kills {at_kill}; copies re-keyed: uninterrupted {copies[0]}, "
          f"killed {copies[1]}")
    assert sorted(got) == sorted(expected), (
        f"killed at offset {at_kill}: missing {len(set(expected) - set(got))}, "
        f"extra {len(set(got) - set(expected))}")
    # Re-keyed detectors (dos) are compared by id only: their input order on the re-keyed
    # topic follows the source stage's poll batches, which a restart changes (see
    # docs/decisions.md, "Re-keyed order"), and a flood's counts depend on that order.
    rekeyed = {cls.name for cls in registry.available().values()
               if cls.key_field != "source.ip"}
    differ = [i for i in expected if got[i] != expected[i]
              and expected[i]["watchkeeper"]["alert"]["detector"] not in rekeyed]
    assert not differ, (f"killed at offset {at_kill}: {len(differ)} alerts differ, e.g. "
                        f"{expected[differ[0]]['watchkeeper']['alert']} vs "
                        f"{got[differ[0]]['watchkeeper']['alert']}")
