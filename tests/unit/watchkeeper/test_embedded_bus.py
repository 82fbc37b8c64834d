"""What only the embedded bus has to prove: memory follows the slowest group."""
from __future__ import annotations

from watchkeeper.bus.embedded import _TRIM_BATCH, EmbeddedBus


def test_messages_are_dropped_once_every_group_committed_past_them():
    bus = EmbeddedBus(partitions=1)
    fast, slow = bus.consumer("fast", ["t"]), bus.consumer("slow", ["t"])
    producer = bus.producer()
    for i in range(_TRIM_BATCH + 10):
        producer.send("t", b"x", key="k")
    while fast.poll(5000, timeout=0):
        fast.commit()
    assert len(bus._topics["t"][0].messages) == _TRIM_BATCH + 10   # slow has not committed
    got = 0
    while batch := slow.poll(5000, timeout=0):
        got += len(batch)
        slow.commit()
    assert got == _TRIM_BATCH + 10
    assert len(bus._topics["t"][0].messages) < _TRIM_BATCH
    producer.send("t", b"y", key="k")
    assert [m.offset for m in slow.poll(10, timeout=0)] == [_TRIM_BATCH + 10]


def test_a_busy_partition_does_not_starve_the_others():
    bus = EmbeddedBus(partitions=4)
    consumer = bus.consumer("g", ["t"])
    producer = bus.producer()
    for i in range(2000):
        producer.send("t", b"x", key=f"k{i}")
    first = consumer.poll(100, timeout=0)
    second = consumer.poll(100, timeout=0)
    assert {m.partition for m in first} != {m.partition for m in second} or \
        len({m.partition for m in first + second}) > 1


def test_lag_never_counts_messages_that_were_trimmed():
    """A group nobody declared joins after the others trimmed: it starts at the oldest message
    still held, and its lag is what it can still read (not what no longer exists)."""
    bus = EmbeddedBus(partitions=1)
    first = bus.consumer("first", ["t"])
    producer = bus.producer()
    for _ in range(_TRIM_BATCH + 10):
        producer.send("t", b"x", key="k")
    while first.poll(5000, timeout=0):
        first.commit()
    held = len(bus._topics["t"][0].messages)
    assert held < _TRIM_BATCH
    late = bus.consumer("late", ["t"])
    assert late.lag() == held
    read = 0
    while batch := late.poll(5000, timeout=0):
        read += len(batch)
    assert read == held and late.lag() == 0


def test_declared_readers_hold_messages_until_they_have_read_them():
    bus = EmbeddedBus(partitions=1)
    bus.declare_readers("indexer", ["t"])
    detect = bus.consumer("detect", ["t"])
    producer = bus.producer()
    for _ in range(3 * _TRIM_BATCH):
        producer.send("t", b"x", key="k")
    while detect.poll(5000, timeout=0):
        detect.commit()
    assert len(bus._topics["t"][0].messages) == 3 * _TRIM_BATCH
    indexer = bus.consumer("indexer", ["t"])
    assert indexer.lag() == 3 * _TRIM_BATCH
