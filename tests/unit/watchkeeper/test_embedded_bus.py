"""What only the embedded bus has to prove: memory follows the slowest group, and a bounded
topic makes producers wait instead of growing."""
from __future__ import annotations

import threading

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


def _unread(bus: EmbeddedBus, group: str, topic: str) -> int:
    return sum(p.end - max(p.base, bus._committed.get((group, topic, i), 0))
               for i, p in enumerate(bus._topics[topic]))


def _produce_against_a_slow_reader(bus: EmbeddedBus, consumer, values: list[bytes],
                                   measure, per_poll: int):
    """Send `values` from a thread while `consumer` reads `per_poll` at a time. Returns what
    it read, `measure()` after each send, and whether every send was done within 0.3 s with
    nobody reading yet (a bound must have made the producer wait)."""
    peaks: list[int] = []
    sent = threading.Event()

    def produce() -> None:
        producer = bus.producer()
        for i, value in enumerate(values):
            producer.send("t", value, key=f"k{i % 7}")
            with bus._cond:
                peaks.append(measure())
        sent.set()
    thread = threading.Thread(target=produce)
    thread.start()
    done_unread = sent.wait(0.3)
    got: list[bytes] = []
    while not (sent.is_set() and consumer.lag() == 0):
        got += [m.value for m in consumer.poll(per_poll, timeout=0.2)]
        consumer.commit()
    thread.join(5)
    return got, peaks, done_unread


def test_a_bounded_topic_makes_its_producer_wait_for_the_slowest_group_and_loses_nothing():
    bus = EmbeddedBus(partitions=2, max_held=100)
    consumer = bus.consumer("slow", ["t"])
    got, peaks, done_unread = _produce_against_a_slow_reader(
        bus, consumer, [str(i).encode() for i in range(1000)],
        lambda: _unread(bus, "slow", "t"), per_poll=30)
    assert not done_unread, "1000 sends finished with nobody reading a 100-message topic"
    assert sorted(int(v) for v in got) == list(range(1000))
    assert max(peaks) <= 100 and bus.waited_seconds > 0


def test_a_byte_bound_makes_a_producer_of_big_messages_wait_and_loses_nothing():
    """A message can be a batch of events: 10 messages of 100 KiB hold what 10,000 events do."""
    bus = EmbeddedBus(partitions=2, max_held=1000, max_held_bytes=300 * 1024)
    consumer = bus.consumer("slow", ["t"])

    def unread_bytes() -> int:
        return sum(p.bytes_before(p.end)
                   - p.bytes_before(max(p.base, bus._committed.get(("slow", "t", i), 0)))
                   for i, p in enumerate(bus._topics["t"]))
    got, peaks, done_unread = _produce_against_a_slow_reader(
        bus, consumer, [str(i).encode().ljust(100 * 1024) for i in range(40)], unread_bytes,
        per_poll=2)
    assert not done_unread, "40 sends of 100 KiB finished with nobody reading"
    assert sorted(int(v) for v in got) == list(range(40))
    # full means at the bound: one more message may go in before the producer waits
    assert max(peaks) <= 400 * 1024 and bus.waited_seconds > 0


def test_a_topic_nobody_reads_is_not_bounded_and_close_releases_a_waiting_producer():
    bus = EmbeddedBus(partitions=1, max_held=10)
    producer = bus.producer()
    for _ in range(50):
        producer.send("deadletter", b"x")      # no reader group: waiting would be for ever
    bus.consumer("g", ["t"])
    for _ in range(10):
        producer.send("t", b"x")
    done = threading.Event()
    thread = threading.Thread(target=lambda: (producer.send("t", b"y"), done.set()))
    thread.start()
    assert not done.wait(0.3)
    bus.close()
    assert done.wait(5) and bus._topics["t"][0].end == 11


def test_a_read_prefix_is_trimmed_long_before_ten_thousand_messages():
    """Dead letters carry up to 64 KiB each and share one partition: keeping 10 000 read ones
    was over a gigabyte. A prefix as long as what stays is trimmed (amortised O(1))."""
    bus = EmbeddedBus(partitions=1)
    consumer = bus.consumer("g", ["t"])
    producer = bus.producer()
    for _ in range(1000):
        producer.send("t", b"x" * 1000, key="k")
    consumer.poll(600, timeout=0)
    consumer.commit()
    assert len(bus._topics["t"][0].messages) == 400
    while consumer.poll(5000, timeout=0):
        consumer.commit()
    assert bus._topics["t"][0].messages == [] and bus._topics["t"][0].base == 1000
