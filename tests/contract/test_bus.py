"""Bus contract: the embedded bus and Kafka behave the same (DESIGN.md §4)."""
from __future__ import annotations

import time
from collections import Counter, defaultdict

from watchkeeper.bus.kafka import KafkaBusConsumer
from watchkeeper.bus.partition import partition_for

from .grouping import join_group


def _topic(bus, unique: str, name: str = "t") -> str:
    topic = f"wktest.{name}.{unique}"
    bus.ensure_topics((topic,))
    return topic


def _produce(bus, topic: str, count: int, keys: int = 7) -> list[tuple[str, bytes]]:
    producer = bus.producer()
    sent = [(f"10.0.0.{i % keys}", f"m{i}".encode()) for i in range(count)]
    for key, value in sent:
        producer.send(topic, value, key=key)
    producer.flush()
    producer.close()
    return sent


def _consume(consumers, want: int, deadline_s: float = 30.0) -> dict:
    """Poll every consumer until `want` messages arrived in total (or the deadline)."""
    got = defaultdict(list)
    end = time.monotonic() + deadline_s
    while sum(len(v) for v in got.values()) < want and time.monotonic() < end:
        for i, consumer in enumerate(consumers):
            got[i].extend(consumer.poll(max_records=500, timeout=0.2))
    return got


def _wait_assigned(consumers) -> None:
    join_group(consumers, lambda c: c.poll(max_records=1, timeout=0.2),
               lambda c: c.lag() is not None)


def test_keyed_messages_arrive_once_in_order_on_one_partition(bus, unique):
    topic = _topic(bus, unique)
    sent = _produce(bus, topic, 300)
    consumer = bus.consumer(f"g-{unique}", [topic])
    got = _consume([consumer], 300)[0]
    consumer.close()
    assert sorted(m.value for m in got) == sorted(v for _, v in sent)
    by_key = defaultdict(list)
    for m in got:
        by_key[m.key].append(m)
        assert m.partition == partition_for(m.key, bus.partitions)
    for key, messages in by_key.items():
        assert [m.value for m in messages] == [v for k, v in sent if k == key]


def test_every_group_sees_every_message(bus, unique):
    topic = _topic(bus, unique)
    _produce(bus, topic, 50)
    first, second = bus.consumer(f"a-{unique}", [topic]), bus.consumer(f"b-{unique}", [topic])
    assert len(_consume([first], 50)[0]) == 50
    assert len(_consume([second], 50)[0]) == 50
    first.close()
    second.close()


def test_members_of_a_group_split_the_partitions(bus, unique):
    topic = _topic(bus, unique)
    members = [bus.consumer(f"g-{unique}", [topic]) for _ in range(2)]
    _wait_assigned(members)
    _produce(bus, topic, 400, keys=40)
    got = _consume(members, 400)
    values = Counter(m.value for msgs in got.values() for m in msgs)
    assert len(values) == 400 and set(values.values()) == {1}
    assert got[0] and got[1], "both members must receive a share"
    parts = [{m.partition for m in got[i]} for i in (0, 1)]
    assert not parts[0] & parts[1]
    for member in members:
        member.close()


def test_unowned_counts_the_partitions_no_member_of_the_group_holds(bus, unique):
    """What the liveness watchdog asks (watchkeeper/liveness.py): a kafka-python member holds
    nothing until it has joined in a poll; an embedded member holds its share from its
    creation; librdkafka joins on its own thread, so either may be seen."""
    topic = _topic(bus, unique)
    members = [bus.consumer(f"g-{unique}", [topic])]
    # by the consumer's kind: the librdkafka bus's URL also reads kafka://, and it may have
    # joined already (its first run in the 2026-12-07 CI had)
    before_joining = ({0} if bus.url.startswith("memory") else {bus.partitions}
                      if isinstance(members[0], KafkaBusConsumer) else {0, bus.partitions})
    assert members[0].unowned() in before_joining
    members.append(bus.consumer(f"g-{unique}", [topic]))
    poll = (lambda c: c.poll(max_records=1, timeout=0.2))
    _wait_assigned(members)
    join_group(members, poll, lambda c: c.unowned() == 0)     # as the coordinator sees it
    members.pop().close()                 # the other member takes over its share
    every = {(topic, p) for p in range(bus.partitions)}
    join_group(members, poll, lambda c: c.assigned() == every)
    assert members[0].unowned() == 0
    members[0].close()


def test_left_out_says_a_member_holds_nothing_a_group_would_give_it(bus, unique):
    """What the liveness watchdog asks beside `unowned`: a member outside its group (here:
    one that has not joined yet, as a member whose JoinGroup was lost) while another holds
    every partition. Nothing is unowned, so only `left_out` shows it; once the member has
    joined and holds its share, it is not left out."""
    topic = _topic(bus, unique)
    poll = (lambda c: c.poll(max_records=1, timeout=0.2))
    first = bus.consumer(f"g-{unique}", [topic])
    join_group([first], poll, lambda c: c.unowned() == 0)       # holds all four
    late = bus.consumer(f"g-{unique}", [topic])
    if bus.url.startswith("memory"):
        assert late.left_out() is False and first.left_out() is False  # shares from creation
    else:
        assert late.left_out() is None         # it has not polled: it cannot say yet
        late.poll(max_records=1, timeout=0)     # kafka-python: no join without waiting
        # librdkafka joins on its own thread, so it may be in already
        outside = (True,) if isinstance(late, KafkaBusConsumer) else (True, False)
        assert late.left_out() in outside
        assert first.left_out() is False and late.unowned() == 0
        members = [first, late]
        join_group(members, poll, lambda c: bool(c.assigned()))
        assert [m.left_out() for m in members] == [False, False]
    for member in (first, late):
        member.close()


def test_committed_position_is_where_a_new_member_resumes(bus, unique):
    topic = _topic(bus, unique)
    _produce(bus, topic, 100)
    first = bus.consumer(f"g-{unique}", [topic])
    seen = []
    while len(seen) < 40:
        seen += first.poll(max_records=10, timeout=0.5)
    first.commit()
    first.close()
    second = bus.consumer(f"g-{unique}", [topic])
    rest = _consume([second], 100 - len(seen))[0]
    second.close()
    assert sorted(m.value for m in seen + rest) == sorted(f"m{i}".encode() for i in range(100))


def test_explicit_offsets_commit_only_those(bus, unique):
    """A stage with writes in flight commits what is stored, not everything polled."""
    topic = _topic(bus, unique)
    _produce(bus, topic, 100, keys=1)                  # one key: one partition, in order
    first = bus.consumer(f"g-{unique}", [topic])
    seen = _consume([first], 100)[0]
    part = seen[0].partition
    first.commit({(topic, part): seen[29].offset + 1})  # the first 30 are stored
    first.close()
    second = bus.consumer(f"g-{unique}", [topic])
    rest = _consume([second], 70)[0]
    second.close()
    assert [m.value for m in rest] == [f"m{i}".encode() for i in range(30, 100)]


def test_uncommitted_messages_are_delivered_again(bus, unique):
    topic = _topic(bus, unique)
    _produce(bus, topic, 30)
    first = bus.consumer(f"g-{unique}", [topic])
    assert len(_consume([first], 30)[0]) == 30
    first.close()                       # crashed before commit
    second = bus.consumer(f"g-{unique}", [topic])
    assert len(_consume([second], 30)[0]) == 30
    second.close()


def test_lag_counts_what_is_left(bus, unique):
    topic = _topic(bus, unique)
    consumer = bus.consumer(f"g-{unique}", [topic])
    _wait_assigned([consumer])
    _produce(bus, topic, 25)
    deadline = time.monotonic() + 10
    while consumer.lag() != 25 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert consumer.lag() == 25
    _consume([consumer], 25)
    assert consumer.lag() == 0
    consumer.close()


def test_an_exact_lag_counts_a_message_as_soon_as_its_publish_is_flushed(bus, unique):
    """`drain` (the end of `ingest`) stops at once on a lag of 0 from a bus whose lag is
    exact (the embedded bus; kafka-python's, whose 0 is always the broker's answer): so such a
    lag must never read 0 while a flushed message is still unread, not even right after the
    flush. librdkafka's lag reads its fetcher's cached ends and is not exact."""
    topic = _topic(bus, unique)
    consumer = bus.consumer(f"g-{unique}", [topic])
    _wait_assigned([consumer])
    exact = getattr(consumer, "exact_lag", False)
    assert exact == (type(consumer).__name__ != "RdKafkaConsumer")
    for _ in range(5):
        _produce(bus, topic, 3)
        assert consumer.lag() == 3 or not exact
        assert sum(len(v) for v in _consume([consumer], 3).values()) == 3
        assert consumer.lag() == 0
    consumer.close()


def test_rewind_reads_again_from_the_last_commit(bus, unique):
    """A stage whose downstream write failed rewinds: the uncommitted messages come back,
    the committed ones do not."""
    topic = _topic(bus, unique)
    _produce(bus, topic, 40, keys=1)
    consumer = bus.consumer(f"g-{unique}", [topic])
    first = _consume([consumer], 40)[0]
    assert len(first) == 40
    consumer.commit()
    _produce(bus, topic, 20, keys=1)
    uncommitted = _consume([consumer], 20)[0]
    assert len(uncommitted) == 20
    consumer.rewind()
    again = _consume([consumer], 20)[0]
    consumer.close()
    assert [m.value for m in again] == [m.value for m in uncommitted]


def test_a_group_declared_before_publishing_misses_nothing(bus, unique):
    """`declare_readers` before any member exists: however far another group commits
    (the embedded bus trims what every reader has passed), the late group reads it all."""
    topic = _topic(bus, unique)
    bus.declare_readers(f"late-{unique}", [topic])
    early = bus.consumer(f"early-{unique}", [topic])
    _produce(bus, topic, 25_000, keys=1)
    got = 0
    while got < 25_000 and (batch := early.poll(5000, timeout=2.0)):
        got += len(batch)
        early.commit()
    early.close()
    late = bus.consumer(f"late-{unique}", [topic])
    got = _consume([late], 25_000, deadline_s=60)[0]
    late.close()
    assert sorted(int(m.value[1:]) for m in got) == list(range(25_000))
