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
