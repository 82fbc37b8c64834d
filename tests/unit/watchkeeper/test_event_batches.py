"""Collectors' event batches (watchkeeper/batches.py): each event lands in the partition its
own key picks, after its entity's earlier events; nothing waits longer than the linger; a
reader sizes its polls by the events per message."""
from __future__ import annotations

import threading

from collectors.capture.meter import Capture, CaptureStats, file_batches
from detectors.checkpoint import _checkpoint
from tests.datafiles import data_file
from watchkeeper import batches, codec
from watchkeeper.bus import Names, Producer
from watchkeeper.bus.partition import partition_for
from watchkeeper.networks import InternalNetworks
from watchkeeper.publish import EventPublisher

NAMES = Names()
PARTITIONS = 4


class Recorder(Producer):
    def __init__(self):
        self.sent: list[tuple[str, bytes, str | None]] = []
        self.arrived = threading.Event()

    def send(self, topic, value, key=None):
        self.sent.append((topic, value, key))
        self.arrived.set()

    def flush(self):
        pass


def _lines():
    path = data_file("benign/cs_tcp_ports.pcapng")
    return list(Capture(file_batches([str(path)], CaptureStats()), app=True).lines(
        "s1", InternalNetworks(), "city-a"))


def _by_partition(sent, partition_of_message) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    for topic, value, key in sent:
        if topic == NAMES.events:
            out.setdefault(partition_of_message(value, key), []).extend(batches.split(value))
    return out


def _many_sources(n: int = 3000) -> list[bytes]:
    """Chunks of the capture's lines, each line again from 60 sources in turn."""
    first = codec.decode(_lines()[0].split(b"\n")[0])
    docs = [codec.encode({**first, "event": {**first["event"], "id": f"{i:032x}"},
                          "source": {**first["source"], "ip": f"10.7.{i % 60}.1"}})
            for i in range(n)]
    return [b"\n".join(docs[i:i + 256]) for i in range(0, n, 256)]


def test_batches_put_each_event_where_its_own_key_puts_it_in_the_same_order():
    chunks = _lines() + _many_sources()
    alone, batched = Recorder(), Recorder()
    single = EventPublisher(alone, "capture", NAMES)
    many = EventPublisher(batched, "capture", NAMES, partitions=PARTITIONS)
    for chunk in chunks:
        single.publish_lines(chunk)
        many.publish_lines(chunk)
    many.flush()
    expected = _by_partition(alone.sent, lambda value, key: partition_for(key, PARTITIONS))
    got = _by_partition(batched.sent, lambda value, key: partition_for(key, PARTITIONS))
    assert got == expected and sum(map(len, got.values())) > 1000
    assert len(batched.sent) < len(alone.sent) / 20
    assert many.published == single.published


def test_a_dict_document_is_batched_like_a_line():
    doc = codec.decode(_lines()[0].split(b"\n")[0])
    out = Recorder()
    publisher = EventPublisher(out, "netflow", NAMES, partitions=PARTITIONS)
    for _ in range(3):
        publisher.publish(doc)
    assert out.sent == []                     # held for the linger
    publisher.flush()
    [(topic, value, key)] = out.sent
    assert topic == NAMES.events and batches.split(value) == [codec.encode(doc)] * 3
    assert partition_for(key, PARTITIONS) == partition_for(doc["source"]["ip"], PARTITIONS)


def test_only_the_events_topic_is_batched():
    """A tailer publishes Suricata's alerts to the alerting stage's topic, which reads one
    document per message."""
    doc = codec.decode(_lines()[0].split(b"\n")[0])
    out = Recorder()
    publisher = EventPublisher(out, "tailers", NAMES, partitions=PARTITIONS)
    publisher.publish(doc, topic=NAMES.alerts_raw)
    publisher.publish(doc, topic=NAMES.alerts_raw)
    assert [(t, v) for t, v, _ in out.sent] == [(NAMES.alerts_raw, codec.encode(doc))] * 2


def test_a_batch_is_cut_at_its_event_and_byte_limits():
    out = Recorder()
    held = batches.PartitionBatches(1, max_events=10, max_bytes=1000)
    for i in range(25):
        held.add(out, "t", f"k{i}", b"x" * 20)
    assert [len(batches.split(v)) for _, v, _ in out.sent] == [10, 10]
    for i in range(60):
        held.add(out, "t", "k", b"y" * 100)
    assert all(len(v) <= 1000 + 100 for _, v, _ in out.sent)


def test_a_send_that_raises_keeps_its_batch_for_the_next_try():
    class Flaky(Recorder):
        failures = 1

        def send(self, topic, value, key=None):
            if self.failures:
                self.failures -= 1
                raise OSError("buffer full")
            super().send(topic, value, key)

    out = Flaky()
    held = batches.PartitionBatches(1, max_events=3)
    held.add(out, "t", "k", b"1")
    held.add(out, "t", "k", b"2")
    try:
        held.add(out, "t", "k", b"3")
    except OSError:
        pass
    held.add(out, "t", "k", b"4")
    held.send_all(out)
    assert [batches.split(v) for _, v, _ in out.sent] == [[b"1", b"2", b"3", b"4"]]


def test_held_events_go_out_after_the_linger_without_a_flush():
    out = Recorder()
    publisher = EventPublisher(out, "syslog", NAMES, partitions=PARTITIONS, linger_s=0.05,
                               flush_every_s=3600)
    publisher.publish_lines(_lines()[0].split(b"\n")[0])
    try:
        assert out.arrived.wait(10), "a held batch was never sent"
    finally:
        publisher.close()


def test_split_and_poll_size():
    assert batches.split(b'{"a":1}') == [b'{"a":1}']
    assert batches.split(b'{"a":1}\n{"b":2}\n') == [b'{"a":1}', b'{"b":2}']
    size = batches.PollSize(2000, guess=64)
    assert size.records() == 31                   # before any message: assume batches
    size.saw(10, 10)
    assert size.records() == 2000 and size.records(500) == 500
    size.saw(4, 1000)
    assert size.records() == 8


def test_positions_order_a_batch_and_old_checkpoints_count_their_whole_offset():
    assert batches.position(7, 3) < batches.position(7, 4) < batches.position(8)
    old = _checkpoint({"next_offset": 1, "watermark": 0.0, "snapshots": {},
                       "origins": {"2": 7}})
    assert batches.position(7, batches.POSITION_SPAN - 1) == old.origins[2]
    assert batches.position(8) > old.origins[2]
    new = _checkpoint({"next_offset": 1, "watermark": 0.0, "snapshots": {},
                       "positions": {"2": batches.position(7, 3)}})
    assert new.origins == {2: batches.position(7, 3)}
